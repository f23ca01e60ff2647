package badgerstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
	"github.com/agw-dev/agw/store/storetest"
)

func openDir(t testing.TB, dir string, opts badgerstore.Options) *badgerstore.Store {
	t.Helper()
	s, err := badgerstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTemp(t testing.TB) *badgerstore.Store {
	t.Helper()
	return openDir(t, t.TempDir(), badgerstore.Options{})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// noRev drops a mutation's revision, for tests about something else.
func noRev(_ store.Revision, err error) error { return err }

// dropRev drops the revision of a mutation that also returns an object.
func dropRev[T any](v T, _ store.Revision, err error) (T, error) { return v, err }

func admin(action, target string) store.AuditEvent {
	return store.AuditEvent{Kind: store.KindAdmin, Action: action, Target: target}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.RunHarness(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openDir(t, t.TempDir(), badgerstore.WithSmallMemTable(badgerstore.Options{}))
		},
		Compact: func(t *testing.T, s store.Store, keepAfter store.Revision) {
			must(t, s.(*badgerstore.Store).CompactChanges(keepAfter))
		},
		Synctest: true,
	})
}

// populate writes one of everything plus some request events.
func populate(t *testing.T, s *badgerstore.Store) {
	t.Helper()
	ctx := t.Context()
	must(t, noRev(s.CreateIdP(ctx, &store.IdP{Name: "corp", Issuer: "https://login.example.com", Audience: "agw"}, admin("idp.add", "corp"))))
	must(t, noRev(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: []byte("v1")}, admin("backend.add", "crm"))))
	_, err := dropRev(s.RotateCredential(ctx, &store.Credential{Backend: "crm", Sealed: []byte("v2")}, admin("backend.rotate", "crm")))
	must(t, err)
	must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "bot", IdP: "corp", Subject: "c1"}, admin("agent.add", "bot"))))
	must(t, noRev(s.PutGrant(ctx, &store.Grant{Agent: "bot", Backend: "crm"}, admin("grant.add", "bot/crm"))))
	must(t, noRev(s.CreateToken(ctx, &store.Token{ID: "t1", Agent: "bot", Hash: []byte{1, 2, 3}}, admin("token.mint", "t1"))))
	var evs []store.AuditEvent
	for i := range 20 {
		evs = append(evs, store.AuditEvent{Kind: store.KindRequest, Agent: "bot", Backend: "crm", Status: 200 + i})
	}
	must(t, s.AppendAudit(ctx, evs))
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	populate(t, s)
	ctx := t.Context()
	snap, err := s.Load(ctx)
	must(t, err)
	seq, err := s.LastAuditSeq(ctx)
	must(t, err)
	must(t, s.Close())

	s = openDir(t, dir, badgerstore.Options{})
	snap2, err := s.Load(ctx)
	must(t, err)
	if !reflect.DeepEqual(snap, snap2) {
		t.Errorf("snapshot after reopen differs:\nbefore %+v\nafter  %+v", snap, snap2)
	}
	if seq2, _ := s.LastAuditSeq(ctx); seq2 != seq {
		t.Errorf("LastAuditSeq after reopen = %d, want %d", seq2, seq)
	}
	// The chain continues where it stopped.
	must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "late"}, admin("agent.add", "late"))))
	if seq3, _ := s.LastAuditSeq(ctx); seq3 != seq+1 {
		t.Errorf("seq after reopen+write = %d, want %d", seq3, seq+1)
	}
	n, err := s.VerifyAudit(ctx)
	if err != nil || uint64(n) != seq+1 {
		t.Errorf("VerifyAudit = %d, %v; want %d, nil", n, err, seq+1)
	}
}

func TestOpenLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	_, err = badgerstore.Open(dir, badgerstore.Options{})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("another agw serve is using %s (stop it first, or pass a different --data-dir)", dir)
	if err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	must(t, first.Close())
	second, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	must(t, second.Close())
}

// TestOpenOlderSchema: a version 1 or 2 store opens and is marked as
// the current version, so an older agw refuses it from then on. Its grants, written
// without a generation, are tagged with their backends' and stay live.
func TestOpenOlderSchema(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"1", "2"} {
		t.Run("version "+version, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx := t.Context()
			s, err := badgerstore.Open(dir, badgerstore.Options{})
			must(t, err)
			must(t, noRev(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: []byte("v1")}, admin("backend.add", "crm"))))
			// More grants than one upgrade transaction tags, written as
			// an agw before version 3 wrote them.
			names := make([]string, 1500)
			for i := range names {
				names[i] = fmt.Sprintf("agent%04d", i)
			}
			must(t, s.BulkAgents(names))
			for _, a := range names {
				g := store.Grant{Agent: a, Backend: "crm", Methods: []string{"*"}, Paths: []string{"/**"}}
				js, err := json.Marshal(g)
				must(t, err)
				must(t, s.RawSet([]byte("g/"+a+"/crm"), js))
				must(t, s.RawSet([]byte("gb/crm/"+a), nil))
			}
			must(t, s.RawSet(badgerstore.SchemaKey, []byte(version)))
			must(t, s.Close())

			s = openDir(t, dir, badgerstore.Options{})
			if v, _ := s.RawGet(badgerstore.SchemaKey); string(v) != "4" {
				t.Errorf("schema after opening a version %s store = %q, want 4", version, v)
			}
			snap, err := s.Load(ctx)
			must(t, err)
			if len(snap.Grants) != len(names) {
				t.Errorf("%d grants loaded after the upgrade, want %d", len(snap.Grants), len(names))
			}
			must(t, noRev(s.PutGrant(ctx, &store.Grant{Agent: names[0], Backend: "crm", Methods: []string{"GET"}}, admin("grant.add", names[0]+"/crm"))))
			must(t, noRev(s.DeleteGrant(ctx, names[1], "crm", admin("grant.remove", names[1]+"/crm"))))
		})
	}
}

func TestOpenNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	if v, _ := s.RawGet(badgerstore.SchemaKey); string(v) != "4" {
		t.Errorf("schema written as %q, want 4", v)
	}
	must(t, s.RawSet(badgerstore.SchemaKey, []byte("5")))
	must(t, s.Close())
	_, err = badgerstore.Open(dir, badgerstore.Options{})
	if !errors.Is(err, badgerstore.ErrNewerSchema) || !strings.Contains(err.Error(), "version 5") {
		t.Fatalf("Open = %v, want ErrNewerSchema naming version 5", err)
	}
	// The refused open released the directory.
	_, err = badgerstore.Open(dir, badgerstore.Options{})
	if errors.Is(err, store.ErrLocked) {
		t.Errorf("refused open left the directory locked: %v", err)
	}
}

func TestOptionsNow(t *testing.T) {
	t.Parallel()
	fixed := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	s := openDir(t, t.TempDir(), badgerstore.Options{Now: func() time.Time { return fixed }})
	a := &store.Agent{Name: "bot"}
	must(t, noRev(s.CreateAgent(t.Context(), a, admin("agent.add", "bot"))))
	if !a.CreatedAt.Equal(fixed) {
		t.Errorf("CreatedAt = %v, want %v", a.CreatedAt, fixed)
	}
	var got store.AuditEvent
	must(t, s.QueryAudit(t.Context(), store.AuditQuery{}, func(ev store.AuditEvent) bool { got = ev; return false }))
	if !got.Time.Equal(fixed) {
		t.Errorf("audit time = %v, want %v", got.Time, fixed)
	}
}

// TestSealedRoundTrip: the store only ever sees sealed bytes, so what matters
// is that they come back exactly, through Load, rotation and a reopen.
func TestSealedRoundTrip(t *testing.T) {
	t.Parallel()
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	big := make([]byte, 64<<10)
	r := rand.NewChaCha8([32]byte{7})
	r.Read(big)
	cases := []struct {
		name   string
		sealed []byte
	}{
		{"every byte value", every},
		{"zeros", make([]byte, 32)},
		{"age armor", []byte("-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n")},
		{"64KiB random", big},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx := t.Context()
			s, err := badgerstore.Open(dir, badgerstore.Options{})
			must(t, err)
			must(t, noRev(s.CreateBackend(ctx, &store.Backend{Name: "api", Hosts: []string{"api.example.com"}}, &store.Credential{Sealed: bytes.Clone(tc.sealed)}, admin("backend.add", "api"))))
			rotated := append(bytes.Clone(tc.sealed), 'x')
			_, err = dropRev(s.RotateCredential(ctx, &store.Credential{Backend: "api", Sealed: rotated}, admin("backend.rotate", "api")))
			must(t, err)
			must(t, s.Close())

			s = openDir(t, dir, badgerstore.Options{})
			snap, err := s.Load(ctx)
			must(t, err)
			if len(snap.Credentials) != 1 || snap.Credentials[0].Version != 2 || !bytes.Equal(snap.Credentials[0].Sealed, rotated) {
				t.Errorf("Load credentials = %d entries, want version 2 with exact bytes", len(snap.Credentials))
			}
			old, found, err := s.CredentialVersion("api", 1)
			must(t, err)
			if !found || !bytes.Equal(old.Sealed, tc.sealed) {
				t.Errorf("version 1 found=%v, bytes equal=%v", found, bytes.Equal(old.Sealed, tc.sealed))
			}
		})
	}
}

// waitFor polls cond until it holds; the test fails after a minute.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func countPrefix(t testing.TB, s *badgerstore.Store, prefix string) int {
	t.Helper()
	n, err := s.CountPrefix(prefix)
	must(t, err)
	return n
}

// TestDeleteAgentManyTokens: an agent with more tokens than one transaction
// holds is deleted at once; its tokens are gone from every read at the
// commit, a re-created agent of the same name does not get them back, and
// the cleaner removes their keys in the background.
func TestDeleteAgentManyTokens(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("writes 60k tokens")
	}
	s := openTemp(t)
	ctx := t.Context()
	must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "bot"}, admin("agent.add", "bot"))))
	must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "other"}, admin("agent.add", "other"))))
	must(t, noRev(s.CreateToken(ctx, &store.Token{ID: "keep", Agent: "other", Hash: []byte("h")}, admin("token.mint", "keep"))))
	tokens := make([]store.Token, 60000)
	for i := range tokens {
		tokens[i] = store.Token{ID: fmt.Sprintf("tok%06d", i), Agent: "bot", Hash: []byte("h")}
	}
	must(t, s.BulkTokens(tokens))
	if n := s.MaxBatchCount(); int64(len(tokens))*2 <= n {
		t.Fatalf("fixture too small: %d tokens fit one transaction of %d keys", len(tokens), n)
	}
	cleaned := s.Cleaned()
	seq, _ := s.LastAuditSeq(ctx)
	must(t, noRev(s.DeleteAgent(ctx, "bot", admin("agent.remove", "bot"))))
	if seq2, _ := s.LastAuditSeq(ctx); seq2 != seq+1 {
		t.Errorf("seq moved from %d to %d, want one admin event", seq, seq2)
	}
	// Re-created at once, before the cleaner is done: the old tokens stay dead.
	must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "bot"}, admin("agent.add", "bot"))))
	must(t, noRev(s.CreateToken(ctx, &store.Token{ID: "fresh", Agent: "bot", Hash: []byte("h")}, admin("token.mint", "fresh"))))
	snap, err := s.Load(ctx)
	must(t, err)
	var ids []string
	for _, tk := range snap.Tokens {
		ids = append(ids, tk.ID)
	}
	if !reflect.DeepEqual(ids, []string{"fresh", "keep"}) {
		t.Errorf("tokens after delete and re-create = %d (%.5v), want [fresh keep]", len(ids), ids)
	}
	_, err = dropRev(s.RevokeToken(ctx, "tok000001", time.Time{}, admin("token.revoke", "tok000001")))
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking a deleted agent's token = %v, want ErrNotFound", err)
	}
	waitFor(t, "the cleaner", func() bool { return s.Cleaned() > cleaned })
	if n := countPrefix(t, s, "t/"); n != 2 {
		t.Errorf("%d token records left, want 2 (fresh, keep)", n)
	}
	if n := countPrefix(t, s, "ta/bot/"); n != 1 {
		t.Errorf("%d index entries left for bot, want 1 (fresh)", n)
	}
	if n := countPrefix(t, s, "xa/"); n != 0 {
		t.Errorf("%d cleanup markers left", n)
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Error(err)
	}
}

// TestCleanupResumesAtOpen: a cleanup cut short by Close (or a crash) is
// finished by the next Open, and nothing is reachable in between.
func TestCleanupResumesAtOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "bot"}, admin("agent.add", "bot"))))
	tokens := make([]store.Token, 3000)
	for i := range tokens {
		tokens[i] = store.Token{ID: fmt.Sprintf("tok%06d", i), Agent: "bot", Hash: []byte("h")}
	}
	must(t, s.BulkTokens(tokens))
	must(t, noRev(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: []byte("v1")}, admin("backend.add", "crm"))))
	must(t, s.BulkCredentials("crm", 3000))
	names := make([]string, 3000)
	for i := range names {
		names[i] = fmt.Sprintf("agent%06d", i)
	}
	must(t, s.BulkAgents(names))
	must(t, s.BulkGrants("crm", names))
	s.PauseCleaner()
	must(t, noRev(s.DeleteAgent(ctx, "bot", admin("agent.remove", "bot"))))
	must(t, noRev(s.DeleteBackend(ctx, "crm", admin("backend.remove", "crm"))))
	snap, err := s.Load(ctx)
	must(t, err)
	if len(snap.Tokens) != 0 || len(snap.Backends) != 0 || len(snap.Credentials) != 0 || len(snap.Grants) != 0 {
		t.Errorf("after delete: %d tokens, %d backends, %d credentials, %d grants loaded",
			len(snap.Tokens), len(snap.Backends), len(snap.Credentials), len(snap.Grants))
	}
	if n := countPrefix(t, s, "t/"); n != len(tokens) {
		t.Fatalf("%d token keys before reopen, want the paused cleaner to have left %d", n, len(tokens))
	}
	if n := countPrefix(t, s, "gb/crm/"); n != len(names) {
		t.Fatalf("%d grant index keys before reopen, want the paused cleaner to have left %d", n, len(names))
	}
	must(t, s.Close())

	s = openDir(t, dir, badgerstore.Options{})
	waitFor(t, "both cleanups", func() bool { return s.Cleaned() == 2 })
	for _, p := range []string{"t/", "ta/", "c/", "g/", "gb/", "xa/", "xb/"} {
		if n := countPrefix(t, s, p); n != 0 {
			t.Errorf("%d keys under %s after the cleanup", n, p)
		}
	}
	// The re-created backend starts at version 1 and sees none of the old ones.
	must(t, noRev(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: []byte("new")}, admin("backend.add", "crm"))))
	if _, found, _ := s.CredentialVersion("crm", 2); found {
		t.Error("version 2 of the deleted backend survived")
	}
}

// TestAuditSyncedInBackground: audit appends leave the syncing to the
// background loop, which catches up within the interval.
func TestAuditSyncedInBackground(t *testing.T) {
	t.Parallel()
	s := openDir(t, t.TempDir(), badgerstore.Options{SyncInterval: 20 * time.Millisecond})
	must(t, s.AppendAudit(t.Context(), []store.AuditEvent{{Kind: store.KindRequest}}))
	waitFor(t, "the background sync", func() bool { return !s.Dirty() })
}
