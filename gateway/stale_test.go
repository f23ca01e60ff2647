package gateway

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// A view the change feed has not confirmed within MaxStaleness refuses
// every request with 503 agw_unavailable, and serves again once confirmed.
// Driven through ServeHTTP with a recorder and a synthetic TLS state.
func TestStaleViewFailsClosed(t *testing.T) {
	t.Parallel()
	keys, _ := crypto.NewKeyring()
	sealed, _ := keys.Seal([]byte(canary))
	tok, id, hash, _ := crypto.MintToken()
	view, err := state.Load(&store.Snapshot{
		Revision:    7,
		Backends:    []store.Backend{{Name: "api", Hosts: []string{testHost}, Inject: store.InjectBearer, Upstream: "https://127.0.0.1:1", CredentialVersion: 1}},
		Credentials: []store.Credential{{Backend: "api", Version: 1, Sealed: sealed}},
		Agents:      []store.Agent{{Name: "bot"}},
		Tokens:      []store.Token{{ID: id, Agent: "bot", Hash: hash}},
	}, keys)
	if err != nil {
		t.Fatal(err)
	}
	var audits []store.AuditEvent
	now := time.Now().Add(10 * time.Second) // ten seconds after the view was loaded
	p := New(Config{State: view, MaxStaleness: 5 * time.Second, Now: func() time.Time { return now },
		Audit: func(ev store.AuditEvent) { audits = append(audits, ev) }})
	serve := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://"+testHost+"/v1/x", nil)
		r.TLS = &tls.ConnectionState{ServerName: testHost}
		r.Header.Set("Authorization", "Bearer "+string(tok.Reveal()))
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w
	}
	w := serve()
	if w.Code != http.StatusServiceUnavailable || agwError(t, w.Body.Bytes()).Type != deny.Unavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("stale view: %d %s", w.Code, w.Body)
	}
	if p.Stale() == "" {
		t.Error("Stale() does not say why")
	}
	if len(audits) != 1 || audits[0].Decision != store.Deny || audits[0].Status != 503 {
		t.Errorf("audit %+v", audits)
	}
	// A heartbeat confirms the view: the request gets past the check (and
	// fails on the unreachable upstream instead).
	if err := view.Apply(store.ChangeSet{Revision: 7}, keys, now); err != nil {
		t.Fatal(err)
	}
	if w := serve(); w.Code == http.StatusServiceUnavailable || p.Stale() != "" {
		t.Fatalf("confirmed view still refused: %d %s", w.Code, w.Body)
	}
}
