// Package packaging holds the files the deb and rpm packages install besides
// the binary: the systemd unit, /etc/default/agw and the install scripts.
// Its tests check them without installing anything.
package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// unit is a systemd unit file: section → directive → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	var section string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: continued lines are not expected here", path, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a directive in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUnitDirectives pins what the unit promises operators: agw serve as the
// agw user with only CAP_NET_BIND_SERVICE, its own state and runtime
// directories, explicit paths and listeners, and systemd's sandbox.
func TestUnitDirectives(t *testing.T) {
	u := parseUnit(t, "agw.service")
	want := map[string]string{
		"User":                    "agw",
		"Group":                   "agw",
		"SupplementaryGroups":     "agw-admin",
		"EnvironmentFile":         "-/etc/default/agw",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"StateDirectory":          "agw",
		"StateDirectoryMode":      "0700",
		"RuntimeDirectory":        "agw",
		"UMask":                   "0077",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"NoNewPrivileges":         "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"RestrictNamespaces":      "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallFilter":        "@system-service",
	}
	svc := u["Service"]
	for k, v := range want {
		if got := svc[k]; len(got) == 0 || got[len(got)-1] != v {
			t.Errorf("[Service] %s = %q; want %q", k, got, v)
		}
	}
	if got := u["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
		t.Errorf("[Install] WantedBy = %q; want multi-user.target", got)
	}

	exec := svc["ExecStart"]
	if len(exec) != 1 {
		t.Fatalf("ExecStart = %q; want one command", exec)
	}
	args := strings.Fields(exec[0])
	if len(args) < 2 || args[0] != "/usr/bin/agw" || args[1] != "serve" {
		t.Fatalf("ExecStart = %q; want /usr/bin/agw serve ...", exec[0])
	}
	// agw's defaults for a non-root user are a socket inside the data
	// directory and loopback listeners: the unit must say where everything is.
	for _, pair := range [][2]string{
		{"--data-dir", "/var/lib/agw"},
		{"--socket", "/run/agw/admin.sock"},
		{"--https-listen", ":443"},
	} {
		if !strings.Contains(exec[0], " "+pair[0]+" "+pair[1]+" ") {
			t.Errorf("ExecStart lacks %s %s: %q", pair[0], pair[1], exec[0])
		}
	}
	// DNS on every address collides with systemd-resolved's 127.0.0.53:53
	// and answers on every interface; its default follows the advertised
	// address instead.
	if strings.Contains(exec[0]+" "+envOpts(t), "--dns-listen") {
		t.Errorf("the unit or /etc/default/agw sets --dns-listen; leave it to the advertised address: %q", exec[0])
	}
	if !strings.HasSuffix(exec[0], " $AGW_OPTS") {
		t.Errorf("ExecStart should end with $AGW_OPTS, so /etc/default/agw can add and override flags: %q", exec[0])
	}
	// Every flag the unit and the env file pass must exist in agw serve.
	serveMan, err := os.ReadFile(filepath.Join("..", "man", "man1", "agw-serve.1"))
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`--[a-z][a-z-]+`).FindAllString(exec[0]+" "+envOpts(t), -1)
	for _, f := range flags {
		if !strings.Contains(string(serveMan), `\fB`+f+`\fP`) {
			t.Errorf("%s is not a flag of agw serve (man/man1/agw-serve.1)", f)
		}
	}
}

// envOpts returns AGW_OPTS from agw.default.
func envOpts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("agw.default")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^AGW_OPTS="([^"]*)"$`).FindSubmatch(b)
	if m == nil {
		t.Fatal(`agw.default sets no AGW_OPTS="..."`)
	}
	return string(m[1])
}

// TestUnitVerifies runs systemd-analyze verify on the unit, with the binary
// path pointed at an existing program and the repository's man pages on
// MANPATH for its Documentation= check.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed; TestUnitDirectives checks the unit")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("agw.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unitPath := filepath.Join(dir, "agw.service")
	if err := os.WriteFile(unitPath, []byte(strings.ReplaceAll(string(src), "/usr/bin/agw", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The committed man/man1 layout is what man(1) searches.
	manDir, err := filepath.Abs(filepath.Join("..", "man"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", unitPath)
	cmd.Env = append(os.Environ(), "MANPATH="+manDir, "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestScripts checks the install scripts parse as POSIX sh and create the
// agw user and agw-admin group only when missing.
func TestScripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("scripts", "*.sh"))
	if err != nil || len(scripts) != 4 {
		t.Fatalf("want 4 install scripts, got %q (%v)", scripts, err)
	}
	for _, s := range scripts {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
	}
	pre, err := os.ReadFile(filepath.Join("scripts", "preinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"getent passwd agw",
		"useradd --system --no-create-home",
		"--shell /usr/sbin/nologin",
		"getent group agw-admin",
		"groupadd --system agw-admin",
	} {
		if !strings.Contains(string(pre), want) {
			t.Errorf("preinstall.sh lacks %q", want)
		}
	}
}

// TestReleaseConfigSources fails when .goreleaser.yaml names a file that is
// not in the repository, so a moved file breaks a test, not a release.
func TestReleaseConfigSources(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join("..", ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\s*(?:-\s*src:|preinstall:|postinstall:|preremove:|postremove:|-)\s+((?:README\.md|completions|man|packaging)\S*)\s*$`)
	matches := re.FindAllSubmatch(cfg, -1)
	if len(matches) < 10 {
		t.Fatalf("found only %d file references in .goreleaser.yaml; did its layout change?", len(matches))
	}
	for _, m := range matches {
		pattern := string(m[1])
		got, err := filepath.Glob(filepath.Join("..", pattern))
		if err != nil || len(got) == 0 {
			t.Errorf(".goreleaser.yaml names %s, which matches no file", pattern)
		}
	}
}
