package badgerstore_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// withEvents opens a store holding n request events, one a minute from base.
func withEvents(t *testing.T, n int) *badgerstore.Store {
	t.Helper()
	s := openTemp(t)
	evs := make([]store.AuditEvent, n)
	for i := range evs {
		agent := []string{"a1", "a2"}[i%2]
		evs[i] = store.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Kind: store.KindRequest, Agent: agent, Backend: "b1", Status: 200}
	}
	must(t, s.AppendAudit(t.Context(), evs))
	return s
}

func TestVerifyAudit(t *testing.T) {
	t.Parallel()
	raw := func(t *testing.T, s *badgerstore.Store, seq uint64) []byte {
		v, err := s.RawGet(badgerstore.AuditKey(seq))
		must(t, err)
		return v
	}
	js := func(t *testing.T, s *badgerstore.Store, seq uint64) []byte {
		v, err := s.AuditJSON(seq)
		must(t, err)
		return v
	}
	cases := []struct {
		name    string
		tamper  func(t *testing.T, s *badgerstore.Store)
		wantSeq string // "" means the chain verifies
	}{
		{"intact", func(*testing.T, *badgerstore.Store) {}, ""},
		{"edited record", func(t *testing.T, s *badgerstore.Store) {
			v := bytes.Replace(js(t, s, 5), []byte(`"status":200`), []byte(`"status":500`), 1)
			must(t, s.SetAuditJSON(5, v, false))
		}, "audit seq 5: hash mismatch"},
		{"edited record stored uncompressed", func(t *testing.T, s *badgerstore.Store) {
			v := bytes.Replace(js(t, s, 5), []byte(`"status":200`), []byte(`"status":500`), 1)
			must(t, s.SetAuditJSON(5, v, true))
		}, "audit seq 5: hash mismatch"},
		{"damaged compressed record", func(t *testing.T, s *badgerstore.Store) {
			v := raw(t, s, 5)
			must(t, s.RawSet(badgerstore.AuditKey(5), v[:len(v)-10]))
		}, "audit seq 5: record unreadable"},
		{"edited record with recomputed hash", func(t *testing.T, s *badgerstore.Store) {
			// A forger who rewrites one record consistently still breaks the next link.
			v := bytes.Replace(js(t, s, 5), []byte(`"agent":"a1"`), []byte(`"agent":"a9"`), 1)
			must(t, s.SetAuditJSON(5, rehash(t, v), false))
		}, "audit seq 6: previous-hash link broken"},
		{"deleted record", func(t *testing.T, s *badgerstore.Store) {
			must(t, s.RawDelete(badgerstore.AuditKey(5)))
		}, "audit seq 5: record missing"},
		{"deleted first record", func(t *testing.T, s *badgerstore.Store) {
			must(t, s.RawDelete(badgerstore.AuditKey(1)))
		}, "audit seq 1: record missing"},
		{"deleted newest record", func(t *testing.T, s *badgerstore.Store) {
			must(t, s.RawDelete(badgerstore.AuditKey(10)))
		}, "audit seq 10: records 10 to 10 missing"},
		{"reordered records", func(t *testing.T, s *badgerstore.Store) {
			four, five := raw(t, s, 4), raw(t, s, 5)
			must(t, s.RawSet(badgerstore.AuditKey(4), five))
			must(t, s.RawSet(badgerstore.AuditKey(5), four))
		}, "audit seq 4: record claims seq 5"},
		{"forged anchor", func(t *testing.T, s *badgerstore.Store) {
			must(t, s.RawSet(badgerstore.AuditAnchorKey, []byte(`{"seq":0,"hash":"00"}`)))
		}, "audit seq 1: previous-hash link broken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := withEvents(t, 10)
			tc.tamper(t, s)
			n, err := s.VerifyAudit(t.Context())
			if tc.wantSeq == "" {
				if err != nil || n != 10 {
					t.Fatalf("VerifyAudit = %d, %v; want 10, nil", n, err)
				}
				return
			}
			if !errors.Is(err, store.ErrAuditTampered) || !strings.Contains(err.Error(), tc.wantSeq) {
				t.Fatalf("VerifyAudit = %v, want ErrAuditTampered with %q", err, tc.wantSeq)
			}
		})
	}
}

func TestPruneAudit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	const total = 5000 // more than one prune batch
	evs := make([]store.AuditEvent, total)
	for i := range evs {
		evs[i] = store.AuditEvent{Time: base.Add(time.Duration(i) * time.Second), Kind: store.KindRequest, Agent: []string{"a1", "a2"}[i%2], Backend: "b1"}
	}
	must(t, s.AppendAudit(ctx, evs))

	removed, err := s.PruneAudit(ctx, base.Add(3000*time.Second))
	must(t, err)
	if removed != 3000 {
		t.Fatalf("removed %d, want 3000", removed)
	}
	n, err := s.VerifyAudit(ctx)
	if err != nil || n != total-3000 {
		t.Fatalf("VerifyAudit after prune = %d, %v; want %d, nil", n, err, total-3000)
	}
	if got, _ := s.CountPrefix("e/"); got != 2000 {
		t.Errorf("%d records left, want 2000", got)
	}
	// The index groups straddling the bound are cut, not left pointing at
	// pruned records.
	for prefix, want := range map[string]int{"ea/a1/": 1000, "ea/a2/": 1000, "eb/b1/": 2000} {
		seqs, err := s.IndexSeqs(prefix)
		must(t, err)
		if len(seqs) != want || len(seqs) > 0 && seqs[0] <= 3000 {
			t.Errorf("%s lists %d records starting at %v, want %d after seq 3000 (index entries of pruned records must go too)", prefix, len(seqs), seqs[:min(1, len(seqs))], want)
		}
	}
	var first uint64
	must(t, s.QueryAudit(ctx, store.AuditQuery{Agent: "a1"}, func(ev store.AuditEvent) bool { first = ev.Seq; return false }))
	if first != 3001 {
		t.Errorf("oldest a1 event after prune = %d, want 3001", first)
	}
	// Pruning again with the same bound is a no-op; tampering with the oldest
	// kept record is still caught against the anchor.
	if removed, _ := s.PruneAudit(ctx, base.Add(3000*time.Second)); removed != 0 {
		t.Errorf("second prune removed %d", removed)
	}

	// Prune everything: the head survives a reopen through the anchor.
	removed, err = s.PruneAudit(ctx, base.Add(time.Hour*24))
	must(t, err)
	if removed != 2000 {
		t.Errorf("removed %d, want 2000", removed)
	}
	for _, prefix := range []string{"et/", "ea/", "eb/"} {
		if n, _ := s.CountPrefix(prefix); n != 0 {
			t.Errorf("%d %s index keys left after pruning everything", n, prefix)
		}
	}
	must(t, s.Close())
	s = openDir(t, dir, badgerstore.Options{})
	if seq, _ := s.LastAuditSeq(ctx); seq != total {
		t.Errorf("LastAuditSeq after pruning all and reopening = %d, want %d", seq, total)
	}
	must(t, s.AppendAudit(ctx, []store.AuditEvent{{Kind: store.KindRequest}}))
	if n, err := s.VerifyAudit(ctx); err != nil || n != 1 {
		t.Errorf("VerifyAudit = %d, %v; want 1, nil", n, err)
	}
}

func TestPruneThenTamper(t *testing.T) {
	t.Parallel()
	s := withEvents(t, 10)
	_, err := s.PruneAudit(t.Context(), base.Add(4*time.Minute))
	must(t, err)
	v, err := s.AuditJSON(5)
	must(t, err)
	v = bytes.Replace(v, []byte(`"prev_hash":"`), []byte(`"prev_hash":"0`), 1)
	must(t, s.SetAuditJSON(5, v, false))
	if _, err := s.VerifyAudit(t.Context()); !errors.Is(err, store.ErrAuditTampered) || !strings.Contains(err.Error(), "audit seq 5") {
		t.Errorf("VerifyAudit = %v, want tampering at seq 5", err)
	}
}

// TestUncompressedRecords: records stored as plain JSON, as stores wrote
// them before compression, read, verify, anchor a reopen and prune
// alongside compressed ones.
func TestUncompressedRecords(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	const total = 10
	evs := make([]store.AuditEvent, total)
	for i := range evs {
		evs[i] = store.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Kind: store.KindRequest, Agent: []string{"a1", "a2"}[i%2], Backend: "b1", Status: 200}
	}
	must(t, s.AppendAudit(ctx, evs))
	// The odd records and the newest go back to plain JSON.
	for seq := uint64(1); seq <= total; seq++ {
		if seq%2 == 0 && seq != total {
			continue
		}
		js, err := s.AuditJSON(seq)
		must(t, err)
		must(t, s.SetAuditJSON(seq, js, true))
		if v, _ := s.RawGet(badgerstore.AuditKey(seq)); len(v) == 0 || v[0] != '{' {
			t.Fatalf("seq %d not stored as plain JSON: %q", seq, v)
		}
	}
	must(t, s.Close())

	s = openDir(t, dir, badgerstore.Options{})
	if seq, err := s.LastAuditSeq(ctx); err != nil || seq != total {
		t.Fatalf("LastAuditSeq = %d, %v; want %d (head read from a plain JSON record)", seq, err, total)
	}
	must(t, s.AppendAudit(ctx, []store.AuditEvent{{Time: base.Add(total * time.Minute), Kind: store.KindRequest, Agent: "a1", Backend: "b1"}}))
	if n, err := s.VerifyAudit(ctx); err != nil || n != total+1 {
		t.Fatalf("VerifyAudit = %d, %v; want %d, nil", n, err, total+1)
	}
	queries := []struct {
		name string
		q    store.AuditQuery
		want []uint64
	}{
		{"all", store.AuditQuery{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"agent index", store.AuditQuery{Agent: "a1"}, []uint64{1, 3, 5, 7, 9, 11}},
		{"last", store.AuditQuery{Last: 3}, []uint64{9, 10, 11}},
		{"after seq", store.AuditQuery{AfterSeq: 8}, []uint64{9, 10, 11}},
	}
	for _, qc := range queries {
		var got []uint64
		must(t, s.QueryAudit(ctx, qc.q, func(ev store.AuditEvent) bool {
			if ev.Hash == "" || ev.Agent == "" {
				t.Errorf("%s: seq %d decoded incompletely: %+v", qc.name, ev.Seq, ev)
			}
			got = append(got, ev.Seq)
			return true
		}))
		if !slices.Equal(got, qc.want) {
			t.Errorf("%s: seqs %v, want %v", qc.name, got, qc.want)
		}
	}
	removed, err := s.PruneAudit(ctx, base.Add(5*time.Minute))
	if err != nil || removed != 5 {
		t.Fatalf("PruneAudit = %d, %v; want 5, nil", removed, err)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != total+1-5 {
		t.Errorf("VerifyAudit after prune = %d, %v; want %d, nil", n, err, total+1-5)
	}
}
