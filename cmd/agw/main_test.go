package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agw-dev/agw/admin"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		code       string
		message    string
		wantExit   int
		wantStderr string
	}{
		{"invalid", http.StatusBadRequest, admin.CodeInvalid, `invalid host "10.0.0.1": an IP address cannot be intercepted`, exitError, `agw: invalid host "10.0.0.1": an IP address cannot be intercepted`},
		{"not found", http.StatusNotFound, admin.CodeNotFound, `agent "ghost" not found`, exitError, `agw: agent "ghost" not found`},
		{"exists", http.StatusConflict, admin.CodeExists, `agent "bot" already exists`, exitError, "already exists"},
		{"conflict", http.StatusConflict, admin.CodeConflict, "idp corp is used by agent etl", exitError, "used by agent etl"},
		{"forbidden", http.StatusForbidden, admin.CodeForbidden, "uid 65534 may not use the agw admin API", exitError, "may not use"},
		{"internal", http.StatusInternalServerError, admin.CodeInternal, "store closed", exitError, "store closed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDaemon(t)
			d.fail("POST /v1/agents", c.status, c.code, c.message)
			r := newCLI(t, d.socket).run("", "agent", "add", "bot")
			if r.code != c.wantExit {
				t.Errorf("exit %d, want %d", r.code, c.wantExit)
			}
			if !strings.Contains(r.stderr, c.wantStderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, c.wantStderr)
			}
			if strings.Contains(r.stderr, "--help") {
				t.Errorf("a daemon refusal points at --help, as if the command line were wrong: %q", r.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		want     string
		wantHelp string
	}{
		{"unknown flag", []string{"agent", "add", "x", "--colour", "blue"}, "unknown flag: --colour", "agw agent add --help"},
		{"missing argument", []string{"agent", "add"}, "missing NAME", "agw agent add --help"},
		{"extra argument", []string{"agent", "show", "a", "b"}, "too many arguments", "agw agent show --help"},
		{"missing both arguments", []string{"grant", "add"}, "missing AGENT BACKEND", "agw grant add --help"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate" for "agw"`, "agw --help"},
		{"unknown subcommand with suggestion", []string{"token", "mnt", "x"}, "did you mean mint?", "agw token --help"},
		{"bad output", []string{"-o", "yaml", "agent", "list"}, `invalid -o "yaml"`, "agw agent list --help"},
		{"bad flag value", []string{"grant", "add", "a", "b", "--burst", "lots"}, `invalid argument "lots"`, "agw grant add --help"},
		{"bad enum value", []string{"dns", "export", "--format", "zone"}, "hosts, dnsmasq, unbound, coredns, bind", "agw dns export --help"},
		{"idp without subject", []string{"agent", "add", "etl", "--idp", "corp"}, "--idp and --subject go together", "agw agent add --help"},
		{"bad claim", []string{"idp", "add", "corp", "--issuer", "https://i", "--audience", "a", "--claim", "email"}, "sub, cid, azp, appid, client_id", "agw idp add --help"},
		{"bad since", []string{"audit", "query", "--since", "last tuesday"}, `invalid --since "last tuesday"`, "agw audit query --help"},
		{"bad decision", []string{"audit", "tail", "--decision", "maybe"}, "allow, deny", "agw audit tail --help"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDaemon(t)
			r := newCLI(t, d.socket).run("", c.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %q", r.code, exitUsage, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "agw: ") || !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr %q; want agw: ... %q", r.stderr, c.want)
			}
			if !strings.Contains(r.stderr, "Run '"+c.wantHelp+"' for usage.") {
				t.Errorf("stderr %q does not point at %s", r.stderr, c.wantHelp)
			}
			if strings.Contains(r.stderr, "Usage:") || r.stdout != "" {
				t.Errorf("cobra's usage was dumped:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
			}
			if n := len(d.requests()); n != 0 {
				t.Errorf("%d requests reached the daemon", n)
			}
		})
	}
}

func TestDaemonNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"status"}, {"backend", "list"}, {"audit", "tail"}, {"ca", "export"}} {
		r := newCLI(t, sock).run("", args...)
		if r.code != exitError || !strings.Contains(r.stderr, "agw serve") || !strings.Contains(r.stderr, sock) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 naming the socket and agw serve", args, r.code, r.stderr)
		}
	}
}

func TestSocketResolution(t *testing.T) {
	cases := []struct {
		name    string
		flags   app
		env     map[string]string
		want    string
		wantDir string
	}{
		{"flag wins", app{socket: "/f.sock", dataDir: "/d"}, map[string]string{"AGW_SOCKET": "/e.sock"}, "/f.sock", "/d"},
		{"env", app{}, map[string]string{"AGW_SOCKET": "/e.sock", "AGW_DATA_DIR": "/ed"}, "/e.sock", "/ed"},
		{"data dir flag", app{dataDir: "/d"}, map[string]string{"AGW_DATA_DIR": "/ed"}, admin.DefaultSocket("/d"), "/d"},
		{"data dir env", app{}, map[string]string{"AGW_DATA_DIR": "/ed"}, admin.DefaultSocket("/ed"), "/ed"},
		{"defaults", app{}, nil, admin.DefaultSocket(admin.DefaultDataDir()), admin.DefaultDataDir()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.flags
			a.getenv = func(k string) string { return c.env[k] }
			if got := a.socketPath(); got != c.want {
				t.Errorf("socket %q, want %q", got, c.want)
			}
			if got := a.dataDirPath(); got != c.wantDir {
				t.Errorf("data dir %q, want %q", got, c.wantDir)
			}
		})
	}
}
