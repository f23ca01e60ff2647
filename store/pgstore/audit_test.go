package pgstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

func queryAll(t *testing.T, s *Store, q store.AuditQuery) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	must(t, s.QueryAudit(t.Context(), q, func(ev store.AuditEvent) bool { out = append(out, ev); return true }))
	return out
}

func requests(n int, agent string, at time.Time) []store.AuditEvent {
	evs := make([]store.AuditEvent, n)
	for i := range evs {
		evs[i] = store.AuditEvent{Kind: store.KindRequest, Agent: agent, Backend: "crm", Decision: store.Allow, Status: 200, Time: at}
	}
	return evs
}

// checkChains checks evs (every record, in Seq order) number 1..len(evs)
// with no gap and that each replica's records link to each other in order.
func checkChains(t *testing.T, evs []store.AuditEvent) map[string]int {
	t.Helper()
	last := map[string]string{}
	count := map[string]int{}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d: the merged order has a gap", i, ev.Seq)
		}
		if ev.Replica == "" || ev.Hash == "" {
			t.Fatalf("seq %d: replica %q hash %q, want both set", ev.Seq, ev.Replica, ev.Hash)
		}
		if ev.PrevHash != last[ev.Replica] {
			t.Fatalf("seq %d of replica %s links to %q, want its replica's previous record %q", ev.Seq, ev.Replica, ev.PrevHash, last[ev.Replica])
		}
		last[ev.Replica] = ev.Hash
		count[ev.Replica]++
	}
	return count
}

// Two replicas append and mutate at once: Seq is one gapless order across
// them, each replica's records form their own chain, and both verify.
func TestAuditChainPerReplica(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
	const rounds = 8
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			for r := range rounds {
				if err := s.AppendAudit(t.Context(), requests(3, s.Replica(), time.Time{})); err != nil {
					t.Error(err)
				}
				name := fmt.Sprintf("%s-%d", s.Replica(), r)
				if _, err := s.CreateAgent(t.Context(), &store.Agent{Name: name}, adminEvent("agent.add", name)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	evs := queryAll(t, a, store.AuditQuery{})
	const total = 2 * rounds * 4
	if len(evs) != total {
		t.Fatalf("%d records, want %d", len(evs), total)
	}
	count := checkChains(t, evs)
	if count["a"] != total/2 || count["b"] != total/2 {
		t.Errorf("records per replica %v, want %d each", count, total/2)
	}
	for _, s := range []*Store{a, b} {
		n, err := s.VerifyAudit(t.Context())
		if err != nil || n != total {
			t.Errorf("VerifyAudit on %s = %d, %v; want %d, nil", s.Replica(), n, err, total)
		}
		if last, err := s.LastAuditSeq(t.Context()); err != nil || last != total {
			t.Errorf("LastAuditSeq on %s = %d, %v", s.Replica(), last, err)
		}
	}
	// A follower reading after the last Seq it saw gets exactly the rest.
	tail := queryAll(t, b, store.AuditQuery{AfterSeq: total - 5})
	if len(tail) != 5 || tail[0].Seq != total-4 {
		t.Errorf("AfterSeq %d returned %d records from %d", total-5, len(tail), tail[0].Seq)
	}
}

// Each kind of tampering behind the store's back is found, and the error
// names the chain's replica and the first bad record.
func TestVerifyAuditNamesTamperedReplica(t *testing.T) {
	cases := []struct {
		name string
		// sql tampers with the record at $1 (b's third record).
		sql   string
		words []string
		// at says which seq the error names: 0 the tampered one, 1 the next of b's.
		at int
	}{
		{"status column edited", `UPDATE audit SET status = 201 WHERE seq = $1`, []string{"columns"}, 0},
		{"record edited", `UPDATE audit SET record = replace(record, '"status":200', '"status":500'), status = 500 WHERE seq = $1`, []string{"hash mismatch"}, 0},
		{"record removed", `DELETE FROM audit WHERE seq = $1`, []string{"link broken"}, 1},
		// Moved past its successor: the successor is the first bad record.
		{"record moved to another seq", `UPDATE audit SET seq = seq + 1000 WHERE seq = $1`, []string{"link broken"}, 1},
		// Moved into a's chain: a's chain, verified first, names it.
		{"record moved to another chain", `UPDATE audit SET replica = 'a' WHERE seq = $1`, []string{`replica "a"`, `claims replica "b"`}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabase(t)
			a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
			for range 3 {
				must(t, a.AppendAudit(t.Context(), requests(2, "x", time.Time{})))
				must(t, b.AppendAudit(t.Context(), requests(2, "y", time.Time{})))
			}
			if _, err := a.VerifyAudit(t.Context()); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			var bs []uint64
			for _, ev := range queryAll(t, a, store.AuditQuery{Agent: "y"}) {
				bs = append(bs, ev.Seq)
			}
			victim := bs[2]
			if _, err := rawConn(t, dbURL).Exec(t.Context(), tc.sql, victim); err != nil {
				t.Fatal(err)
			}
			_, err := a.VerifyAudit(t.Context())
			if !errors.Is(err, store.ErrAuditTampered) {
				t.Fatalf("VerifyAudit after tampering = %v, want ErrAuditTampered", err)
			}
			named := victim
			if tc.at == 1 {
				named = bs[3]
			}
			for _, w := range append(tc.words, `replica "b"`, fmt.Sprintf("seq %d", named)) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("newest record removed", func(t *testing.T) {
		t.Parallel()
		dbURL := newDatabase(t)
		a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
		must(t, b.AppendAudit(t.Context(), requests(3, "y", time.Time{})))
		must(t, a.AppendAudit(t.Context(), requests(1, "x", time.Time{})))
		if _, err := rawConn(t, dbURL).Exec(t.Context(), `DELETE FROM audit WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		_, err := a.VerifyAudit(t.Context())
		if !errors.Is(err, store.ErrAuditTampered) || !strings.Contains(err.Error(), `replica "b", seq 3`) || !strings.Contains(err.Error(), "missing from the end") {
			t.Fatalf("VerifyAudit = %v, want replica b's seq 3 missing from the end", err)
		}
	})
}

// Prune removes each chain's due prefix, leaves chains that verify from the
// oldest kept record, and appends go on from the heads.
func TestPruneAuditKeepsChainsVerifiable(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
	ctx := t.Context()
	old, cut := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, a.AppendAudit(ctx, requests(4, "x", old)))
	must(t, b.AppendAudit(ctx, requests(5, "y", old)))
	must(t, a.AppendAudit(ctx, requests(2, "x", time.Time{})))
	// A late record: due, but after one that is not, so it stays.
	must(t, a.AppendAudit(ctx, requests(1, "late", old)))
	must(t, b.AppendAudit(ctx, requests(2, "y", time.Time{})))

	n, err := a.PruneAudit(ctx, cut)
	must(t, err)
	if n != 9 {
		t.Fatalf("pruned %d, want 9", n)
	}
	kept := queryAll(t, a, store.AuditQuery{})
	if len(kept) != 5 || kept[0].Seq != 10 {
		t.Fatalf("kept %d records from seq %d, want 5 from 10", len(kept), kept[0].Seq)
	}
	if checked, err := b.VerifyAudit(ctx); err != nil || checked != 5 {
		t.Fatalf("VerifyAudit after prune = %d, %v", checked, err)
	}
	must(t, a.AppendAudit(ctx, requests(1, "x", time.Time{})))
	must(t, b.AppendAudit(ctx, requests(1, "y", time.Time{})))
	if checked, err := a.VerifyAudit(ctx); err != nil || checked != 7 {
		t.Fatalf("VerifyAudit after more appends = %d, %v", checked, err)
	}
	// Everything due: the chains are empty and still continue.
	n, err = b.PruneAudit(ctx, time.Now().Add(time.Hour))
	must(t, err)
	if n != 7 {
		t.Fatalf("second prune removed %d, want 7", n)
	}
	must(t, a.AppendAudit(ctx, requests(1, "x", time.Time{})))
	if checked, err := a.VerifyAudit(ctx); err != nil || checked != 1 {
		t.Fatalf("VerifyAudit after pruning everything = %d, %v", checked, err)
	}
	// Removing the oldest kept record now breaks its link to the anchor.
	if _, err := rawConn(t, dbURL).Exec(ctx, `DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyAudit(ctx); !errors.Is(err, store.ErrAuditTampered) {
		t.Fatalf("VerifyAudit with the only record gone = %v, want ErrAuditTampered", err)
	}
}

// While one replica holds the prune lease another prunes nothing and says
// no error; once it is free, pruning proceeds.
func TestPruneAuditLease(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
	ctx := t.Context()
	must(t, a.AppendAudit(ctx, requests(3, "x", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))))
	holder := rawConn(t, dbURL)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockPruneAudit); err != nil {
		t.Fatal(err)
	}
	n, err := b.PruneAudit(ctx, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("PruneAudit while the lease is held = %d, %v; want 0, nil", n, err)
	}
	if got := len(queryAll(t, a, store.AuditQuery{})); got != 3 {
		t.Fatalf("%d records after a refused prune, want 3", got)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockPruneAudit); err != nil {
		t.Fatal(err)
	}
	// Two replicas at once: the due records go once in total.
	var wg sync.WaitGroup
	got := make([]int, 2)
	for i, s := range []*Store{a, b} {
		wg.Go(func() {
			n, err := s.PruneAudit(ctx, time.Now())
			if err != nil {
				t.Error(err)
			}
			got[i] = n
		})
	}
	wg.Wait()
	if got[0]+got[1] != 3 {
		t.Fatalf("replicas pruned %v, want 3 in total", got)
	}
	if _, err := a.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}

// A follower that keeps asking for the records after the last Seq it saw,
// while two replicas append at once, sees every record exactly once: no
// record commits with a Seq below one already visible.
func TestFollowAcrossReplicasMissesNothing(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
	const batches, size = 40, 5
	writing := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			for range batches {
				if err := s.AppendAudit(t.Context(), requests(size, s.Replica(), time.Time{})); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(writing) }()
	var seen []uint64
	follow := func() {
		q := store.AuditQuery{}
		if len(seen) > 0 {
			q.AfterSeq = seen[len(seen)-1]
		}
		for _, ev := range queryAll(t, b, q) {
			seen = append(seen, ev.Seq)
		}
	}
	for done := false; !done; {
		select {
		case <-writing:
			done = true
		default:
		}
		follow()
	}
	follow()
	if len(seen) != 2*batches*size {
		t.Fatalf("follower saw %d records, want %d", len(seen), 2*batches*size)
	}
	for i, seq := range seen {
		if seq != uint64(i+1) {
			t.Fatalf("follower's record %d has seq %d: one was skipped or seen twice", i, seq)
		}
	}
}
