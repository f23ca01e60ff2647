package badgerstore_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// vlogBytes is the size of dir's value log files.
func vlogBytes(t *testing.T, dir string) (n int64) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	must(t, err)
	for _, f := range files {
		fi, err := os.Stat(f)
		must(t, err)
		n += fi.Size()
	}
	return n
}

// appendAt appends n request events stamped from t on, a millisecond apart.
func appendAt(t *testing.T, s *badgerstore.Store, from int, n int, at time.Time) {
	t.Helper()
	evs := make([]store.AuditEvent, 0, 500)
	for i := from; i < from+n; i++ {
		ev := requestEvent(i)
		ev.Time = at.Add(time.Duration(i-from) * time.Millisecond)
		evs = append(evs, ev)
		if len(evs) == cap(evs) || i == from+n-1 {
			must(t, s.AppendAudit(t.Context(), evs))
			evs = evs[:0]
		}
	}
}

// TestPruneReclaimsValueLog: audit records live in the value log, so a prune
// gives their space back only through the collector.
func TestPruneReclaimsValueLog(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("writes 20k audit records and collects the value log")
	}
	ctx := t.Context()
	dir := t.TempDir()
	opts := badgerstore.WithSmallValueLog(badgerstore.Options{})
	s, err := badgerstore.Open(dir, opts)
	must(t, err)
	now := time.Now().UTC()
	const old, fresh = 20_000, 10
	appendAt(t, s, 0, old, now.Add(-2*time.Hour))
	appendAt(t, s, old, fresh, now)
	must(t, s.Close())
	before := vlogBytes(t, dir)

	s = openDir(t, dir, opts)
	removed, err := s.PruneAudit(ctx, now.Add(-time.Hour))
	must(t, err)
	if removed != old {
		t.Fatalf("pruned %d records, want %d", removed, old)
	}
	// Closing flushes the deletes out of the memtable, compacting brings
	// them together with the records they delete.
	must(t, s.Close())
	s = openDir(t, dir, opts)
	must(t, s.Compact())
	if n := s.CollectValueLog(); n == 0 {
		t.Fatal("the collector rewrote no value log file after a prune")
	}
	after := vlogBytes(t, dir)
	t.Logf("value log: %d bytes before the prune, %d after collection", before, after)
	if after > before/2 {
		t.Errorf("value log holds %d bytes after pruning all but %d of %d records, had %d", after, fresh, old+fresh, before)
	}

	checked, err := s.VerifyAudit(ctx)
	must(t, err)
	if checked != fresh {
		t.Errorf("verified %d records, want %d", checked, fresh)
	}
	var got []uint64
	must(t, s.QueryAudit(ctx, store.AuditQuery{Agent: requestEvent(old).Agent}, func(ev store.AuditEvent) bool {
		got = append(got, ev.Seq)
		return true
	}))
	if len(got) != 1 || got[0] != old+1 {
		t.Errorf("agent query after collection: seqs %v, want [%d]", got, old+1)
	}
}

// TestOpenInlineStore: a directory written when every value stayed in the
// LSM tree reads, verifies, grows and prunes the same under the value log.
func TestOpenInlineStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	now := time.Now().UTC()
	s, err := badgerstore.Open(dir, badgerstore.WithInlineValues(badgerstore.Options{}))
	must(t, err)
	appendAt(t, s, 0, 2000, now.Add(-2*time.Hour))
	populate(t, s)
	snap, err := s.Load(ctx)
	must(t, err)
	seq, err := s.LastAuditSeq(ctx)
	must(t, err)
	must(t, s.Close())
	if n := vlogBytes(t, dir); n > 4096 {
		t.Fatalf("the inline store wrote %d bytes of value log; the test needs values in the LSM tree", n)
	}

	s = openDir(t, dir, badgerstore.WithSmallValueLog(badgerstore.Options{}))
	snap2, err := s.Load(ctx)
	must(t, err)
	if !reflect.DeepEqual(snap, snap2) {
		t.Errorf("snapshot after reopen differs:\nbefore %+v\nafter  %+v", snap, snap2)
	}
	appendAt(t, s, 2000, 2000, now)
	if n := vlogBytes(t, dir); n < 2000*256 {
		t.Errorf("value log holds %d bytes after 2000 appends; the records stayed inline", n)
	}
	countAgent := func() (n int) {
		t.Helper()
		must(t, s.QueryAudit(ctx, store.AuditQuery{Agent: requestEvent(0).Agent}, func(store.AuditEvent) bool { n++; return true }))
		return n
	}
	if n := countAgent(); n != 40 {
		t.Errorf("agent query over inline and value log records: %d events, want 40", n)
	}
	checked, err := s.VerifyAudit(ctx)
	must(t, err)
	if uint64(checked) != seq+2000 {
		t.Errorf("verified %d records, want %d", checked, seq+2000)
	}

	// Prune the old inline records and collect: the rest stays whole.
	removed, err := s.PruneAudit(ctx, now.Add(-time.Hour))
	must(t, err)
	if removed != 2000 {
		t.Errorf("pruned %d records, want 2000", removed)
	}
	must(t, s.Compact())
	s.CollectValueLog()
	checked, err = s.VerifyAudit(ctx)
	must(t, err)
	if uint64(checked) != seq {
		t.Errorf("verified %d records after the prune, want %d", checked, seq)
	}
	if n := countAgent(); n != 20 {
		t.Errorf("agent query after the prune: %d events, want 20", n)
	}
}
