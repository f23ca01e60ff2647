package badgerstore_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// TestIndexedQueriesMatchScan: a query by agent or backend, which walks the
// grouped index, returns exactly what filtering every record returns, for
// every kind of bound: ranges starting, ending and cut inside a group,
// groups of one (schema 3's layout), full groups, and after a prune that
// cut a group in two.
func TestIndexedQueriesMatchScan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	r := rand.New(rand.NewPCG(3, 4))
	var total uint64
	// Batch sizes around a full group, and ones; agents skewed so one name
	// fills groups while others are sparse within a batch.
	for _, size := range []int{1, 1, 2, 50, 127, 128, 129, 1, 300, 700, 3, 256, 1} {
		evs := make([]store.AuditEvent, size)
		for i := range evs {
			agent := "a1"
			switch x := r.IntN(10); {
			case x == 9:
				agent = "bad/name" // not indexable: never in an index
			case x >= 7:
				agent = fmt.Sprintf("a%d", 2+r.IntN(2))
			}
			evs[i] = store.AuditEvent{Time: base.Add(time.Duration(total+uint64(i)) * time.Second), Kind: store.KindRequest,
				Agent: agent, Backend: []string{"b1", "b2"}[r.IntN(2)], Status: 200}
		}
		must(t, s.AppendAudit(ctx, evs))
		total += uint64(size)
	}

	check := func(t *testing.T, queries int) {
		var all []store.AuditEvent
		must(t, s.QueryAudit(ctx, store.AuditQuery{}, func(ev store.AuditEvent) bool { all = append(all, ev); return true }))
		for range queries {
			q := store.AuditQuery{}
			if r.IntN(2) == 0 {
				q.Agent = []string{"a1", "a2", "a3", "a9"}[r.IntN(4)]
			} else {
				q.Backend = []string{"b1", "b2"}[r.IntN(2)]
			}
			if r.IntN(3) > 0 {
				q.AfterSeq = uint64(r.IntN(int(total) + 2))
			}
			if r.IntN(3) > 0 {
				q.BeforeSeq = 1 + uint64(r.IntN(int(total)+2))
			}
			switch r.IntN(3) {
			case 0:
				q.Last = 1 + r.IntN(400)
			case 1:
				q.Limit = 1 + r.IntN(400)
			}
			var want []uint64
			for _, ev := range all {
				if q.Match(&ev) {
					want = append(want, ev.Seq)
				}
			}
			if q.Last > 0 && len(want) > q.Last {
				want = want[len(want)-q.Last:]
			}
			if q.Limit > 0 && len(want) > q.Limit {
				want = want[:q.Limit]
			}
			var got []uint64
			must(t, s.QueryAudit(ctx, q, func(ev store.AuditEvent) bool { got = append(got, ev.Seq); return true }))
			if !slices.Equal(got, want) {
				t.Fatalf("query %+v:\n got  %d events %v\n want %d events %v", q, len(got), head(got), len(want), head(want))
			}
		}
	}
	queries := 600
	if testing.Short() {
		queries = 60 // the full run tries ten times as many
	}
	check(t, queries)

	// Several records per index key, not one: the point of the groups.
	keys, err := s.CountPrefix("ea/a1/")
	must(t, err)
	seqs, err := s.IndexSeqs("ea/a1/")
	must(t, err)
	if len(seqs) < 4*keys {
		t.Errorf("ea/a1/ holds %d records in %d keys; want groups of several", len(seqs), keys)
	}

	// Prune to a bound inside the 700-event batch, so groups are cut.
	removed, err := s.PruneAudit(ctx, base.Add(1000*time.Second))
	must(t, err)
	if removed != 1000 {
		t.Fatalf("pruned %d, want 1000", removed)
	}
	for _, prefix := range []string{"ea/a1/", "ea/a2/", "ea/a3/", "eb/b1/", "eb/b2/"} {
		seqs, err := s.IndexSeqs(prefix)
		must(t, err)
		if len(seqs) > 0 && seqs[0] <= 1000 {
			t.Errorf("%s still lists pruned seq %d", prefix, seqs[0])
		}
	}
	check(t, queries/2)
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit after the prune: %v", err)
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 12)] }

// TestIndexReadsSchema3Layout: index entries of one record each, as schema
// 3 and earlier wrote them, answer queries beside grouped ones.
func TestIndexReadsSchema3Layout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	evs := make([]store.AuditEvent, 10)
	for i := range evs {
		evs[i] = store.AuditEvent{Kind: store.KindRequest, Agent: "bot", Backend: "crm"}
	}
	must(t, s.AppendAudit(ctx, evs))
	// Rewrite bot's index as schema 3 had it: a key per record, no value.
	seqs, err := s.IndexSeqs("ea/bot/")
	must(t, err)
	keys, err := s.IndexKeys("ea/bot/")
	must(t, err)
	for _, k := range keys {
		must(t, s.RawDelete(k))
	}
	for _, seq := range seqs {
		must(t, s.RawSet(badgerstore.SeqKey("ea/bot/", seq), nil))
	}
	must(t, s.RawSet(badgerstore.SchemaKey, []byte("3")))
	must(t, s.Close())

	s = openDir(t, dir, badgerstore.Options{})
	if v, _ := s.RawGet(badgerstore.SchemaKey); string(v) != "4" {
		t.Errorf("schema after opening a version 3 store = %q, want 4", v)
	}
	more := make([]store.AuditEvent, 5)
	for i := range more {
		more[i] = store.AuditEvent{Kind: store.KindRequest, Agent: "bot", Backend: "crm"}
	}
	must(t, s.AppendAudit(ctx, more))
	var got []uint64
	must(t, s.QueryAudit(ctx, store.AuditQuery{Agent: "bot", AfterSeq: 8}, func(ev store.AuditEvent) bool { got = append(got, ev.Seq); return true }))
	if want := []uint64{9, 10, 11, 12, 13, 14, 15}; !slices.Equal(got, want) {
		t.Errorf("bot's events after 8 = %v, want %v", got, want)
	}
	var last []uint64
	must(t, s.QueryAudit(ctx, store.AuditQuery{Agent: "bot", Last: 7}, func(ev store.AuditEvent) bool { last = append(last, ev.Seq); return true }))
	if want := []uint64{9, 10, 11, 12, 13, 14, 15}; !slices.Equal(last, want) {
		t.Errorf("bot's last 7 = %v, want %v", last, want)
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit with both layouts: %v", err)
	}
}

// TestVerifyAuditIndex: verify fails, naming the index, when an agent's or
// backend's index no longer lists exactly the records that name it, since
// queries filtered by that name would then miss or invent records.
func TestVerifyAuditIndex(t *testing.T) {
	t.Parallel()
	// a1 holds seqs 1,3,5,...; a2 holds 2,4,6,...; all are b1's.
	open := func(t *testing.T) *badgerstore.Store {
		s := openTemp(t)
		for range 3 {
			evs := make([]store.AuditEvent, 40)
			for i := range evs {
				evs[i] = store.AuditEvent{Kind: store.KindRequest, Agent: []string{"a1", "a2"}[i%2], Backend: "b1"}
			}
			must(t, s.AppendAudit(t.Context(), evs))
		}
		if n, err := s.VerifyAudit(t.Context()); err != nil || n != 120 {
			t.Fatalf("VerifyAudit before tampering = %d, %v", n, err)
		}
		return s
	}
	// firstGroup returns the key of an index's first entry and its seqs.
	firstGroup := func(t *testing.T, s *badgerstore.Store, prefix string) ([]byte, []uint64) {
		keys, err := s.IndexKeys(prefix)
		must(t, err)
		if len(keys) == 0 {
			t.Fatalf("no %s entries", prefix)
		}
		all, err := s.IndexSeqs(prefix)
		must(t, err)
		last := binary.BigEndian.Uint64(keys[0][len(keys[0])-8:])
		i := slices.Index(all, last)
		return keys[0], all[:i+1]
	}
	for _, tt := range []struct {
		name   string
		tamper func(t *testing.T, s *badgerstore.Store)
		want   string
	}{
		{"group deleted", func(t *testing.T, s *badgerstore.Store) {
			k, _ := firstGroup(t, s, "ea/a1/")
			must(t, s.RawDelete(k))
		}, `audit index of agent "a1" does not match the records (it lists 40 records where the trail holds 60)`},
		{"record dropped from a group", func(t *testing.T, s *badgerstore.Store) {
			k, seqs := firstGroup(t, s, "eb/b1/")
			must(t, s.RawSet(k, badgerstore.IndexValue(seqs[1:])))
		}, `audit index of backend "b1" does not match the records (it lists 119 records where the trail holds 120)`},
		{"record swapped for another agent's", func(t *testing.T, s *badgerstore.Store) {
			k, seqs := firstGroup(t, s, "ea/a1/")
			seqs[0]++ // 1 is a1's, 2 is a2's
			must(t, s.RawSet(k, badgerstore.IndexValue(seqs)))
		}, `audit index of agent "a1" does not match the records (it lists 60 records, as many as the trail holds, but not the same ones)`},
		{"index for an agent with no records", func(t *testing.T, s *badgerstore.Store) {
			must(t, s.RawSet(badgerstore.SeqKey("ea/ghost/", 7), nil))
		}, `audit index of agent "ghost" does not match the records (it lists 1 record where the trail holds 0)`},
		{"record listed twice", func(t *testing.T, s *badgerstore.Store) {
			_, seqs := firstGroup(t, s, "ea/a2/")
			must(t, s.RawSet(badgerstore.SeqKey("ea/a2/", seqs[len(seqs)-1]+2), badgerstore.IndexValue([]uint64{seqs[0], seqs[len(seqs)-1] + 2})))
		}, `audit index of agent "a2" lists seq 2 twice or out of order`},
		{"damaged group", func(t *testing.T, s *badgerstore.Store) {
			k, _ := firstGroup(t, s, "ea/a2/")
			must(t, s.RawSet(k, []byte{0}))
		}, "is damaged"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			tt.tamper(t, s)
			_, err := s.VerifyAudit(t.Context())
			if !errors.Is(err, store.ErrAuditTampered) || !strings.Contains(fmt.Sprint(err), tt.want) {
				t.Fatalf("VerifyAudit = %v\nwant ErrAuditTampered saying %q", err, tt.want)
			}
		})
	}
}
