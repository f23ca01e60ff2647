package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

const canary = "sk-canary-3f9e1d2c7b"

func TestSecretOnCommandLineRefused(t *testing.T) {
	for _, cmdArgs := range [][]string{
		{"backend", "add", "crm", "--host", "crm.example.com"},
		{"backend", "rotate", "crm"},
		{"backend", "update", "crm"},
	} {
		for _, name := range secretFlagNames {
			for _, form := range [][]string{{"--" + name, canary}, {"--" + name + "=" + canary}} {
				args := append(append([]string{}, cmdArgs...), form...)
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					d := newFakeDaemon(t)
					r := newCLI(t, d.socket).run("", args...)
					if r.code != exitUsage {
						t.Errorf("exit %d, want %d", r.code, exitUsage)
					}
					if !strings.Contains(r.stderr, "visible to every process through argv") || !strings.Contains(r.stderr, "--secret-stdin") {
						t.Errorf("stderr does not say why and what to do instead:\n%s", r.stderr)
					}
					if strings.Contains(r.stdout+r.stderr, canary) {
						t.Errorf("the secret was echoed:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
					}
					if n := len(d.requests()); n != 0 {
						t.Errorf("%d requests reached the daemon", n)
					}
				})
			}
		}
	}
}

func TestSecretRefusedBeforeArgCheck(t *testing.T) {
	// Even with the name missing, the secret flag is what the user hears about.
	d := newFakeDaemon(t)
	r := newCLI(t, d.socket).run("", "backend", "add", "--api-key", canary)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--api-key refused") || strings.Contains(r.stderr, canary) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestSecretSourceExactlyOne(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(file, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"none", nil, "exactly one of --secret-stdin, --secret-file FILE or --secret-env VAR"},
		{"stdin and file", []string{"--secret-stdin", "--secret-file", file}, "only one of"},
		{"file and env", []string{"--secret-file", file, "--secret-env", "X"}, "only one of"},
		{"all three", []string{"--secret-stdin", "--secret-file", file, "--secret-env", "X"}, "only one of"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDaemon(t)
			cl := newCLI(t, d.socket)
			cl.env["X"] = "from-env"
			for _, base := range [][]string{{"backend", "add", "crm", "--host", "crm.example.com"}, {"backend", "rotate", "crm"}} {
				r := cl.run("x\n", append(base, c.args...)...)
				if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
					t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", base, r.code, r.stderr, c.want)
				}
			}
			if n := len(d.requests()); n != 0 {
				t.Errorf("%d requests reached the daemon", n)
			}
		})
	}
}

func TestSecretStdinNewline(t *testing.T) {
	cases := []struct {
		stdin string
		want  string // "" means refused as empty
	}{
		{"abc\n", "abc"},
		{"abc\r\n", "abc"},
		{"abc", "abc"},
		{"abc\n\n", "abc\n"},
		{"abc \n", "abc "},
		{"\tabc\n", "\tabc"},
		{"\n", ""},
		{"\r\n", ""},
		{"", ""},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(strings.ReplaceAll(c.stdin, "\n", `\n`), "\r", `\r`), func(t *testing.T) {
			d := newFakeDaemon(t)
			d.reply("POST /v1/backends/{name}/rotate", http.StatusOK, store.Backend{Name: "crm", CredentialVersion: 2})
			r := newCLI(t, d.socket).run(c.stdin, "backend", "rotate", "crm", "--secret-stdin")
			if c.want == "" {
				if r.code != exitError || !strings.Contains(r.stderr, "empty") || len(d.requests()) != 0 {
					t.Errorf("exit %d, stderr %q, %d requests; want exit 1, an empty-secret message, no request", r.code, r.stderr, len(d.requests()))
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var got admin.RotateRequest
			if err := json.Unmarshal(d.only().Body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Secret.Value != c.want {
				t.Errorf("secret sent %q, want %q", got.Secret.Value, c.want)
			}
		})
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	shared := filepath.Join(dir, "shared")
	if err := os.WriteFile(private, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shared, []byte("from-shared-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o644); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	cases := []struct {
		file, want string
		warn       bool
	}{
		{private, "from-file", false},
		{shared, "from-shared-file", true},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			d := newFakeDaemon(t)
			d.reply("POST /v1/backends/{name}/rotate", http.StatusOK, store.Backend{Name: "crm", CredentialVersion: 2})
			r := newCLI(t, d.socket).run("", "backend", "rotate", "crm", "--secret-file", c.file)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var got admin.RotateRequest
			_ = json.Unmarshal(d.only().Body, &got)
			if got.Secret.Value != c.want {
				t.Errorf("secret sent %q, want %q", got.Secret.Value, c.want)
			}
			if warned := strings.Contains(r.stderr, "readable by other users"); warned != c.warn {
				t.Errorf("warning = %v, want %v; stderr %q", warned, c.warn, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, c.want) {
				t.Errorf("the secret was printed")
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		d := newFakeDaemon(t)
		r := newCLI(t, d.socket).run("", "backend", "rotate", "crm", "--secret-file", filepath.Join(dir, "nope"))
		if r.code != exitError || !strings.Contains(r.stderr, "read secret file") || len(d.requests()) != 0 {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestSecretEnvUnset(t *testing.T) {
	d := newFakeDaemon(t)
	r := newCLI(t, d.socket).run("", "backend", "rotate", "crm", "--secret-env", "NOT_SET")
	if r.code != exitError || !strings.Contains(r.stderr, "$NOT_SET is empty") || len(d.requests()) != 0 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}
