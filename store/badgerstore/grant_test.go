package badgerstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// agentNames returns n agent names.
func agentNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("agent%06d", i)
	}
	return names
}

// grantsTo returns the loaded grants to backend, by agent.
func grantsTo(t testing.TB, s *badgerstore.Store, backend string) map[string]store.Grant {
	t.Helper()
	snap, err := s.Load(t.Context())
	must(t, err)
	gs := map[string]store.Grant{}
	for _, g := range snap.Grants {
		if g.Backend == backend {
			gs[g.Agent] = g
		}
	}
	return gs
}

// ticking is a clock that moves a second on every reading, so times
// stamped by different writes differ.
type ticking struct {
	mu  sync.Mutex
	now time.Time
}

func (c *ticking) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// TestDeleteBackendManyGrants: a backend granted to more agents than one
// transaction could delete the grants of is deleted at once; its grants
// are gone from every read at the commit, and the cleaner removes their
// keys in the background.
func TestDeleteBackendManyGrants(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("writes 30k agents and grants")
	}
	s := openTemp(t)
	ctx := t.Context()
	for _, b := range []string{"crm", "hr"} {
		must(t, noRev(s.CreateBackend(ctx, &store.Backend{Name: b, Hosts: []string{b + ".example.com"}}, &store.Credential{Sealed: []byte("v1")}, admin("backend.add", b))))
	}
	names := agentNames(30000)
	must(t, s.BulkAgents(names))
	must(t, s.BulkGrants("crm", names))
	must(t, s.BulkGrants("hr", names[:10]))
	// Deleting the grants with the backend took two keys per grant.
	if n := s.MaxBatchCount(); int64(len(names))*2 <= n {
		t.Fatalf("fixture too small: deleting %d grants fits one transaction of %d keys", len(names), n)
	}
	cleaned := s.Cleaned()
	seq, _ := s.LastAuditSeq(ctx)
	must(t, noRev(s.DeleteBackend(ctx, "crm", admin("backend.remove", "crm"))))
	if seq2, _ := s.LastAuditSeq(ctx); seq2 != seq+1 {
		t.Errorf("seq moved from %d to %d, want one admin event", seq, seq2)
	}
	if gs := grantsTo(t, s, "crm"); len(gs) != 0 {
		t.Errorf("%d grants to the deleted backend still loaded", len(gs))
	}
	if gs := grantsTo(t, s, "hr"); len(gs) != 10 {
		t.Errorf("%d grants to another backend loaded, want 10", len(gs))
	}
	waitFor(t, "the cleaner", func() bool { return s.Cleaned() > cleaned })
	for prefix, want := range map[string]int{"g/": 10, "gb/crm/": 0, "gb/hr/": 10, "xb/": 0} {
		if n := countPrefix(t, s, prefix); n != want {
			t.Errorf("%d keys under %s after the cleanup, want %d", n, prefix, want)
		}
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Error(err)
	}
}

// TestRecreatedBackendGrants: a backend re-created under the same name
// before the cleaner ran inherits none of the old grants; a grant made to
// it is its own (a fresh creation time) and survives the cleaner, which
// removes the other orphans.
func TestRecreatedBackendGrants(t *testing.T) {
	t.Parallel()
	clock := &ticking{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := openDir(t, t.TempDir(), badgerstore.Options{Now: clock.Now})
	ctx := t.Context()
	newCRM := func() {
		t.Helper()
		must(t, noRev(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: []byte("v1")}, admin("backend.add", "crm"))))
	}
	newCRM()
	// More than one cleanup batch.
	names := agentNames(2500)
	must(t, s.BulkAgents(names))
	must(t, s.BulkGrants("crm", names))
	keep := names[7]
	must(t, noRev(s.PutGrant(ctx, &store.Grant{Agent: keep, Backend: "crm", Methods: []string{"GET"}}, admin("grant.add", keep+"/crm"))))
	old := grantsTo(t, s, "crm")[keep]

	s.PauseCleaner()
	cleaned := s.Cleaned()
	must(t, noRev(s.DeleteBackend(ctx, "crm", admin("backend.remove", "crm"))))
	newCRM()
	if gs := grantsTo(t, s, "crm"); len(gs) != 0 {
		t.Fatalf("the re-created backend inherited %d grants", len(gs))
	}
	g := &store.Grant{Agent: keep, Backend: "crm", Methods: []string{"POST"}}
	must(t, noRev(s.PutGrant(ctx, g, admin("grant.add", keep+"/crm"))))
	if g.CreatedAt.Equal(old.CreatedAt) {
		t.Errorf("the new grant kept the old one's creation time %v", old.CreatedAt)
	}
	gs := grantsTo(t, s, "crm")
	if len(gs) != 1 || gs[keep].CreatedAt != g.CreatedAt || len(gs[keep].Methods) != 1 || gs[keep].Methods[0] != "POST" {
		t.Fatalf("grants to the re-created backend = %+v, want only %s's new one", gs, keep)
	}

	s.ResumeCleaner()
	waitFor(t, "the cleaner", func() bool { return s.Cleaned() > cleaned })
	for prefix, want := range map[string]int{"g/": 1, "gb/crm/": 1, "xb/": 0} {
		if n := countPrefix(t, s, prefix); n != want {
			t.Errorf("%d keys under %s after the cleanup, want %d", n, prefix, want)
		}
	}
	if gs := grantsTo(t, s, "crm"); len(gs) != 1 || gs[keep].CreatedAt != g.CreatedAt {
		t.Errorf("grants to the re-created backend after the cleanup = %+v, want %s's", gs, keep)
	}
	must(t, noRev(s.DeleteGrant(ctx, keep, "crm", admin("grant.remove", keep+"/crm"))))
	for _, p := range []string{"g/", "gb/"} {
		if n := countPrefix(t, s, p); n != 0 {
			t.Errorf("%d keys under %s after deleting the last grant", n, p)
		}
	}
}

// TestDeleteGrantOrphan: a grant of a deleted backend is not found, whether
// or not a backend of the same name exists again, and its keys are left to
// the cleaner.
func TestDeleteGrantOrphan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		recreate bool
	}{
		{"backend gone", false},
		{"backend re-created", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openTemp(t)
			ctx := t.Context()
			crm := func() {
				must(t, noRev(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: []byte("v1")}, admin("backend.add", "crm"))))
			}
			crm()
			must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "bot"}, admin("agent.add", "bot"))))
			must(t, noRev(s.PutGrant(ctx, &store.Grant{Agent: "bot", Backend: "crm"}, admin("grant.add", "bot/crm"))))
			s.PauseCleaner()
			must(t, noRev(s.DeleteBackend(ctx, "crm", admin("backend.remove", "crm"))))
			if tc.recreate {
				crm()
			}
			seq, _ := s.LastAuditSeq(ctx)
			err := noRev(s.DeleteGrant(ctx, "bot", "crm", admin("grant.remove", "bot/crm")))
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("DeleteGrant of an orphan = %v, want ErrNotFound", err)
			}
			if seq2, _ := s.LastAuditSeq(ctx); seq2 != seq {
				t.Errorf("the refused delete moved the audit seq from %d to %d", seq, seq2)
			}
			if n := countPrefix(t, s, "g/bot/"); n != 1 {
				t.Errorf("%d grant records of bot, want the orphan left to the cleaner", n)
			}
			// Deleting the agent takes its orphan grant with it.
			must(t, noRev(s.DeleteAgent(ctx, "bot", admin("agent.remove", "bot"))))
			for _, p := range []string{"g/", "gb/"} {
				if n := countPrefix(t, s, p); n != 0 {
					t.Errorf("%d keys under %s after deleting the agent", n, p)
				}
			}
		})
	}
}
