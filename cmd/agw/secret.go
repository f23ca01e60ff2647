package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// A backend secret reaches agw from stdin, a file or an environment variable,
// never from argv: every process on the host can read another's command line.

// maxSecretBytes bounds what is read from stdin or a file; credentials are small.
const maxSecretBytes = store.MaxSecretBytes

// secretFlagNames are flags people reach for to pass a secret directly. They
// are registered hidden so that using one is refused with the reason, rather
// than with "unknown flag"; their values are never read or printed.
var secretFlagNames = []string{"secret", "key", "api-key", "apikey", "password", "token"}

const secretOnArgv = "a secret on the command line is visible to every process through argv; use --secret-stdin, --secret-file or --secret-env"

// secretSource holds the flags that say where a secret comes from.
type secretSource struct {
	stdin bool
	file  string
	env   string
}

// addSecretFlags registers the secret source flags and the refused ones on cmd.
func addSecretFlags(cmd *cobra.Command, s *secretSource) {
	f := cmd.Flags()
	f.BoolVar(&s.stdin, "secret-stdin", false, "read the secret from stdin: typed on a terminal without echo (Enter ends it), or piped (one trailing newline is removed)")
	f.StringVar(&s.file, "secret-file", "", "read the secret from `FILE` (one trailing newline is removed)")
	f.StringVar(&s.env, "secret-env", "", "read the secret from the environment variable `VAR`")
	addRefusedSecretFlags(cmd)
}

// addRefusedSecretFlags registers, hidden, the flags refuseSecretFlags refuses.
func addRefusedSecretFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	for _, name := range secretFlagNames {
		f.String(name, "", "refused: "+secretOnArgv)
		_ = f.MarkHidden(name)
	}
}

// refuseSecretFlags is an Args check that fails when a secret was given on
// the command line. It says which flag, never what value.
func refuseSecretFlags(cmd *cobra.Command, _ []string) error {
	for _, name := range secretFlagNames {
		if cmd.Flags().Changed(name) {
			return usagef(cmd, "--%s refused: %s", name, secretOnArgv)
		}
	}
	return nil
}

// read returns the secret from the one source given, checked with
// store.ValidateSecret. noScrub says whether the backend's scrubbing is off;
// it is asked only for a secret shorter than store.MinSecretBytes. stdin and
// warnings are the command's.
func (s *secretSource) read(cmd *cobra.Command, getenv func(string) string, noScrub func() (bool, error)) (admin.SecretInput, error) {
	n := 0
	for _, set := range []bool{s.stdin, cmd.Flags().Changed("secret-file"), cmd.Flags().Changed("secret-env")} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return admin.SecretInput{}, usagef(cmd, "the secret is required: give exactly one of --secret-stdin, --secret-file FILE or --secret-env VAR")
	case n > 1:
		return admin.SecretInput{}, usagef(cmd, "give only one of --secret-stdin, --secret-file and --secret-env")
	}

	var value, from string
	switch {
	case s.stdin:
		from = "stdin"
		in := cmd.InOrStdin()
		if f, ok := in.(*os.File); ok && term.IsTerminal(f.Fd()) {
			from = "the terminal"
			v, err := readFromTerminal(cmd, f)
			if err != nil {
				return admin.SecretInput{}, err
			}
			value = v
			break
		}
		v, err := readLimited(in)
		if err != nil {
			return admin.SecretInput{}, fmt.Errorf("read secret from stdin: %w", err)
		}
		value = trimOneNewline(v)
	case s.file != "":
		from = s.file
		v, err := readSecretFile(cmd, s.file)
		if err != nil {
			return admin.SecretInput{}, err
		}
		value = trimOneNewline(v)
	default:
		if s.env == "" {
			return admin.SecretInput{}, usagef(cmd, "--secret-env needs the name of an environment variable")
		}
		from = "$" + s.env
		value = getenv(s.env)
	}
	// Refusals that do not depend on the backend come first.
	if err := store.ValidateSecret([]byte(value), true); err != nil {
		return admin.SecretInput{}, fmt.Errorf("the secret from %s: %w", from, err)
	}
	scrubOff := false
	if len(value) < store.MinSecretBytes {
		var err error
		if scrubOff, err = noScrub(); err != nil {
			return admin.SecretInput{}, err
		}
	}
	if err := store.ValidateSecret([]byte(value), scrubOff); err != nil {
		return admin.SecretInput{}, fmt.Errorf("the secret from %s: %w", from, err)
	}
	if len(value) < store.MinSecretBytes {
		fmt.Fprintf(cmd.ErrOrStderr(), "agw: warning: the secret is %d bytes, shorter than %d; it is accepted only because scrubbing is off for this backend, so a backend that reflects it hands it to the agent\n", len(value), store.MinSecretBytes)
	}
	return admin.SecretInput{Value: value}, nil
}

// readFromTerminal reads one line from the terminal f with echo off: Enter
// ends the secret, and nothing typed appears on the screen or in the
// scrollback.
func readFromTerminal(cmd *cobra.Command, f *os.File) (string, error) {
	fmt.Fprint(cmd.ErrOrStderr(), "agw: type the secret and press Enter (it is not shown): ")
	b, err := term.ReadPassword(f.Fd())
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read secret from the terminal: %w", err)
	}
	if len(b) > maxSecretBytes {
		return "", errors.New("read secret from the terminal: longer than 64 KiB; a credential is not that large")
	}
	return strings.TrimSuffix(string(b), "\r"), nil
}

func readSecretFile(cmd *cobra.Command, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("read secret file %s: is a directory", path)
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "agw: warning: %s is readable by other users (mode %04o); consider chmod 600\n", path, fi.Mode().Perm())
	}
	v, err := readLimited(f)
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	return v, nil
}

func readLimited(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretBytes {
		return "", errors.New("longer than 64 KiB; a credential is not that large")
	}
	return string(b), nil
}

// trimOneNewline removes one trailing "\n" or "\r\n", the newline echo and
// editors add, and nothing else: a secret may end in other whitespace.
func trimOneNewline(s string) string {
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		return t
	}
	return strings.TrimSuffix(s, "\n")
}
