package policy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/store"
)

func TestGlobMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/**", "/", true},
		{"/**", "/a/b/c", true},
		{"/v1/**", "/v1", true},
		{"/v1/**", "/v1/", true},
		{"/v1/**", "/v1/chat/completions", true},
		{"/v1/**", "/v1x", false},
		{"/v1/**", "/v2/models", false},
		{"/v1/*", "/v1/models", true},
		{"/v1/*", "/v1/models/gpt", false},
		{"/v1/*", "/v1", false},
		{"/v1/*/files", "/v1/abc/files", true},
		{"/v1/*/files", "/v1/abc/def/files", false},
		{"/v1/**/files", "/v1/files", true},
		{"/v1/**/files", "/v1/a/b/files", true},
		{"/v1/**/files", "/v1/a/b/files/x", false},
		{"/repos/*/*.git/**", "/repos/org/app.git/info/refs", true},
		{"/repos/*/*.git/**", "/repos/org/app/info/refs", false},
		{"/a*b", "/ab", true},
		{"/a*b", "/axxb", true},
		{"/a*b", "/axxbc", false},
		{"/models", "/models", true},
		{"/models", "/models/", false},
		{"/models", "/Models", false},
		{"/**/admin", "/admin", true},
		{"/**/admin", "/x/y/admin", true},
		{"/**/a/**/b", "/x/a/y/z/b", true},
		{"/**/a/**/b", "/x/a/y/z/c", false},
		{"no-slash", "/no-slash", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			if got := GlobMatch(tt.pattern, tt.path); got != tt.want {
				t.Errorf("GlobMatch(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	g := &store.Grant{Agent: "bot", Backend: "openai", Methods: []string{"GET", "POST"}, Paths: []string{"/v1/**"}}
	tests := []struct {
		name         string
		grant        *store.Grant
		method, path string
		wantReason   string // "" allows
	}{
		{"allowed", g, "POST", "/v1/chat/completions", ""},
		{"no grant", nil, "GET", "/v1/models", `no grant for agent "bot" on backend "openai"`},
		{"method", g, "DELETE", "/v1/files/x", "method DELETE not in grant"},
		{"lower-case method", g, "get", "/v1/models", "method get not in grant"},
		{"path", g, "GET", "/admin", "path /admin not in grant patterns [/v1/**]"},
		{"any method", &store.Grant{Methods: []string{"*"}, Paths: []string{"/**"}}, "PATCH", "/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Authorize(tt.grant, "bot", "openai", tt.method, tt.path)
			if tt.wantReason == "" {
				if d != nil {
					t.Fatalf("denied: %s", d.Reason)
				}
				return
			}
			if d == nil {
				t.Fatal("allowed, want a denial")
			}
			if d.Status != http.StatusForbidden || d.Type != deny.Forbidden {
				t.Errorf("status %d type %s, want 403 %s", d.Status, d.Type, deny.Forbidden)
			}
			if !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("reason %q does not name the rule %q", d.Reason, tt.wantReason)
			}
			if !strings.Contains(d.Message(), "policy decision") || !strings.Contains(d.Message(), "will not help") {
				t.Errorf("message %q does not say it is policy and that retrying will not help", d.Message())
			}
		})
	}
}

func BenchmarkGlobMatch(b *testing.B) {
	for b.Loop() {
		GlobMatch("/v1/**/files/*.json", "/v1/org/project/files/data.json")
	}
}
