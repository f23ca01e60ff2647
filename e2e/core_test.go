package e2e

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// canary is a backend secret that must never come back out of agw.
const canary = "sk-canary-6b1d0f4e9a7c35e2"

// TestCoreLifecycle walks an operator's first session: init, serve, register
// a backend, an agent, a grant and a token, revoke it, restart, and find
// everything as it was, with the secret nowhere to be read.
func TestCoreLifecycle(t *testing.T) {
	e := newEnv(t)

	out := e.ok("", "init")
	if !strings.Contains(out, "nitialised") && !strings.Contains(out, "reated") {
		t.Errorf("agw init does not say it created the data directory:\n%s", out)
	}
	for _, f := range []string{"identity.txt", "ca.crt", "ca.key.age"} {
		fi, err := os.Stat(filepath.Join(e.dataDir, f))
		if err != nil {
			t.Fatalf("init did not create %s: %v", f, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v; want no access for group or others", f, fi.Mode().Perm())
		}
	}
	out = e.ok("", "init")
	if !strings.Contains(out, "already") {
		t.Errorf("second agw init should say the directory is already initialised:\n%s", out)
	}

	e.start()
	if fi, err := os.Stat(e.socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode: %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	e.ok(canary+"\n", "backend", "add", "hr", "--host", "hr.corp.net", "--inject", "header", "--header", "x-api-key", "--secret-stdin")
	e.ok("", "agent", "add", "hr-bot", "--description", "HR agent")
	e.ok("", "grant", "add", "hr-bot", "hr", "--method", "GET", "--path", "/v1/**")

	var minted admin.MintedToken
	e.jsonOut(&minted, "token", "mint", "hr-bot", "--label", "ci")
	if !strings.HasPrefix(minted.Value, "agw_") || minted.ID == "" {
		t.Fatalf("token mint returned %+v; want an agw_ token and an id", minted.Token)
	}
	var tokens []store.Token
	e.jsonOut(&tokens, "token", "list")
	if len(tokens) != 1 || tokens[0].ID != minted.ID || tokens[0].Agent != "hr-bot" {
		t.Fatalf("token list = %+v; want the minted token", tokens)
	}
	listed := e.ok("", "token", "list")
	if strings.Contains(listed, minted.Value) || strings.Contains(listed, minted.Value[4:20]) {
		t.Errorf("token list shows the token value:\n%s", listed)
	}
	e.ok("", "token", "revoke", minted.ID)

	var detail admin.BackendDetail
	e.jsonOut(&detail, "backend", "show", "hr")
	if detail.CredentialVersion != 1 || detail.CredentialSetAt.IsZero() {
		t.Errorf("backend show: version %d set at %v; want version 1 with a time", detail.CredentialVersion, detail.CredentialSetAt)
	}

	// Restart: everything is still there.
	e.stop()
	e.start()
	var backends []store.Backend
	e.jsonOut(&backends, "backend", "list")
	if len(backends) != 1 || backends[0].Name != "hr" || backends[0].Hosts[0] != "hr.corp.net" || backends[0].Header != "x-api-key" {
		t.Errorf("after restart, backend list = %+v", backends)
	}
	var agents []admin.AgentSummary
	e.jsonOut(&agents, "agent", "list")
	if len(agents) != 1 || agents[0].Name != "hr-bot" || agents[0].Description != "HR agent" || agents[0].Grants != 1 {
		t.Errorf("after restart, agent list = %+v", agents)
	}
	var grants []store.Grant
	e.jsonOut(&grants, "grant", "list")
	if len(grants) != 1 || grants[0].Paths[0] != "/v1/**" || grants[0].Methods[0] != "GET" {
		t.Errorf("after restart, grant list = %+v", grants)
	}
	e.jsonOut(&tokens, "token", "list")
	if len(tokens) != 1 || tokens[0].RevokedAt.IsZero() {
		t.Errorf("after restart, token list = %+v; want the revoked token", tokens)
	}

	// The audit trail names every change and who made it.
	auditOut := e.ok("", "audit", "tail", "-n", "100", "-o", "json")
	actions := map[string]store.AuditEvent{}
	for _, line := range strings.Split(strings.TrimSpace(auditOut), "\n") {
		var ev store.AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit tail -o json line %q: %v", line, err)
		}
		actions[ev.Action] = ev
	}
	for _, a := range []string{"backend.add", "agent.add", "grant.add", "token.mint", "token.revoke"} {
		ev, ok := actions[a]
		if !ok {
			t.Errorf("audit trail has no %s event:\n%s", a, auditOut)
			continue
		}
		if ev.PeerUID != os.Getuid() || ev.PeerPID == 0 {
			t.Errorf("%s event names uid %d pid %d; want uid %d and a pid", a, ev.PeerUID, ev.PeerPID, os.Getuid())
		}
	}
	e.stop()

	assertNoSecret(t, e, canary, minted.Value)
}

// assertNoSecret searches every CLI output, every daemon log and every byte
// under the data directory for the secrets.
func assertNoSecret(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	check := func(where string, b []byte) {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("secret %.8s... found in %s", s, where)
			}
		}
	}
	for i, o := range e.transcript {
		// The mint output is the one place a token is shown, on purpose.
		if strings.Contains(o, `"token": "agw_`) || strings.Contains(o, `"token":"agw_`) {
			continue
		}
		check("CLI output #"+strconv.Itoa(i), []byte(o))
	}
	for i, l := range e.logs {
		check("daemon log run "+strconv.Itoa(i+1), []byte(l.String()))
	}
	err := filepath.WalkDir(e.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		check(p, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBadInputChangesNothing: each rejected command says what was wrong,
// exits with the right code, and leaves the configuration as it was.
func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.ok("s3cret-one\n", "backend", "add", "crm", "--host", "crm.example.com", "--secret-stdin")
	e.ok("", "agent", "add", "bot")

	snapshot := func() string {
		return e.ok("", "backend", "list", "-o", "json") + e.ok("", "agent", "list", "-o", "json") +
			e.ok("", "grant", "list", "-o", "json") + e.ok("", "token", "list", "-o", "json")
	}
	before := snapshot()

	cases := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		wantText string
	}{
		{"bad backend name", "x\n", []string{"backend", "add", "Bad_Name!", "--host", "a.example.com", "--secret-stdin"}, 1, "name"},
		{"bad host", "x\n", []string{"backend", "add", "b1", "--host", "not a host", "--secret-stdin"}, 1, "host"},
		{"IP as host", "x\n", []string{"backend", "add", "b1", "--host", "10.0.0.1", "--secret-stdin"}, 1, "IP address"},
		{"plain http upstream", "x\n", []string{"backend", "add", "b1", "--host", "b1.example.com", "--upstream", "http://10.1.1.1", "--secret-stdin"}, 1, "plain http"},
		{"ftp upstream", "x\n", []string{"backend", "add", "b1", "--host", "b1.example.com", "--upstream", "ftp://files.example.com", "--secret-stdin"}, 1, "scheme"},
		{"host owned by another backend", "x\n", []string{"backend", "add", "b2", "--host", "crm.example.com", "--secret-stdin"}, 1, "crm.example.com"},
		{"duplicate backend name", "x\n", []string{"backend", "add", "crm", "--host", "other.example.com", "--secret-stdin"}, 1, "exists"},
		{"header mode without header", "x\n", []string{"backend", "add", "b3", "--host", "b3.example.com", "--inject", "header", "--secret-stdin"}, 1, "header"},
		{"empty secret", "\n", []string{"backend", "add", "b4", "--host", "b4.example.com", "--secret-stdin"}, 1, "empty"},
		{"no secret source", "", []string{"backend", "add", "b5", "--host", "b5.example.com"}, 2, "secret"},
		{"secret as a flag", "", []string{"backend", "add", "b6", "--host", "b6.example.com", "--secret", canary}, 2, "argv"},
		{"grant to missing agent", "", []string{"grant", "add", "ghost", "crm"}, 1, "ghost"},
		{"grant to missing backend", "", []string{"grant", "add", "bot", "ghost"}, 1, "ghost"},
		{"grant with bad method", "", []string{"grant", "add", "bot", "crm", "--method", "G3T"}, 1, "method"},
		{"grant with relative path", "", []string{"grant", "add", "bot", "crm", "--path", "v1/**"}, 1, "path"},
		{"token for missing agent", "", []string{"token", "mint", "ghost"}, 1, "ghost"},
		{"revoke unknown token", "", []string{"token", "revoke", "nosuchtoken1"}, 1, "not found"},
		{"duplicate agent", "", []string{"agent", "add", "bot"}, 1, "exists"},
		{"unknown flag", "", []string{"agent", "add", "x", "--colour", "blue"}, 2, "colour"},
		{"missing argument", "", []string{"agent", "add"}, 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := e.run(c.stdin, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errOut)
			}
			if !strings.Contains(strings.ToLower(errOut), strings.ToLower(c.wantText)) {
				t.Errorf("stderr does not mention %q:\n%s", c.wantText, errOut)
			}
			if strings.Contains(out+errOut, canary) {
				t.Errorf("the secret given as a flag was echoed:\n%s%s", out, errOut)
			}
		})
	}
	if after := snapshot(); after != before {
		t.Errorf("rejected commands changed the configuration:\nbefore: %s\nafter:  %s", before, after)
	}
}

// TestSecondServeRefused: a second daemon on the same data directory fails
// with a clear message and leaves the first one serving.
func TestSecondServeRefused(t *testing.T) {
	e := newEnv(t)
	e.start()
	cmd := exec.Command(agwBin, "serve", "--data-dir", e.dataDir, "--socket", e.socket+"2",
		"--https-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("second agw serve on the same data dir succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "another agw serve is using "+e.dataDir) {
		t.Errorf("second serve error does not say the data dir is in use:\n%s", out)
	}
	e.ok("", "status")
}

// TestDaemonNotRunning: a command with no daemon says how to start one.
func TestDaemonNotRunning(t *testing.T) {
	e := newEnv(t)
	_, errOut, code := e.run("", "backend", "list")
	if code != 1 || !strings.Contains(errOut, "agw serve") {
		t.Errorf("exit %d, stderr %q; want exit 1 and a hint to run agw serve", code, errOut)
	}
}

// TestNonAdminRefused: a local user who is not root, the daemon's user or in
// the admin group is refused, by file mode and by the daemon's own peer-uid
// check when the socket's mode is loosened.
func TestNonAdminRefused(t *testing.T) {
	requireEnv(t, os.Geteuid() == 0, "running CLI commands as another user needs root")
	nobody, err := user.Lookup("nobody")
	requireEnv(t, err == nil, "no 'nobody' user on this machine")
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)

	e := newEnv(t)
	e.start()
	before := e.ok("", "agent", "list", "-o", "json")
	asNobody := func() (string, int) {
		cmd := exec.Command(agwBin, "--socket", e.socket, "agent", "add", "intruder")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = []string{"HOME=/nonexistent", "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	out, code := asNobody()
	if code != 1 || !strings.Contains(strings.ToLower(out), "permission denied") {
		t.Errorf("nobody on a 0600 socket: exit %d, output %q; want exit 1 and permission denied", code, out)
	}

	// Loosen the socket's mode: the daemon's SO_PEERCRED check still refuses.
	if err := os.Chmod(e.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	out, code = asNobody()
	if code != 1 || !strings.Contains(out, "may not use the agw admin API") || !strings.Contains(out, "uid "+nobody.Uid) {
		t.Errorf("nobody on a 0666 socket: exit %d, output %q; want the daemon's refusal naming the uid", code, out)
	}
	if after := e.ok("", "agent", "list", "-o", "json"); after != before {
		t.Errorf("a refused user changed the agent list:\n%s", after)
	}
}

// TestAdminGroupMember: with --admin-group, a real second user in that
// group can use the CLI (the socket's directory is searchable by the group
// whatever the umask), and a user outside it still cannot.
func TestAdminGroupMember(t *testing.T) {
	requireEnv(t, os.Geteuid() == 0, "creating a second user needs root")
	_, errUA := exec.LookPath("useradd")
	requireEnv(t, errUA == nil, "useradd is not installed")
	suffix := strconv.Itoa(os.Getpid() % 100000)
	group, name := "agwadm"+suffix, "agwop"+suffix
	if out, err := exec.Command("groupadd", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("groupdel", group).Run() })
	if out, err := exec.Command("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", "-G", group, name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	pgid, _ := strconv.Atoi(u.Gid)
	ggid, _ := strconv.Atoi(g.Gid)

	e := newEnv(t)
	// A socket directory that does not exist yet: the daemon makes it
	// under its umask (0077) and must still let the group through.
	e.socket = filepath.Join(filepath.Dir(e.dataDir), "run", "admin.sock")
	e.start("--admin-group", group)
	fi, err := os.Stat(filepath.Dir(e.socket))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o010 == 0 || fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("socket directory mode %v: want group search, nothing for others", fi.Mode().Perm())
	}
	as := func(groups []uint32, args ...string) (string, int) {
		cmd := exec.Command(agwBin, append([]string{"--socket", e.socket}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(pgid), Groups: groups}}
		cmd.Env = []string{"HOME=/nonexistent", "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := as([]uint32{uint32(ggid)}, "agent", "add", "from-group-member"); code != 0 {
		t.Fatalf("group member: exit %d: %s", code, out)
	}
	if out := e.ok("", "agent", "list"); !strings.Contains(out, "from-group-member") {
		t.Errorf("the member's agent is missing: %s", out)
	}
	if out, code := as(nil, "agent", "list"); code == 0 {
		t.Errorf("the same user outside the group was served: %s", out)
	}
}
