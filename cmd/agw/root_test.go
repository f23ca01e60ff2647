package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
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

func TestCAAndDNSExport(t *testing.T) {
	d := newFakeDaemon(t)
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
	d.mux.HandleFunc("GET /v1/ca", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(pem)) })
	d.mux.HandleFunc("GET /v1/dns/export", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# " + r.URL.Query().Get("format") + "\n"))
	})
	cl := newCLI(t, d.socket)
	if r := cl.run("", "ca", "export"); r.stdout != pem+"\n" {
		t.Errorf("ca export stdout %q", r.stdout)
	}
	if r := cl.run("", "dns", "export"); r.stdout != "# hosts\n" {
		t.Errorf("dns export default format: %q", r.stdout)
	}
	if r := cl.run("", "dns", "export", "--format", "unbound"); r.stdout != "# unbound\n" {
		t.Errorf("dns export --format unbound: %q", r.stdout)
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

func TestRemoveCommands(t *testing.T) {
	cases := []struct {
		args []string
		path string
	}{
		{[]string{"backend", "remove", "crm"}, "/v1/backends/crm"},
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
			if r := cl.run("", append(c.args, "-o", "json")...); r.code != 0 || r.stdout != "" {
				t.Errorf("-o json: exit %d, stdout %q; want nothing", r.code, r.stdout)
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
