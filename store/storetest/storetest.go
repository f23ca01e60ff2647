// Package storetest is the conformance suite for store.Store
// implementations: every validation and reference rule reached through the
// store, atomicity of failed writes, cascades, credential rotation, tokens,
// revisions and the change feed, and the audit trail with its verification
// and pruning. An implementation's test calls RunHarness (or Run) with a
// function that opens a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// Harness is what the suite needs from an implementation.
type Harness struct {
	// Open returns a new empty store for each call and may register its
	// own cleanup; the suite may Close the store itself. Required.
	Open func(t *testing.T) store.Store
	// Compact, if set, drops s's change history up to and including
	// keepAfter, so that Watch from an earlier revision fails with
	// ErrCompacted while Watch from keepAfter on still works. Without it
	// the compaction tests are skipped.
	Compact func(t *testing.T, s store.Store, keepAfter store.Revision)
	// Synctest says Open, the mutations and Watch work inside a
	// testing/synctest bubble: the store's goroutines wait only on
	// channels, timers and local files, never on the network. The
	// heartbeat test then runs on the bubble's clock and checks every
	// interval; otherwise it waits on the real clock for a few heartbeats.
	Synctest bool
}

// Run runs the suite with open and no optional hooks.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	RunHarness(t, Harness{Open: open})
}

// RunHarness runs the suite against h.
func RunHarness(t *testing.T, h Harness) {
	open := h.Open
	t.Run("Rejects", func(t *testing.T) { testRejects(t, open) })
	t.Run("Backends", func(t *testing.T) { testBackends(t, open) })
	t.Run("Agents", func(t *testing.T) { testAgents(t, open) })
	t.Run("GrantsAndTokens", func(t *testing.T) { testGrantsAndTokens(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("AuditVerifyPrune", func(t *testing.T) { testAuditVerifyPrune(t, open) })
	t.Run("Revisions", func(t *testing.T) { testRevisions(t, open) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, h) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open) })
}

// Fixture names used by seed.
const (
	idpCorp    = "corp"
	backendCRM = "crm"
	backendHR  = "hr"
	agentBot   = "bot" // token-only agent
	agentSSO   = "sso" // bound to idp corp, subject "client-1"
	tokenBot   = "tok-bot"
	tokenSSO   = "tok-sso"
)

func ev(action, target string) store.AuditEvent {
	return store.AuditEvent{Kind: store.KindAdmin, Action: action, Target: target, PeerUID: 1000, PeerPID: 42}
}

func newBackend(name string, hosts ...string) *store.Backend {
	return &store.Backend{Name: name, Hosts: hosts}
}

func sealed(s string) *store.Credential {
	return &store.Credential{Sealed: []byte("age-sealed:" + s)}
}

func newIdP(name string) *store.IdP {
	return &store.IdP{Name: name, Issuer: "https://login.example.com/" + name, Audience: "agw"}
}

func newToken(id, agent string) *store.Token {
	return &store.Token{ID: id, Agent: agent, Label: "ci", Hash: []byte("sha256-of-" + id)}
}

// seed fills s with two backends, an IdP, two agents, a grant each and a
// token each, and returns the context used.
func seed(t *testing.T, s store.Store) context.Context {
	t.Helper()
	ctx := t.Context()
	steps := []struct {
		name string
		do   func() error
	}{
		{"idp", func() error { return noRev(s.CreateIdP(ctx, newIdP(idpCorp), ev("idp.add", idpCorp))) }},
		{"backend crm", func() error {
			return noRev(s.CreateBackend(ctx, newBackend(backendCRM, "crm.example.com", "*.crm.example.com"), sealed("crm-v1"), ev("backend.add", backendCRM)))
		}},
		{"backend hr", func() error {
			return noRev(s.CreateBackend(ctx, newBackend(backendHR, "hr.corp.net"), sealed("hr-v1"), ev("backend.add", backendHR)))
		}},
		{"agent bot", func() error {
			return noRev(s.CreateAgent(ctx, &store.Agent{Name: agentBot}, ev("agent.add", agentBot)))
		}},
		{"agent sso", func() error {
			return noRev(s.CreateAgent(ctx, &store.Agent{Name: agentSSO, IdP: idpCorp, Subject: "client-1"}, ev("agent.add", agentSSO)))
		}},
		{"grant bot crm", func() error {
			return noRev(s.PutGrant(ctx, &store.Grant{Agent: agentBot, Backend: backendCRM}, ev("grant.add", agentBot+"/"+backendCRM)))
		}},
		{"grant sso hr", func() error {
			return noRev(s.PutGrant(ctx, &store.Grant{Agent: agentSSO, Backend: backendHR, Methods: []string{"get"}}, ev("grant.add", agentSSO+"/"+backendHR)))
		}},
		{"token bot", func() error {
			return noRev(s.CreateToken(ctx, newToken(tokenBot, agentBot), ev("token.mint", tokenBot)))
		}},
		{"token sso", func() error {
			return noRev(s.CreateToken(ctx, newToken(tokenSSO, agentSSO), ev("token.mint", tokenSSO)))
		}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("seed %s: %v", st.name, err)
		}
	}
	return ctx
}

// seedEvents is how many admin events seed writes.
const seedEvents = 9

// state is what a failed write must leave untouched.
type state struct {
	snap *store.Snapshot
	seq  uint64
}

func stateOf(t *testing.T, s store.Store) state {
	t.Helper()
	snap, err := s.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	seq, err := s.LastAuditSeq(t.Context())
	if err != nil {
		t.Fatalf("LastAuditSeq: %v", err)
	}
	return state{snap, seq}
}

func mustLoad(t *testing.T, s store.Store) *store.Snapshot {
	t.Helper()
	return stateOf(t, s).snap
}

// wantErr checks err matches sentinel and mentions every word.
func wantErr(t *testing.T, err, sentinel error, words ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %q, want it to mention %q", err, w)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func find[T any](xs []T, match func(T) bool) (T, bool) {
	for _, x := range xs {
		if match(x) {
			return x, true
		}
	}
	var zero T
	return zero, false
}

func backendIn(snap *store.Snapshot, name string) (store.Backend, bool) {
	return find(snap.Backends, func(b store.Backend) bool { return b.Name == name })
}

func credentialIn(snap *store.Snapshot, backend string) (store.Credential, bool) {
	return find(snap.Credentials, func(c store.Credential) bool { return c.Backend == backend })
}

func agentIn(snap *store.Snapshot, name string) (store.Agent, bool) {
	return find(snap.Agents, func(a store.Agent) bool { return a.Name == name })
}

func grantIn(snap *store.Snapshot, agent, backend string) (store.Grant, bool) {
	return find(snap.Grants, func(g store.Grant) bool { return g.Agent == agent && g.Backend == backend })
}

func tokenIn(snap *store.Snapshot, id string) (store.Token, bool) {
	return find(snap.Tokens, func(tk store.Token) bool { return tk.ID == id })
}

func sameState(t *testing.T, before, after state) {
	t.Helper()
	if after.seq != before.seq {
		t.Errorf("audit seq moved from %d to %d on a failed write", before.seq, after.seq)
	}
	if !reflect.DeepEqual(before.snap, after.snap) {
		t.Errorf("state changed on a failed write:\nbefore %+v\nafter  %+v", before.snap, after.snap)
	}
}

func testClosed(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	must(t, s.Close())
	must(t, s.Close())
	calls := []struct {
		name string
		do   func() error
	}{
		{"Load", func() error { _, err := s.Load(ctx); return err }},
		{"CreateAgent", func() error { return noRev(s.CreateAgent(ctx, &store.Agent{Name: "late"}, ev("agent.add", "late"))) }},
		{"AppendAudit", func() error { return s.AppendAudit(ctx, []store.AuditEvent{{Kind: store.KindRequest}}) }},
		{"QueryAudit", func() error {
			return s.QueryAudit(ctx, store.AuditQuery{}, func(store.AuditEvent) bool { return true })
		}},
		{"LastAuditSeq", func() error { _, err := s.LastAuditSeq(ctx); return err }},
		{"Watch", func() error {
			return s.Watch(ctx, 0, func(store.ChangeSet) error { return nil })
		}},
		{"VerifyAudit", func() error { _, err := s.VerifyAudit(ctx); return err }},
		{"PruneAudit", func() error { _, err := s.PruneAudit(ctx, time.Now()); return err }},
		{"RevokeToken", func() error {
			_, err := dropRev(s.RevokeToken(ctx, "x", time.Now(), ev("token.revoke", "x")))
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); !errors.Is(err, store.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", c.name, err)
			}
		})
	}
}

// noRev drops a mutation's revision, for tests about something else.
func noRev(_ store.Revision, err error) error { return err }

// dropRev drops the revision of a mutation that also returns an object.
func dropRev[T any](v T, _ store.Revision, err error) (T, error) { return v, err }
