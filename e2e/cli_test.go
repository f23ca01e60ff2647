package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// TestShortSecretRefused: a one-character backend secret would have the
// scrubber redact that character from every response ("example.com" came
// back as "e[redacted by agw]ample.com"), so it is refused unless scrubbing
// is off, and then stored with a warning.
func TestShortSecretRefused(t *testing.T) {
	e := newEnv(t)
	e.start()
	_, errOut, code := e.run("x\n", "backend", "add", "crm", "--host", "crm.example.com", "--secret-stdin")
	if code != 1 || !strings.Contains(errOut, "shorter than the minimum of 8") || !strings.Contains(errOut, "--no-scrub") {
		t.Errorf("one-character secret: exit %d, stderr %q; want exit 1 naming the minimum and --no-scrub", code, errOut)
	}
	_, errOut, code = e.run("   \n", "backend", "add", "crm", "--host", "crm.example.com", "--no-scrub", "--secret-stdin")
	if code != 1 || !strings.Contains(errOut, "only whitespace") {
		t.Errorf("whitespace secret: exit %d, stderr %q", code, errOut)
	}
	if out := e.ok("", "backend", "list"); strings.Contains(out, "crm") {
		t.Fatalf("a refused backend was stored:\n%s", out)
	}
	_, errOut, code = e.run("x\n", "backend", "add", "crm", "--host", "crm.example.com", "--no-scrub", "--secret-stdin")
	if code != 0 || !strings.Contains(errOut, "warning: the secret is 1 bytes") {
		t.Errorf("short secret with scrubbing off: exit %d, stderr %q; want stored with a warning", code, errOut)
	}
}

// TestSecretTypedAtTerminal: on a terminal, --secret-stdin reads one line
// without echo: the secret never appears on the screen, and Enter (no
// Ctrl-D) ends it.
func TestSecretTypedAtTerminal(t *testing.T) {
	e := newEnv(t)
	e.start()
	master, slave := openPTY(t)
	cmd := exec.Command(agwBin, "--socket", e.socket, "--data-dir", e.dataDir,
		"backend", "add", "crm", "--host", "crm.example.com", "--secret-stdin")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var screen syncBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	// Type only once the prompt is up and echo is off, as a person would.
	eventually(t, 20*time.Second, func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&unix.ECHO == 0 && strings.Contains(screen.String(), "type the secret")
	})
	if !strings.Contains(screen.String(), "type the secret") {
		t.Fatalf("no prompt with echo off; screen: %q", screen.String())
	}
	if _, err := master.Write([]byte(canary + "\r")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("backend add: %v; screen: %q", err, screen.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("Enter did not end the secret; screen: %q", screen.String())
	}
	eventually(t, 5*time.Second, func() bool { return strings.Contains(screen.String(), "added backend crm") })
	if s := screen.String(); strings.Contains(s, canary) || !strings.Contains(s, "added backend crm") {
		t.Errorf("screen %q: want the backend added and the secret never shown", s)
	}
	var b struct {
		CredentialVersion int `json:"credential_version"`
	}
	e.jsonOut(&b, "backend", "show", "crm")
	if b.CredentialVersion != 1 {
		t.Errorf("credential version %d, want 1", b.CredentialVersion)
	}
}

// openPTY returns a pseudo-terminal's master and slave ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	requireEnv(t, err == nil, "no pseudo-terminals (/dev/ptmx) on this host")
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestHangupKeepsServing: SIGHUP on a foreground `agw serve` is logged and
// ignored; SIGTERM afterwards still shuts down gracefully.
func TestHangupKeepsServing(t *testing.T) {
	e := newEnv(t)
	e.start()
	if err := e.daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return strings.Contains(e.log.String(), "SIGHUP received") })
	if !strings.Contains(e.log.String(), "SIGHUP received") {
		t.Fatalf("no log line for SIGHUP:\n%s", e.log.String())
	}
	e.ok("", "status")
	// e.stop (in cleanup) fails the test unless SIGTERM ends it with status 0.
}

// TestCAExportBeforeDaemon: `agw init` says the CA can be exported before
// the daemon starts, and it can; the daemon later serves the same one. With
// no daemon, a daemon command exits 3.
func TestCAExportBeforeDaemon(t *testing.T) {
	e := newEnv(t)
	out := e.ok("", "init")
	if !strings.Contains(out, "agw ca export") {
		t.Errorf("init does not point at ca export: %q", out)
	}
	before, errOut, code := e.run("", "ca", "export")
	if code != 0 || !strings.HasPrefix(before, "-----BEGIN CERTIFICATE-----") || !strings.Contains(errOut, "no daemon is running") {
		t.Fatalf("ca export with no daemon: exit %d, stdout %q, stderr %q", code, before, errOut)
	}
	if _, _, code := e.run("", "agent", "list"); code != 3 {
		t.Errorf("agent list with no daemon: exit %d, want 3", code)
	}
	e.start()
	if after := e.ok("", "ca", "export"); after != before {
		t.Errorf("the daemon serves another CA than ca.crt:\n%s\n%s", before, after)
	}
	var j struct {
		PEM    string `json:"pem"`
		Source string `json:"source"`
	}
	e.jsonOut(&j, "ca", "export")
	if j.PEM != before || j.Source != "daemon" {
		t.Errorf("ca export -o json: %+v", j)
	}
	if _, errOut, code := e.run("", "serve", "-o", "json"); code != 2 || !strings.Contains(errOut, "--log-format json") {
		t.Errorf("serve -o json: exit %d, stderr %q; want a usage error pointing at --log-format", code, errOut)
	}
}

// TestVersionFlagBinary: `agw --version` needs no daemon.
func TestVersionFlagBinary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, agwBin, "--version").Output()
	if err != nil || !bytes.HasPrefix(out, []byte("agw ")) {
		t.Errorf("agw --version: %v, %q", err, out)
	}
}

// TestGrantNeverWidensBySurprise: the reported mistake, `grant add
// support-bot openai --method DELETE` over a GET/POST grant on two paths,
// no longer turns it into DELETE on every path.
func TestGrantNeverWidensBySurprise(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.ok(canary+"\n", "backend", "add", "openai", "--host", "api.openai.com", "--secret-stdin")
	e.ok("", "agent", "add", "support-bot")
	e.ok("", "grant", "add", "support-bot", "openai", "--method", "GET", "--method", "POST", "--path", "/v1/models", "--path", "/v1/chat/completions")

	_, errOut, code := e.run("", "grant", "add", "support-bot", "openai", "--method", "DELETE")
	if code != 2 || !strings.Contains(errOut, "--any-path") {
		t.Errorf("grant without --path: exit %d, stderr %q; want a usage error naming --any-path", code, errOut)
	}
	_, errOut, code = e.run("", "grant", "add", "support-bot", "openai", "--method", "DELETE", "--any-path")
	if code != 1 || !strings.Contains(errOut, "methods GET,POST") || !strings.Contains(errOut, "--replace") {
		t.Errorf("grant over an existing one: exit %d, stderr %q; want it refused, shown, and --replace named", code, errOut)
	}
	out := e.ok("", "grant", "update", "support-bot", "openai", "--add-method", "delete", "--remove-path", "/v1/models")
	if !strings.Contains(out, "GET,POST → DELETE,GET,POST") && !strings.Contains(out, "→ GET,POST,DELETE") {
		t.Errorf("grant update output %q does not show the change", out)
	}
	var gs []struct {
		Methods []string `json:"methods"`
		Paths   []string `json:"paths"`
	}
	e.jsonOut(&gs, "grant", "list", "--agent", "support-bot")
	if len(gs) != 1 || strings.Join(gs[0].Methods, ",") != "DELETE,GET,POST" || strings.Join(gs[0].Paths, " ") != "/v1/chat/completions" {
		t.Errorf("grants after update: %+v", gs)
	}
	e.ok("", "grant", "add", "support-bot", "openai", "--any-method", "--any-path", "--replace")
	e.jsonOut(&gs, "grant", "list", "--agent", "support-bot")
	if len(gs) != 1 || strings.Join(gs[0].Methods, ",") != "*" || strings.Join(gs[0].Paths, " ") != "/**" {
		t.Errorf("grants after --replace: %+v", gs)
	}
}

// TestBackendRemoveAsks: on a terminal, `backend remove` lists the grants
// that go with the backend and removes nothing unless told yes; a script
// needs --yes.
func TestBackendRemoveAsks(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.ok(canary+"\n", "backend", "add", "crm", "--host", "crm.example.com", "--secret-stdin")
	e.ok("", "agent", "add", "etl")
	e.ok("", "grant", "add", "etl", "crm", "--method", "GET", "--path", "/v2/**")
	if _, errOut, code := e.run("", "backend", "remove", "crm"); code != 2 || !strings.Contains(errOut, "--yes") {
		t.Errorf("remove from a script: exit %d, stderr %q; want exit 2 naming --yes", code, errOut)
	}
	for _, answer := range []string{"n", "y"} {
		master, slave := openPTY(t)
		cmd := exec.Command(agwBin, "--socket", e.socket, "--data-dir", e.dataDir, "backend", "remove", "crm")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var screen syncBuffer
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				screen.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
		eventually(t, 20*time.Second, func() bool { return strings.Contains(screen.String(), "[y/N]") })
		if s := screen.String(); !strings.Contains(s, "etl: methods GET, paths /v2/**") {
			t.Fatalf("the question does not list the grant: %q", s)
		}
		if _, err := master.Write([]byte(answer + "\r")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if (answer == "y") != (err == nil) {
				t.Errorf("answer %s: %v; screen %q", answer, err, screen.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("answer %s: no exit; screen %q", answer, screen.String())
		}
		listed := strings.Contains(e.ok("", "backend", "list"), "crm")
		if listed != (answer == "n") {
			t.Errorf("answer %s: backend still listed = %v", answer, listed)
		}
	}
}

// TestLastSeenAfterRestart: `agent list` shows when an agent last called
// through the gateway, and still does after the daemon restarts.
func TestLastSeenAfterRestart(t *testing.T) {
	e, _, c, url, tok := limitsSetup(t)
	e.ok("", "grant", "add", "bot", "llm", "--method", "GET", "--path", "/v1/**")
	if code, _, body := getWithToken(t, c, url, tok); code != 200 {
		t.Fatalf("request: %d %s", code, body)
	}
	var before []admin.AgentSummary
	e.jsonOut(&before, "agent", "list")
	if len(before) != 1 || before[0].LastSeen.IsZero() {
		t.Fatalf("last seen not set after a request: %+v", before)
	}
	e.stop()
	e.start()
	var after []admin.AgentSummary
	e.jsonOut(&after, "agent", "list")
	if len(after) != 1 || !after[0].LastSeen.Equal(before[0].LastSeen) {
		t.Errorf("after restart: %+v, want last seen %v", after, before[0].LastSeen)
	}
	if out := e.ok("", "agent", "list"); strings.Contains(out, "never") {
		t.Errorf("agent list after restart says never:\n%s", out)
	}
}

// TestBackendUpdateAnyField: backend update changes hosts, upstream and
// inject mode in one write that keeps grants, tokens and the credential
// version, says what changed, and the next request follows it.
func TestBackendUpdateAnyField(t *testing.T) {
	e := newEnv(t)
	e.start()
	tr := newTraffic(t, e)
	tr.mustCall(t, "a1", "GET", "/v1/x", 200)
	e.ok(canary+"-v2\n", "backend", "rotate", "hr", "--secret-stdin")
	other := newRecordingBackend(t)
	out := e.ok("", "backend", "update", "hr", "--host", "hr.corp.net", "--host", "people.corp.net",
		"--upstream", other.srv.URL, "--upstream-ca", other.caFile, "--inject", "bearer")
	for _, want := range []string{"hosts: hr.corp.net → hr.corp.net people.corp.net", "inject: header → bearer", "header: x-api-key → -", "upstream: "} {
		if !strings.Contains(out, want) {
			t.Errorf("update output lacks %q:\n%s", want, out)
		}
	}
	var d admin.BackendDetail
	e.jsonOut(&d, "backend", "show", "hr")
	if d.CredentialVersion != 2 || len(d.Grants) != 2 || d.Header != "" {
		t.Errorf("after update: version %d, %d grants, header %q", d.CredentialVersion, len(d.Grants), d.Header)
	}
	// The agent's token still works, now sent as a bearer token to the new
	// upstream, under either host.
	for _, host := range []string{"hr.corp.net", "people.corp.net"} {
		req, _ := http.NewRequest("GET", "https://"+host+":"+tr.port+"/v1/y", nil)
		req.Header.Set("Authorization", "Bearer "+tr.tokens["a1"])
		res, err := tr.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || other.last(t).Header.Get("Authorization") != "Bearer "+canary+"-v2" {
			t.Errorf("%s after update: %d, backend got %q", host, res.StatusCode, other.last(t).Header.Get("Authorization"))
		}
	}
	// A change the store refuses changes nothing.
	if _, errOut, code := e.run("", "backend", "update", "hr", "--inject", "header"); code == 0 || !strings.Contains(errOut, "header") {
		t.Errorf("header mode without --header: exit %d %s", code, errOut)
	}
	e.jsonOut(&d, "backend", "show", "hr")
	if d.Inject != store.InjectBearer {
		t.Errorf("a refused update changed the inject mode to %s", d.Inject)
	}
}
