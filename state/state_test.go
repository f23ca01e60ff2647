package state

import (
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

func TestStateRouting(t *testing.T) {
	s := New()
	s.PutBackend(store.Backend{Name: "crm", Hosts: []string{"*.crm.example.com"}}, crypto.NewSecret([]byte("a")))
	s.PutBackend(store.Backend{Name: "api", Hosts: []string{"api.crm.example.com", "api.example.com"}}, crypto.NewSecret([]byte("b")))
	cases := []struct {
		host, want string
	}{
		{"api.crm.example.com", "api"}, // an exact host wins over a wildcard
		{"eu.crm.example.com", "crm"},
		{"a.b.crm.example.com", ""}, // a wildcard covers one label only
		{"crm.example.com", ""},
		{"api.example.com", "api"},
		{"example.com", ""},
	}
	for _, c := range cases {
		t.Run(c.host, func(t *testing.T) {
			got := ""
			if r := s.RouteHost(c.host); r != nil {
				got = r.Backend.Name
			}
			if got != c.want {
				t.Errorf("routeHost(%q) = %q, want %q", c.host, got, c.want)
			}
			if s.Intercepts(c.host) != (c.want != "") {
				t.Errorf("Intercepts(%q) = %v", c.host, !(c.want != ""))
			}
		})
	}

	// Changing a backend's hosts drops the old ones at once.
	s.PutBackend(store.Backend{Name: "api", Hosts: []string{"api2.example.com"}}, crypto.NewSecret([]byte("b")))
	if s.RouteHost("api.example.com") != nil || s.RouteHost("api2.example.com") == nil {
		t.Error("updating a backend's hosts left the old host routed or missed the new one")
	}
	// A credential rotation publishes a new route; a request holding the old
	// one keeps its secret.
	old := s.RouteHost("api2.example.com")
	s.PutBackend(store.Backend{Name: "api", Hosts: []string{"api2.example.com"}, CredentialVersion: 2}, crypto.NewSecret([]byte("c")))
	if string(old.Secret.Reveal()) != "b" || string(s.RouteHost("api2.example.com").Secret.Reveal()) != "c" {
		t.Error("rotation changed a route already handed to a request, or did not publish the new secret")
	}
	s.RemoveBackend("crm")
	if s.RouteHost("eu.crm.example.com") != nil {
		t.Error("a removed wildcard backend still routes")
	}
}

func TestStateRemoveAgentCascades(t *testing.T) {
	s := New()
	s.PutBackend(store.Backend{Name: "hr", Hosts: []string{"hr.corp.net"}}, crypto.NewSecret([]byte("x")))
	s.PutAgent(store.Agent{Name: "bot", IdP: "okta", Subject: "0oa1"})
	s.PutAgent(store.Agent{Name: "other"})
	s.PutGrant(store.Grant{Agent: "bot", Backend: "hr"})
	s.PutGrant(store.Grant{Agent: "other", Backend: "hr"})
	s.PutToken(store.Token{ID: "t1", Agent: "bot", CreatedAt: time.Now()})
	s.PutToken(store.Token{ID: "t2", Agent: "other", CreatedAt: time.Now()})
	s.MarkSeen("bot", time.Now())

	s.RemoveAgent("bot")
	if s.Agent("bot") != nil || s.AgentBySubject("okta", "0oa1") != nil {
		t.Error("agent or its IdP subject still present")
	}
	if s.Grant("bot", "hr") != nil || s.Token("t1") != nil || len(s.ListTokens("bot")) != 0 {
		t.Error("the removed agent's grants or tokens are still present")
	}
	if s.Grant("other", "hr") == nil || s.Token("t2") == nil {
		t.Error("removing one agent removed another agent's grant or token")
	}
	if !s.Seen("bot").IsZero() {
		t.Error("last-seen time kept for a removed agent")
	}

	s.RemoveBackend("hr")
	if s.Grant("other", "hr") != nil {
		t.Error("removing a backend kept grants to it")
	}
}
