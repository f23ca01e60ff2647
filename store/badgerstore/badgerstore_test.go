package badgerstore_test

import (
	"bytes"
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

func admin(action, target string) store.AuditEvent {
	return store.AuditEvent{Kind: store.KindAdmin, Action: action, Target: target}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// populate writes one of everything plus some request events.
func populate(t *testing.T, s *badgerstore.Store) {
	t.Helper()
	ctx := t.Context()
	must(t, s.CreateIdP(ctx, &store.IdP{Name: "corp", Issuer: "https://login.example.com", Audience: "agw"}, admin("idp.add", "corp")))
	must(t, s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: []byte("v1")}, admin("backend.add", "crm")))
	_, err := s.RotateCredential(ctx, &store.Credential{Backend: "crm", Sealed: []byte("v2")}, admin("backend.rotate", "crm"))
	must(t, err)
	must(t, s.CreateAgent(ctx, &store.Agent{Name: "bot", IdP: "corp", Subject: "c1"}, admin("agent.add", "bot")))
	must(t, s.PutGrant(ctx, &store.Grant{Agent: "bot", Backend: "crm"}, admin("grant.add", "bot/crm")))
	must(t, s.CreateToken(ctx, &store.Token{ID: "t1", Agent: "bot", Hash: []byte{1, 2, 3}}, admin("token.mint", "t1")))
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
	must(t, s.CreateAgent(ctx, &store.Agent{Name: "late"}, admin("agent.add", "late")))
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

func TestOpenNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	if v, _ := s.RawGet(badgerstore.SchemaKey); string(v) != "1" {
		t.Errorf("schema written as %q, want 1", v)
	}
	must(t, s.RawSet(badgerstore.SchemaKey, []byte("2")))
	must(t, s.Close())
	_, err = badgerstore.Open(dir, badgerstore.Options{})
	if !errors.Is(err, badgerstore.ErrNewerSchema) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("Open = %v, want ErrNewerSchema naming version 2", err)
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
	must(t, s.CreateAgent(t.Context(), a, admin("agent.add", "bot")))
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
			must(t, s.CreateBackend(ctx, &store.Backend{Name: "api", Hosts: []string{"api.example.com"}}, &store.Credential{Sealed: bytes.Clone(tc.sealed)}, admin("backend.add", "api")))
			rotated := append(bytes.Clone(tc.sealed), 'x')
			_, err = s.RotateCredential(ctx, &store.Credential{Backend: "api", Sealed: rotated}, admin("backend.rotate", "api"))
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

// TestDeleteAgentTooBig: a cascade larger than one transaction fails with
// ErrConflict and removes nothing.
func TestDeleteAgentTooBig(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("writes 40k tokens")
	}
	s := openTemp(t)
	ctx := t.Context()
	must(t, s.CreateAgent(ctx, &store.Agent{Name: "bot"}, admin("agent.add", "bot")))
	tokens := make([]store.Token, 40000)
	for i := range tokens {
		tokens[i] = store.Token{ID: fmt.Sprintf("tok%06d", i), Agent: "bot", Hash: []byte("h")}
	}
	must(t, s.BulkTokens(tokens))
	seq, _ := s.LastAuditSeq(ctx)
	err := s.DeleteAgent(ctx, "bot", admin("agent.remove", "bot"))
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("DeleteAgent = %v, want ErrConflict saying nothing was written", err)
	}
	snap, err := s.Load(ctx)
	must(t, err)
	if len(snap.Agents) != 1 || len(snap.Tokens) != len(tokens) {
		t.Errorf("after refused delete: %d agents, %d tokens", len(snap.Agents), len(snap.Tokens))
	}
	if seq2, _ := s.LastAuditSeq(ctx); seq2 != seq {
		t.Errorf("seq moved from %d to %d", seq, seq2)
	}
}
