package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// queryAll returns every event q selects.
func queryAll(t *testing.T, s store.Store, q store.AuditQuery) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	must(t, s.QueryAudit(t.Context(), q, func(ev store.AuditEvent) bool {
		out = append(out, ev)
		return true
	}))
	return out
}

func seqs(evs []store.AuditEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// checkChain checks evs are consecutive from their first Seq and linked.
func checkChain(t *testing.T, evs []store.AuditEvent) {
	t.Helper()
	for i, ev := range evs {
		if ev.Hash == "" || ev.Time.IsZero() {
			t.Errorf("seq %d: hash %q time %v, want both set", ev.Seq, ev.Hash, ev.Time)
		}
		if i == 0 {
			continue
		}
		if ev.Seq != evs[i-1].Seq+1 {
			t.Errorf("seq %d follows %d", ev.Seq, evs[i-1].Seq)
		}
		if ev.PrevHash != evs[i-1].Hash {
			t.Errorf("seq %d: prev_hash %q, want %q", ev.Seq, ev.PrevHash, evs[i-1].Hash)
		}
	}
}

func testAudit(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	t.Run("mutations write admin events", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		_, err := dropRev(s.RevokeToken(ctx, tokenBot, time.Now(), ev("token.revoke", tokenBot)))
		must(t, err)
		must(t, noRev(s.DeleteAgent(ctx, agentBot, ev("agent.remove", agentBot))))
		evs := queryAll(t, s, store.AuditQuery{})
		type at struct{ Action, Target string }
		var got []at
		for _, e := range evs {
			if e.Kind != store.KindAdmin || e.PeerUID != 1000 || e.PeerPID != 42 {
				t.Errorf("event %d = %+v, want admin with peer 1000/42", e.Seq, e)
			}
			got = append(got, at{e.Action, e.Target})
		}
		want := []at{
			{"idp.add", "corp"}, {"backend.add", "crm"}, {"backend.add", "hr"}, {"agent.add", "bot"}, {"agent.add", "sso"},
			{"grant.add", "bot/crm"}, {"grant.add", "sso/hr"}, {"token.mint", "tok-bot"}, {"token.mint", "tok-sso"},
			{"token.revoke", "tok-bot"}, {"agent.remove", "bot"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("admin events\n got %v\nwant %v", got, want)
		}
		if !slices.Equal(seqs(evs), []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
			t.Errorf("seqs = %v", seqs(evs))
		}
		checkChain(t, evs)
	})

	t.Run("append assigns seq and chains", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := seed(t, s)
		when := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		batch := []store.AuditEvent{
			{Kind: store.KindRequest, Agent: agentBot, Time: when, Status: 200},
			{Kind: store.KindRequest, Agent: agentBot, Status: 403},
		}
		must(t, s.AppendAudit(ctx, batch))
		if batch[0].Seq != seedEvents+1 || batch[1].Seq != seedEvents+2 || batch[1].PrevHash != batch[0].Hash {
			t.Errorf("batch written back as %+v", batch)
		}
		must(t, noRev(s.CreateAgent(ctx, &store.Agent{Name: "late"}, ev("agent.add", "late"))))
		must(t, s.AppendAudit(ctx, []store.AuditEvent{{Kind: store.KindTLS, Reason: "unknown sni"}}))
		must(t, s.AppendAudit(ctx, nil))
		evs := queryAll(t, s, store.AuditQuery{})
		if len(evs) != seedEvents+4 {
			t.Fatalf("%d events, want %d", len(evs), seedEvents+4)
		}
		checkChain(t, evs)
		if !evs[seedEvents].Time.Equal(when) {
			t.Errorf("given time not kept: %v", evs[seedEvents].Time)
		}
		if evs[seedEvents+1].Time.IsZero() {
			t.Error("zero time not filled")
		}
		if evs[seedEvents+2].Action != "agent.add" || evs[seedEvents+3].Kind != store.KindTLS {
			t.Errorf("interleaving lost: %+v", evs[seedEvents+2:])
		}
		if last, _ := s.LastAuditSeq(ctx); last != seedEvents+4 {
			t.Errorf("LastAuditSeq = %d", last)
		}
	})

	t.Run("query filters", func(t *testing.T) { testQueryFilters(t, open) })

	t.Run("query stops when fn returns false", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		seed(t, s)
		n := 0
		must(t, s.QueryAudit(t.Context(), store.AuditQuery{}, func(store.AuditEvent) bool { n++; return n < 2 }))
		if n != 2 {
			t.Errorf("fn called %d times, want 2", n)
		}
	})

	t.Run("concurrent writers share one order", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		const writers, rounds = 4, 10
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for r := range rounds {
					if err := s.AppendAudit(ctx, []store.AuditEvent{{Kind: store.KindRequest}, {Kind: store.KindRequest}}); err != nil {
						t.Error(err)
					}
					name := fmt.Sprintf("w%d-%d", w, r)
					if err := noRev(s.CreateAgent(ctx, &store.Agent{Name: name}, ev("agent.add", name))); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		evs := queryAll(t, s, store.AuditQuery{})
		if len(evs) != writers*rounds*3 || evs[0].Seq != 1 {
			t.Fatalf("%d events from seq %d, want %d from 1", len(evs), evs[0].Seq, writers*rounds*3)
		}
		checkChain(t, evs)
	})
}

// testQueryFilters compares QueryAudit with a brute-force filter over every
// event, for each kind of query.
func testQueryFilters(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	agents := []string{"a1", "a2", "a3", "odd/name"}
	backends := []string{"b1", "b2"}
	var batch []store.AuditEvent
	for i := range 300 {
		e := store.AuditEvent{
			// Minutes apart, with some events a little out of time order
			// as batched request records are.
			Time:     base.Add(time.Duration(i)*time.Minute - time.Duration(i%3)*90*time.Second),
			Kind:     store.KindRequest,
			Agent:    agents[i%len(agents)],
			Backend:  backends[i%len(backends)],
			Decision: store.Allow,
			Status:   200,
		}
		if i%5 == 0 {
			e.Decision, e.Status = store.Deny, 403
		}
		if i%50 == 0 {
			e = store.AuditEvent{Time: e.Time, Kind: store.KindAdmin, Action: "agent.update", Target: "a1"}
		}
		if i == 250 {
			e.Time = base.Add(-time.Hour) // a long request recorded late
		}
		batch = append(batch, e)
	}
	must(t, s.AppendAudit(ctx, batch[:100]))
	must(t, s.AppendAudit(ctx, batch[100:]))
	all := queryAll(t, s, store.AuditQuery{})
	if len(all) != 300 {
		t.Fatalf("%d events, want 300", len(all))
	}
	oracle := func(q store.AuditQuery) []uint64 {
		var out []store.AuditEvent
		for _, e := range all {
			if q.Match(&e) {
				out = append(out, e)
			}
		}
		if q.Last > 0 && len(out) > q.Last {
			out = out[len(out)-q.Last:]
		}
		if q.Limit > 0 && len(out) > q.Limit {
			out = out[:q.Limit]
		}
		return seqs(out)
	}
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	cases := []struct {
		name string
		q    store.AuditQuery
		min  int // the oracle must select at least this many
	}{
		{"everything", store.AuditQuery{}, 300},
		{"agent", store.AuditQuery{Agent: "a2"}, 70},
		{"agent not indexable", store.AuditQuery{Agent: "odd/name"}, 70},
		{"unknown agent", store.AuditQuery{Agent: "nobody"}, 0},
		{"backend", store.AuditQuery{Backend: "b1"}, 140},
		{"agent and backend", store.AuditQuery{Agent: "a1", Backend: "b1"}, 70},
		{"decision", store.AuditQuery{Decision: store.Deny}, 50},
		{"kind", store.AuditQuery{Kind: store.KindAdmin}, 6},
		{"status", store.AuditQuery{Status: 403}, 50},
		{"since", store.AuditQuery{Since: at(200)}, 98},
		{"until includes a late record", store.AuditQuery{Until: at(0)}, 1},
		{"until", store.AuditQuery{Until: at(50)}, 49},
		{"since and until", store.AuditQuery{Since: at(100), Until: at(110)}, 9},
		{"since after everything", store.AuditQuery{Since: at(1000)}, 0},
		{"until before everything", store.AuditQuery{Until: at(-10)}, 0},
		{"after seq", store.AuditQuery{AfterSeq: 250}, 50},
		{"after seq beyond end", store.AuditQuery{AfterSeq: 900}, 0},
		{"last", store.AuditQuery{Last: 10}, 10},
		{"last more than exist", store.AuditQuery{Last: 1000}, 300},
		{"agent last", store.AuditQuery{Agent: "a3", Last: 5}, 5},
		{"backend decision last", store.AuditQuery{Backend: "b2", Decision: store.Deny, Last: 7}, 7},
		{"agent since last", store.AuditQuery{Agent: "a1", Since: at(100), Last: 3}, 3},
		{"agent until last", store.AuditQuery{Agent: "a1", Until: at(100), Last: 3}, 3},
		{"limit", store.AuditQuery{Limit: 4}, 4},
		{"agent limit", store.AuditQuery{Agent: "a2", Limit: 4}, 4},
		{"last and limit", store.AuditQuery{Last: 10, Limit: 3}, 3},
		{"after seq and agent", store.AuditQuery{AfterSeq: 280, Agent: "a1"}, 4},
		{"before seq", store.AuditQuery{BeforeSeq: 11}, 10},
		{"seq range", store.AuditQuery{AfterSeq: 120, BeforeSeq: 181}, 60},
		{"seq range with agent", store.AuditQuery{AfterSeq: 120, BeforeSeq: 181, Agent: "a2"}, 14},
		{"seq range last", store.AuditQuery{AfterSeq: 120, BeforeSeq: 181, Last: 5}, 5},
		{"before seq one", store.AuditQuery{BeforeSeq: 1}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := oracle(tc.q)
			if len(want) < tc.min {
				t.Fatalf("fixture selects %d events, want at least %d", len(want), tc.min)
			}
			got := seqs(queryAll(t, s, tc.q))
			if !slices.Equal(got, want) {
				t.Errorf("QueryAudit(%+v)\n got %v\nwant %v", tc.q, got, want)
			}
		})
	}
}

// testAuditVerifyPrune checks VerifyAudit on a fresh, a grown and a pruned
// trail, and that PruneAudit removes exactly the records older than its
// bound.
func testAuditVerifyPrune(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	verify := func(want int) {
		t.Helper()
		n, err := s.VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("VerifyAudit: %v", err)
		}
		if n != want {
			t.Errorf("VerifyAudit checked %d records, want %d", n, want)
		}
	}
	verify(0)

	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	appendAt := func(minutes ...int) {
		t.Helper()
		var evs []store.AuditEvent
		for _, m := range minutes {
			evs = append(evs, store.AuditEvent{Kind: store.KindRequest, Agent: agentBot, Status: 200 + m, Time: base.Add(time.Duration(m) * time.Minute)})
		}
		must(t, s.AppendAudit(ctx, evs))
	}
	appendAt(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	verify(10)

	prune := func(beforeMinute, want int) {
		t.Helper()
		n, err := s.PruneAudit(ctx, base.Add(time.Duration(beforeMinute)*time.Minute))
		if err != nil {
			t.Fatalf("PruneAudit: %v", err)
		}
		if n != want {
			t.Errorf("PruneAudit before minute %d removed %d records, want %d", beforeMinute, n, want)
		}
	}
	prune(-1, 0)
	prune(5, 5) // minutes 0-4 go; the record at minute 5 is not older, it stays
	if got := seqs(queryAll(t, s, store.AuditQuery{})); !slices.Equal(got, []uint64{6, 7, 8, 9, 10}) {
		t.Errorf("after pruning, seqs %v, want 6-10", got)
	}
	if got := seqs(queryAll(t, s, store.AuditQuery{Agent: agentBot})); !slices.Equal(got, []uint64{6, 7, 8, 9, 10}) {
		t.Errorf("after pruning, the agent filter finds seqs %v, want 6-10", got)
	}
	verify(5)
	prune(5, 0)

	// The chain goes on from the oldest record kept.
	appendAt(10, 11)
	verify(7)
	if evs := queryAll(t, s, store.AuditQuery{}); len(evs) == 7 {
		checkChain(t, evs)
	}

	// Everything can go; the next record still verifies.
	prune(60, 7)
	verify(0)
	if last, err := s.LastAuditSeq(ctx); err != nil || last != 12 {
		t.Errorf("LastAuditSeq after pruning everything = %d, %v; want 12", last, err)
	}
	appendAt(61)
	verify(1)
	if got := seqs(queryAll(t, s, store.AuditQuery{})); !slices.Equal(got, []uint64{13}) {
		t.Errorf("after pruning everything and appending, seqs %v, want [13]", got)
	}
}
