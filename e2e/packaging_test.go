package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPackagedUnitBesideResolved starts the packaged unit's command line
// (the real binary with agw.service's ExecStart flags and /etc/default/agw's
// AGW_OPTS, as the unprivileged agw user with only CAP_NET_BIND_SERVICE) in
// a network namespace shaped like a stock Debian or Ubuntu host: one
// interface holding the default route, and systemd-resolved's stand-in
// already on 127.0.0.53:53. It must come up, with DNS on the interface's
// address rather than on every address.
func TestPackagedUnitBesideResolved(t *testing.T) {
	requireNetns(t)
	setpriv, err := exec.LookPath("setpriv")
	requireEnv(t, err == nil, "the packaged unit test needs setpriv (util-linux) to drop to an unprivileged user")
	nobody, err := user.Lookup("nobody")
	requireEnv(t, err == nil, "the packaged unit test needs the nobody user")

	n := newNetns(t)
	// The host's one network: 192.0.2.10/24 (TEST-NET-1) with the default
	// route, on a veth pair whose both ends stay inside the namespace.
	n.ip("-n", n.name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
	n.ip("-n", n.name, "addr", "add", "192.0.2.10/24", "dev", "eth0")
	n.ip("-n", n.name, "link", "set", "eth0", "up")
	n.ip("-n", n.name, "link", "set", "peer0", "up")
	n.ip("-n", n.name, "route", "add", "default", "via", "192.0.2.1", "dev", "eth0")

	// The agw-admin group the package's preinstall script creates, visible
	// only inside the namespace (ip netns exec lays /etc/netns/<ns>/group
	// over /etc/group).
	gid := freeGID(t)
	hostGroups, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join("/etc/netns", n.name)
	writeFile(t, filepath.Join(etc, "group"), string(hostGroups)+fmt.Sprintf("agw-admin:x:%d:\n", gid))
	writeFile(t, filepath.Join(etc, "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n")

	// systemd-resolved's stub listener: another DNS server on 127.0.0.53:53.
	resolved := newEnv(t)
	resolved.launch(n.command(nil, agwBin, "serve", "--data-dir", resolved.dataDir, "--socket", resolved.socket,
		"--https-listen", "off", "--dns-listen", "127.0.0.53:53", "--upstream-dns", "127.0.0.1:1"), "the 127.0.0.53:53 stand-in")
	if resolved.status.Listeners.DNS != "127.0.0.53:53" {
		t.Fatalf("the stand-in listens on %q, not 127.0.0.53:53", resolved.status.Listeners.DNS)
	}

	// The unit's command line. Only the data directory and the socket are
	// moved to temporary paths: they are not what this test is about, and
	// the host's /var/lib/agw and /run/agw are not the test's to use.
	argv := unitCommandLine(t)
	e := newEnv(t)
	state := filepath.Dir(e.dataDir)
	uid, _ := strconv.Atoi(nobody.Uid)
	ugid, _ := strconv.Atoi(nobody.Gid)
	if err := os.Chown(state, uid, ugid); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(argv); i++ {
		switch argv[i] {
		case "--data-dir":
			argv[i+1] = e.dataDir
		case "--socket":
			argv[i+1] = e.socket
		}
	}
	argv[0] = agwBin
	// User=agw (here nobody) with SupplementaryGroups=agw-admin and
	// AmbientCapabilities=CAP_NET_BIND_SERVICE, as systemd starts it.
	priv := []string{"--reuid", nobody.Uid, "--regid", nobody.Gid, "--groups", strconv.Itoa(gid),
		"--inh-caps", "-all,+net_bind_service", "--ambient-caps", "+net_bind_service", "--"}
	e.launch(n.command(nil, setpriv, append(priv, argv...)...), "the packaged unit's command line")

	if got := e.status.Listeners.DNS; got != "192.0.2.10:53" {
		t.Errorf("DNS listens on %q; want 192.0.2.10:53, the default route's interface address", got)
	}
	if got := e.status.Listeners.HTTPS; !strings.HasSuffix(got, ":443") {
		t.Errorf("HTTPS listens on %q; want port 443", got)
	}
	if !strings.Contains(e.log.String(), "DNS listens on 192.0.2.10:53") || !strings.Contains(e.log.String(), "eth0") {
		t.Errorf("the log does not say where DNS listens and why:\n%s", e.log.String())
	}
	// Both DNS servers still run side by side.
	resolved.ok("", "status")
	e.ok("", "status")
	fi, err := os.Stat(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(interface{ Gid() uint32 }); ok && st.Gid() != uint32(gid) {
		t.Errorf("the admin socket's group is %d, want agw-admin (%d)", st.Gid(), gid)
	}
}

// unitCommandLine returns agw.service's ExecStart with $AGW_OPTS replaced by
// /etc/default/agw's value, split as systemd splits it (no quoting there).
func unitCommandLine(t *testing.T) []string {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join("..", "packaging", "agw.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=(.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("agw.service has no ExecStart")
	}
	defaults, err := os.ReadFile(filepath.Join("..", "packaging", "agw.default"))
	if err != nil {
		t.Fatal(err)
	}
	o := regexp.MustCompile(`(?m)^AGW_OPTS="([^"]*)"$`).FindSubmatch(defaults)
	if o == nil {
		t.Fatal(`agw.default sets no AGW_OPTS="..."`)
	}
	var argv []string
	for _, f := range strings.Fields(string(m[1])) {
		if f == "$AGW_OPTS" {
			argv = append(argv, strings.Fields(string(o[1]))...)
			continue
		}
		argv = append(argv, f)
	}
	if len(argv) < 2 || argv[0] != "/usr/bin/agw" || argv[1] != "serve" {
		t.Fatalf("ExecStart is not /usr/bin/agw serve ...: %q", argv)
	}
	return argv
}

// freeGID returns a group id no host group has.
func freeGID(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	used := map[int]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if parts := strings.Split(sc.Text(), ":"); len(parts) > 2 {
			if id, err := strconv.Atoi(parts[2]); err == nil {
				used[id] = true
			}
		}
	}
	for id := 64900; id < 65500; id++ {
		if !used[id] {
			return id
		}
	}
	t.Fatal("no free group id")
	return 0
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// launch starts cmd, an `agw serve` of this installation, and waits until
// its admin API answers; what names it in failures.
func (e *env) launch(cmd *exec.Cmd, what string) {
	e.t.Helper()
	e.log = &syncBuffer{}
	e.logs = append(e.logs, e.log)
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.daemon = cmd
	e.exited = make(chan error, 1)
	go func() { e.exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out, _, code := e.run("", "status", "-o", "json"); code == 0 {
			if err := json.Unmarshal([]byte(out), &e.status); err != nil {
				e.t.Fatalf("status -o json: %v\n%s", err, out)
			}
			return
		}
		select {
		case err := <-e.exited:
			e.daemon = nil
			e.t.Fatalf("%s exited before it was ready: %v\n%s", what, err, e.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s not ready after 20s:\n%s", what, e.log.String())
		}
	}
}
