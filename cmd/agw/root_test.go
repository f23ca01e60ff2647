package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

func TestVersion(t *testing.T) {
	// No daemon: the socket does not exist.
	cl := newCLI(t, filepath.Join(t.TempDir(), "none.sock"))
	r := cl.run("", "version", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if want := (versionInfo{Version: "dev", Commit: "none", Date: "unknown", Go: runtime.Version()}); v != want {
		t.Errorf("got %+v, want %+v", v, want)
	}
	r = cl.run("", "version")
	for _, want := range []string{"version", "dev", "commit", "none", "date", "unknown"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("version lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestBareAgwPrintsHelp(t *testing.T) {
	r := newCLI(t, filepath.Join(t.TempDir(), "none.sock")).run("")
	if r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") || !strings.Contains(r.stdout, "backend") {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
	r = newCLI(t, filepath.Join(t.TempDir(), "none.sock")).run("", "backend")
	if r.code != 0 || !strings.Contains(r.stdout, "rotate") {
		t.Errorf("bare group: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestInit(t *testing.T) {
	cases := []struct {
		created bool
		err     error
		code    int
		want    string
	}{
		{true, nil, 0, "initialised /srv/agw"},
		{false, nil, 0, "/srv/agw is already initialised"},
		{false, errors.New("permission denied"), exitError, "agw: initialise /srv/agw: permission denied"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			var gotDir string
			a := &app{getenv: func(string) string { return "" }, now: time.Now,
				initDir: func(dir string) (bool, error) { gotDir = dir; return c.created, c.err }}
			var out, errOut strings.Builder
			code := a.run(t.Context(), []string{"--data-dir", "/srv/agw", "init"}, strings.NewReader(""), &out, &errOut)
			if code != c.code || !strings.Contains(out.String()+errOut.String(), c.want) || gotDir != "/srv/agw" {
				t.Errorf("exit %d, dir %q, output %q%q", code, gotDir, out.String(), errOut.String())
			}
		})
	}
}

func TestStatus(t *testing.T) {
	d := newFakeDaemon(t)
	st := admin.Status{Version: "v1.0.0", PID: 4242, StartedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), DataDir: "/var/lib/agw",
		Listeners: admin.Listeners{Admin: "/run/agw/admin.sock", HTTPS: ":443", DNS: ":53"},
		Counts:    admin.Counts{Backends: 2, Agents: 3, Grants: 4, Tokens: 5, IdPs: 1},
		Gateway:   admin.Traffic{Requests: 100, Allowed: 90, Denied: 10}, DNS: admin.DNSStats{Queries: 7}}
	d.reply("GET /v1/status", http.StatusOK, st)
	cl := newCLI(t, d.socket)
	r := cl.run("", "status")
	for _, want := range []string{"v1.0.0", "3h0m", "4242", "/var/lib/agw", "https :443", "metrics off", "2 backends", "5 active tokens", "90 allowed", "7 queries"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = cl.run("", "status", "-o", "json")
	var got admin.Status
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || !reflect.DeepEqual(got, st) {
		t.Errorf("status -o json = %+v (%v), want %+v", got, err, st)
	}
}

// testCAPEM returns a self-signed CA certificate in PEM.
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agw internal CA (test)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestCAAndDNSExport(t *testing.T) {
	d := newFakeDaemon(t)
	ca := testCAPEM(t)
	d.mux.HandleFunc("GET /v1/ca", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(ca)) })
	d.mux.HandleFunc("GET /v1/dns/export", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# " + r.URL.Query().Get("format") + "\n"))
	})
	cl := newCLI(t, d.socket)
	if r := cl.run("", "ca", "export"); r.stdout != ca || r.stderr != "" {
		t.Errorf("ca export stdout %q, stderr %q", r.stdout, r.stderr)
	}
	var got caExport
	if r := cl.run("", "ca", "export", "-o", "json"); json.Unmarshal([]byte(r.stdout), &got) != nil || got.PEM != ca ||
		got.Source != "daemon" || len(got.SHA256Fingerprint) != 64 || !strings.Contains(got.Subject, "agw internal CA") {
		t.Errorf("ca export -o json: %q", r.stdout)
	}
	if r := cl.run("", "dns", "export"); r.stdout != "# hosts\n" {
		t.Errorf("dns export default format: %q", r.stdout)
	}
	if r := cl.run("", "dns", "export", "--format", "unbound"); r.stdout != "# unbound\n" {
		t.Errorf("dns export --format unbound: %q", r.stdout)
	}
	var dx dnsExport
	if r := cl.run("", "dns", "export", "--format", "dnsmasq", "-o", "json"); json.Unmarshal([]byte(r.stdout), &dx) != nil || dx != (dnsExport{Format: "dnsmasq", Content: "# dnsmasq\n"}) {
		t.Errorf("dns export -o json: %q", r.stdout)
	}
}

// TestCAExportDaemonDown: after `agw init`, before any daemon runs, the CA
// certificate comes from the data directory.
func TestCAExportDaemonDown(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	ca := testCAPEM(t)
	if err := os.WriteFile(filepath.Join(dir, crypto.CACertFile), []byte(ca), 0o600); err != nil {
		t.Fatal(err)
	}
	cl := newCLI(t, sock)
	r := cl.run("", "--data-dir", dir, "ca", "export")
	if r.code != 0 || r.stdout != ca || !strings.Contains(r.stderr, "no daemon is running") {
		t.Errorf("exit %d, stdout %q, stderr %q; want the certificate and a note", r.code, r.stdout, r.stderr)
	}
	var got caExport
	r = cl.run("", "--data-dir", dir, "ca", "export", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.PEM != ca || got.Source != filepath.Join(dir, crypto.CACertFile) {
		t.Errorf("-o json: %q, %v", r.stdout, err)
	}
	r = cl.run("", "--data-dir", t.TempDir(), "ca", "export")
	if r.code != exitDaemonDown || !strings.Contains(r.stderr, "agw init") || r.stdout != "" {
		t.Errorf("empty data directory: exit %d, stdout %q, stderr %q; want exit %d pointing at agw init", r.code, r.stdout, r.stderr, exitDaemonDown)
	}
}

// TestJSONRefused: commands whose output is not data say so for -o json.
func TestJSONRefused(t *testing.T) {
	for _, args := range [][]string{{"serve"}, {"tui"}, {"completion", "bash"}} {
		r := newCLI(t, filepath.Join(t.TempDir(), "s.sock")).run("", append(args, "-o", "json")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "-o json does not apply") || r.stdout != "" {
			t.Errorf("%v -o json: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestVersionFlag: `agw --version` answers like `agw version` does.
func TestVersionFlag(t *testing.T) {
	r := newCLI(t, filepath.Join(t.TempDir(), "s.sock")).run("", "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "agw "+version+" (commit "+commit) {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestAgentGrantIdPRequests(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		route    string
		response any
		want     any    // the request body, decoded into the same type
		wantPath string // when not the route's
	}{
		{"agent add", []string{"agent", "add", "etl", "--description", "nightly", "--idp", "corp", "--subject", "0oa1", "--rate", "5/s", "--burst", "10", "--max-concurrent", "4"},
			"POST /v1/agents", store.Agent{Name: "etl"},
			&store.Agent{Name: "etl", Description: "nightly", IdP: "corp", Subject: "0oa1", Rate: "5/s", Burst: 10, MaxConcurrent: 4}, ""},
		{"agent disable", []string{"agent", "disable", "etl"}, "PATCH /v1/agents/{name}", store.Agent{Name: "etl", Disabled: true},
			&admin.UpdateAgentRequest{Disabled: ptr(true)}, "/v1/agents/etl"},
		{"agent enable", []string{"agent", "enable", "etl"}, "PATCH /v1/agents/{name}", store.Agent{Name: "etl"},
			&admin.UpdateAgentRequest{Disabled: ptr(false)}, "/v1/agents/etl"},
		{"agent update", []string{"agent", "update", "etl", "--max-concurrent", "0", "--rate", ""}, "PATCH /v1/agents/{name}", store.Agent{Name: "etl"},
			&admin.UpdateAgentRequest{MaxConcurrent: ptr(0), Rate: ptr("")}, "/v1/agents/etl"},
		{"grant add", []string{"grant", "add", "bot", "crm", "--method", "GET", "--method", "post", "--path", "/v1/**", "--path", "/v2/items/*", "--rate", "60/m"},
			"POST /v1/grants", store.Grant{Agent: "bot", Backend: "crm", Methods: []string{"GET", "POST"}, Paths: []string{"/v1/**"}},
			&store.Grant{Agent: "bot", Backend: "crm", Methods: []string{"GET", "post"}, Paths: []string{"/v1/**", "/v2/items/*"}, Rate: "60/m"}, ""},
		{"idp add", []string{"idp", "add", "corp", "--issuer", "https://login.example.com", "--audience", "api://agw", "--claim", "cid"},
			"POST /v1/idps", store.IdP{Name: "corp", Issuer: "https://login.example.com", Claim: "cid"},
			&store.IdP{Name: "corp", Issuer: "https://login.example.com", Audience: "api://agw", Claim: "cid"}, ""},
		{"idp add default claim", []string{"idp", "add", "corp", "--issuer", "https://login.example.com", "--audience", "api://agw"},
			"POST /v1/idps", store.IdP{Name: "corp", Claim: "sub"},
			&store.IdP{Name: "corp", Issuer: "https://login.example.com", Audience: "api://agw", Claim: "sub"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDaemon(t)
			d.reply(c.route, http.StatusOK, c.response)
			r := newCLI(t, d.socket).run("", c.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			req := d.only()
			if c.wantPath != "" && req.Path != c.wantPath {
				t.Errorf("path %q, want %q", req.Path, c.wantPath)
			}
			got := reflect.New(reflect.TypeOf(c.want).Elem()).Interface()
			if err := json.Unmarshal(req.Body, got); err != nil {
				t.Fatalf("body %s: %v", req.Body, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("request body\n got %+v\nwant %+v\n(%s)", got, c.want, req.Body)
			}
		})
	}
}

// TestBackendRemoveNeedsYes: a script removing a backend (and with it every
// grant to it) must say --yes; nothing is sent without it.
func TestBackendRemoveNeedsYes(t *testing.T) {
	d := newFakeDaemon(t)
	r := newCLI(t, d.socket).run("", "backend", "remove", "crm")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--yes") || len(d.requests()) != 0 {
		t.Errorf("exit %d, stderr %q, %d requests; want a usage error naming --yes and no request", r.code, r.stderr, len(d.requests()))
	}
}

func TestRemoveCommands(t *testing.T) {
	cases := []struct {
		args []string
		path string
	}{
		{[]string{"backend", "remove", "crm", "--yes"}, "/v1/backends/crm"},
		{[]string{"agent", "rm", "bot"}, "/v1/agents/bot"},
		{[]string{"grant", "remove", "bot", "crm"}, "/v1/grants/bot/crm"},
		{[]string{"idp", "remove", "corp"}, "/v1/idps/corp"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			d := newFakeDaemon(t)
			d.reply("DELETE "+c.path, http.StatusNoContent, nil)
			cl := newCLI(t, d.socket)
			r := cl.run("", c.args...)
			if r.code != 0 || !strings.Contains(r.stdout, "removed") {
				t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if req := d.only(); req.Method != http.MethodDelete || req.Path != c.path {
				t.Errorf("sent %s %s", req.Method, req.Path)
			}
			r = cl.run("", append(c.args, "-o", "json")...)
			var got removed
			if err := json.Unmarshal([]byte(r.stdout), &got); r.code != 0 || err != nil || got.Removed == "" {
				t.Errorf("-o json: exit %d, stdout %q (%v); want an object saying what was removed", r.code, r.stdout, err)
			}
		})
	}
}

func TestAgentListTable(t *testing.T) {
	d := newFakeDaemon(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d.reply("GET /v1/agents", http.StatusOK, []admin.AgentSummary{
		{Agent: store.Agent{Name: "bot"}, Tokens: 2, Grants: 1, LastSeen: now.Add(-5 * time.Minute)},
		{Agent: store.Agent{Name: "old", Disabled: true}},
	})
	cl := newCLI(t, d.socket)
	cl.now = now
	r := cl.run("", "agent", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header and 2 rows:\n%s", r.stdout)
	}
	for i, want := range [][]string{{"bot", "yes", "2", "1", "5m ago"}, {"old", "no", "0", "0", "never"}} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %q lacks %q", lines[i+1], w)
			}
		}
	}
}

func TestCompletion(t *testing.T) {
	d := newFakeDaemon(t)
	d.reply("GET /v1/backends", http.StatusOK, []store.Backend{{Name: "crm"}, {Name: "openai"}})
	d.reply("GET /v1/agents", http.StatusOK, []admin.AgentSummary{{Agent: store.Agent{Name: "bot"}}})
	cl := newCLI(t, d.socket)

	r := cl.run("", "__complete", "backend", "show", "")
	if r.code != 0 || !strings.Contains(r.stdout, "crm\nopenai\n") {
		t.Errorf("backend show completion: exit %d, %q", r.code, r.stdout)
	}
	r = cl.run("", "__complete", "grant", "add", "bot", "")
	if !strings.Contains(r.stdout, "crm\nopenai\n") {
		t.Errorf("grant add second argument should complete backends: %q", r.stdout)
	}
	r = cl.run("", "__complete", "grant", "add", "")
	if !strings.HasPrefix(r.stdout, "bot\n") {
		t.Errorf("grant add first argument should complete agents: %q", r.stdout)
	}

	// No daemon: no names, no error.
	r = newCLI(t, filepath.Join(t.TempDir(), "none.sock")).run("", "__complete", "backend", "show", "")
	if r.code != 0 || strings.Contains(r.stdout, "daemon") || !strings.HasPrefix(r.stdout, ":") {
		t.Errorf("completion without a daemon: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func ptr[T any](v T) *T { return &v }
