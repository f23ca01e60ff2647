package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

func TestBackendAddRequest(t *testing.T) {
	caPEM := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  admin.AddBackendRequest
	}{
		{
			name:  "header mode, secret from stdin",
			stdin: "sk-one\n",
			args: []string{"backend", "add", "crm", "--host", "crm.example.com", "--host", "*.crm.example.com",
				"--inject", "header", "--header", "x-api-key", "--prefix", "Token ",
				"--rate", "10/s", "--burst", "5", "--timeout", "30s", "--no-scrub", "--secret-stdin"},
			want: admin.AddBackendRequest{
				Backend: store.Backend{Name: "crm", Hosts: []string{"crm.example.com", "*.crm.example.com"},
					Inject: store.InjectHeader, Header: "x-api-key", Prefix: "Token ",
					Rate: "10/s", Burst: 5, Timeout: store.Duration(30 * time.Second), NoScrub: true},
				Secret: admin.SecretInput{Value: "sk-one"},
			},
		},
		{
			name:  "bearer by default, upstream and CA file",
			stdin: "sk-two-key\r\n",
			args: []string{"backend", "add", "hr", "--host", "hr.corp.net", "--upstream", "https://10.0.0.5:8443",
				"--upstream-ca", caFile, "--secret-stdin"},
			want: admin.AddBackendRequest{
				Backend: store.Backend{Name: "hr", Hosts: []string{"hr.corp.net"}, Upstream: "https://10.0.0.5:8443",
					UpstreamCA: caPEM, Inject: store.InjectBearer},
				Secret: admin.SecretInput{Value: "sk-two-key"},
			},
		},
		{
			name:  "query mode inferred from --query-param",
			stdin: "qk-value",
			args:  []string{"backend", "add", "maps", "--host", "maps.example.com", "--query-param", "key", "--secret-stdin"},
			want: admin.AddBackendRequest{
				Backend: store.Backend{Name: "maps", Hosts: []string{"maps.example.com"}, Inject: store.InjectQuery, QueryParam: "key"},
				Secret:  admin.SecretInput{Value: "qk-value"},
			},
		},
		{
			name:  "oauth2",
			stdin: "client-secret\n",
			args: []string{"backend", "add", "graph", "--host", "graph.example.com", "--inject", "oauth2",
				"--token-url", "https://login.example.com/token", "--client-id", "abc",
				"--scope", "read", "--scope", "write", "--token-param", "audience=https://graph.example.com", "--secret-stdin"},
			want: admin.AddBackendRequest{
				Backend: store.Backend{Name: "graph", Hosts: []string{"graph.example.com"}, Inject: store.InjectOAuth2,
					OAuth2: &store.OAuth2{TokenURL: "https://login.example.com/token", ClientID: "abc",
						Scopes: []string{"read", "write"}, Params: map[string]string{"audience": "https://graph.example.com"}}},
				Secret: admin.SecretInput{Value: "client-secret"},
			},
		},
		{
			name: "basic with plain http, secret from env",
			args: []string{"backend", "add", "git", "--host", "git.corp.net", "--upstream", "http://10.0.0.9",
				"--allow-plain-http", "--basic-user", "bot", "--secret-env", "GIT_TOKEN"},
			want: admin.AddBackendRequest{
				Backend: store.Backend{Name: "git", Hosts: []string{"git.corp.net"}, Upstream: "http://10.0.0.9",
					AllowPlainHTTP: true, Inject: store.InjectBasic, BasicUser: "bot"},
				Secret: admin.SecretInput{Value: "ghp-env-value"},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDaemon(t)
			d.reply("POST /v1/backends", http.StatusCreated, store.Backend{Name: c.want.Backend.Name, Hosts: c.want.Backend.Hosts, CredentialVersion: 1})
			cl := newCLI(t, d.socket)
			cl.env["GIT_TOKEN"] = "ghp-env-value"
			r := cl.run(c.stdin, c.args...)
			if r.code != 0 {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			req := d.only()
			var got admin.AddBackendRequest
			if err := json.Unmarshal(req.Body, &got); err != nil {
				t.Fatalf("request body %s: %v", req.Body, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("request\n got %+v\nwant %+v", got, c.want)
			}
			if strings.Contains(r.stdout+r.stderr, got.Secret.Value) {
				t.Errorf("the secret was printed:\n%s%s", r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "added backend "+c.want.Backend.Name) {
				t.Errorf("stdout does not confirm the add:\n%s", r.stdout)
			}
		})
	}
}

func TestBackendAddUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no host", []string{"backend", "add", "x", "--secret-stdin"}, "--host is required"},
		{"bad inject", []string{"backend", "add", "x", "--host", "x.example.com", "--inject", "cookie", "--secret-stdin"}, "header, bearer, basic, query, oauth2"},
		{"bad rate", []string{"backend", "add", "x", "--host", "x.example.com", "--rate", "fast", "--secret-stdin"}, "N/s"},
		{"bad timeout", []string{"backend", "add", "x", "--host", "x.example.com", "--timeout", "soon", "--secret-stdin"}, "duration"},
		{"bad token param", []string{"backend", "add", "x", "--host", "x.example.com", "--token-param", "audience", "--secret-stdin"}, "key=value"},
		{"update with nothing", []string{"backend", "update", "x"}, "nothing to update"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDaemon(t)
			r := newCLI(t, d.socket).run("s\n", c.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 mentioning %q", r.code, r.stderr, c.want)
			}
			if n := len(d.requests()); n != 0 {
				t.Errorf("a usage error sent %d requests to the daemon", n)
			}
		})
	}
}

func TestBackendRotateAndUpdate(t *testing.T) {
	d := newFakeDaemon(t)
	d.reply("POST /v1/backends/{name}/rotate", http.StatusOK, store.Backend{Name: "crm", CredentialVersion: 2})
	d.reply("PATCH /v1/backends/{name}", http.StatusOK, store.Backend{Name: "crm", Rate: "5/m"})
	d.reply("GET /v1/backends/{name}", http.StatusOK, admin.BackendDetail{Backend: store.Backend{Name: "crm"}})
	cl := newCLI(t, d.socket)

	r := cl.run("new-secret\n", "backend", "rotate", "crm", "--secret-stdin")
	if r.code != 0 || !strings.Contains(r.stdout, "credential version 2") {
		t.Fatalf("rotate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rot admin.RotateRequest
	if err := json.Unmarshal(d.requests()[0].Body, &rot); err != nil || rot.Secret.Value != "new-secret" {
		t.Errorf("rotate body %s (%v); want secret new-secret", d.requests()[0].Body, err)
	}

	r = cl.run("", "backend", "update", "crm", "--rate", "5/m", "--no-scrub=false")
	if r.code != 0 || !strings.Contains(r.stdout, "rate: - → 5/m") {
		t.Fatalf("update: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	req := d.requests()[2]
	if req.Method != http.MethodPatch || req.Path != "/v1/backends/crm" {
		t.Errorf("update sent %s %s", req.Method, req.Path)
	}
	// Only the flags given are sent; the others stay as they are.
	var body map[string]any
	_ = json.Unmarshal(req.Body, &body)
	want := map[string]any{"rate": "5/m", "no_scrub": false}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("update body %v, want %v", body, want)
	}
}

func TestBackendListJSON(t *testing.T) {
	d := newFakeDaemon(t)
	setAt := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	d.reply("GET /v1/backends", http.StatusOK, []store.Backend{
		{Name: "openai", Hosts: []string{"api.openai.com"}, Inject: store.InjectBearer, CredentialVersion: 3, CredentialSetAt: setAt},
	})
	r := newCLI(t, d.socket).run("", "backend", "list", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got []store.Backend
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not a JSON list of backends: %v\n%s", err, r.stdout)
	}
	if len(got) != 1 || got[0].Name != "openai" || got[0].CredentialVersion != 3 || !got[0].CredentialSetAt.Equal(setAt) {
		t.Errorf("got %+v", got)
	}
}

func TestEmptyListsAreJSONArrays(t *testing.T) {
	d := newFakeDaemon(t)
	for _, p := range []string{"GET /v1/backends", "GET /v1/agents", "GET /v1/grants", "GET /v1/tokens", "GET /v1/idps"} {
		d.mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("null")) })
	}
	cl := newCLI(t, d.socket)
	for _, group := range []string{"backend", "agent", "grant", "token", "idp"} {
		r := cl.run("", group, "list", "-o", "json")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("%s list -o json on nothing: exit %d, stdout %q; want []", group, r.code, r.stdout)
		}
	}
}

func TestBackendShowTable(t *testing.T) {
	d := newFakeDaemon(t)
	d.reply("GET /v1/backends/{name}", http.StatusOK, admin.BackendDetail{
		Backend: store.Backend{Name: "legacy", Hosts: []string{"legacy.corp.net"}, Upstream: "http://10.0.0.7",
			AllowPlainHTTP: true, Inject: store.InjectHeader, Header: "x-key", CredentialVersion: 4,
			CredentialSetAt: time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)},
		Grants: []store.Grant{{Agent: "bot", Backend: "legacy", Methods: []string{"GET"}, Paths: []string{"/v1/**"}}},
	})
	r := newCLI(t, d.socket).run("", "backend", "show", "legacy")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"version 4", "header x-key", "bot", "/v1/**", "warning: the upstream is plain http"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("backend show lacks %q:\n%s", want, r.stdout)
		}
	}
}
