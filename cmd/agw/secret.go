package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/admin"
)

// A backend secret reaches agw from stdin, a file or an environment variable,
// never from argv: every process on the host can read another's command line.

// maxSecretBytes bounds what is read from stdin or a file; credentials are small.
const maxSecretBytes = 64 << 10

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
	f.BoolVar(&s.stdin, "secret-stdin", false, "read the secret from stdin (one trailing newline is removed)")
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

// read returns the secret from the one source given. stdin and warnings are
// the command's.
func (s *secretSource) read(cmd *cobra.Command, getenv func(string) string) (admin.SecretInput, error) {
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
		if f, ok := in.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "agw: reading the secret from the terminal; end it with Enter then Ctrl-D")
			}
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
	if value == "" {
		return admin.SecretInput{}, fmt.Errorf("the secret from %s is empty; nothing was changed", from)
	}
	return admin.SecretInput{Value: value}, nil
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
