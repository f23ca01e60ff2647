package badgerstore_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// Run with: go test -run '^$' -bench . -benchtime 2s ./store/badgerstore
// AGW_BENCH_AUDIT_EVENTS sets the audit store size for BenchmarkQueryAudit
// (default 1,000,000); for 10 million, select the indexed queries, since
// backend_deny_last100 scans a tenth of the store:
//
//	AGW_BENCH_AUDIT_EVENTS=10000000 go test -run '^$' -timeout 60m \
//	  -bench 'QueryAudit/^(agent_last100|last100|after_seq_tail|since_last_minute)$' ./store/badgerstore

const benchTokens = 100_000

// storeWithTokens opens a store with 1,000 agents holding benchTokens tokens
// between them, written through the bulk helper.
func storeWithTokens(b *testing.B) *badgerstore.Store {
	b.Helper()
	s := openTemp(b)
	ctx := b.Context()
	const agents = 1000
	for i := range agents {
		name := fmt.Sprintf("agent%04d", i)
		must(b, noRev(s.CreateAgent(ctx, &store.Agent{Name: name}, admin("agent.add", name))))
	}
	batch := make([]store.Token, 0, 10_000)
	now := time.Now().UTC()
	for i := range benchTokens {
		batch = append(batch, store.Token{
			ID: fmt.Sprintf("tk%08d", i), Agent: fmt.Sprintf("agent%04d", i%agents),
			Hash: make([]byte, 32), CreatedAt: now, Label: "bench",
		})
		if len(batch) == cap(batch) {
			must(b, s.BulkTokens(batch))
			batch = batch[:0]
		}
	}
	return s
}

func BenchmarkCreateToken(b *testing.B) {
	s := storeWithTokens(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("new%08d", i)
		must(b, noRev(s.CreateToken(ctx, &store.Token{ID: id, Agent: "agent0001", Hash: make([]byte, 32)}, admin("token.mint", id))))
		i++
	}
}

func BenchmarkRevokeToken(b *testing.B) {
	s := storeWithTokens(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("tk%08d", (i*7919)%benchTokens)
		_, err := dropRev(s.RevokeToken(ctx, id, time.Time{}, admin("token.revoke", id)))
		must(b, err)
		i++
	}
}

func BenchmarkLoad100kTokens(b *testing.B) {
	s := storeWithTokens(b)
	ctx := b.Context()
	for b.Loop() {
		snap, err := s.Load(ctx)
		must(b, err)
		if len(snap.Tokens) != benchTokens {
			b.Fatalf("%d tokens", len(snap.Tokens))
		}
	}
}

func requestEvent(i int) store.AuditEvent {
	return store.AuditEvent{
		Kind: store.KindRequest, RequestID: fmt.Sprintf("req-%012d", i),
		Agent: fmt.Sprintf("agent%03d", i%100), AuthMethod: "token", TokenID: "tk00000001", Client: "10.1.2.3:51234",
		Backend: fmt.Sprintf("backend%02d", i%10), Method: "POST", Host: "api.example.com", Path: "/v1/chat/completions",
		Status: 200, Decision: store.Allow, UpstreamMillis: 812.5, TotalMillis: 813.1, BytesIn: 2048, BytesOut: 16384,
		CredentialVersion: 3,
	}
}

// BenchmarkAppendAudit appends request records in batches of the sizes the
// gateway's writer forms. The records name 100 agents and 10 backends in
// turn; the /hot variants name one of each, as a busy agent does, whose
// records share index entries (auditindex.go).
func BenchmarkAppendAudit(b *testing.B) {
	for _, batch := range []int{6, 32, 100, 1000} {
		for _, hot := range []bool{false, true} {
			name := fmt.Sprintf("batch%d", batch)
			if hot {
				name += "/hot"
			}
			b.Run(name, func(b *testing.B) { benchAppendAudit(b, batch, hot) })
		}
	}
}

func benchAppendAudit(b *testing.B, batch int, hot bool) {
	dir := b.TempDir()
	s := openDir(b, dir, badgerstore.Options{})
	ctx := b.Context()
	evs := make([]store.AuditEvent, batch)
	n := 0
	for b.Loop() {
		for j := range evs {
			evs[j] = requestEvent(n)
			if hot {
				evs[j].Agent, evs[j].Backend = "agent000", "backend00"
			}
			n++
		}
		must(b, s.AppendAudit(ctx, evs))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	// The directory's size once closed (memtable flushed, value log
	// trimmed), without the fixed cost of Badger's empty files.
	must(b, s.Close())
	b.ReportMetric(float64(dirBytes(b, dir)-emptyStoreBytes(b))/float64(n), "disk-B/event")
}

// BenchmarkQueryAudit builds one large audit store (100 agents, 10 backends)
// and times the queries `agw audit tail` makes.
func BenchmarkQueryAudit(b *testing.B) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("AGW_BENCH_AUDIT_EVENTS")); err == nil && v > 0 {
		total = v
	}
	s := openTemp(b)
	ctx := b.Context()
	start := time.Now()
	base := time.Now().Add(-time.Duration(total) * time.Millisecond)
	const chunk = 10_000
	evs := make([]store.AuditEvent, 0, chunk)
	for i := range total {
		ev := requestEvent(i)
		ev.Time = base.Add(time.Duration(i) * time.Millisecond)
		evs = append(evs, ev)
		if len(evs) == chunk || i == total-1 {
			must(b, s.AppendAudit(ctx, evs))
			evs = evs[:0]
		}
	}
	// Printed at once, not through b.Logf, so a long build's figure survives
	// an interrupted run.
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "BenchmarkQueryAudit: built %d events in %v (%.0f events/s)\n",
		total, took.Round(time.Millisecond), float64(total)/took.Seconds())
	queries := []struct {
		name string
		q    store.AuditQuery
		want int
	}{
		{"agent_last100", store.AuditQuery{Agent: "agent042", Last: 100}, 100},
		{"last100", store.AuditQuery{Last: 100}, 100},
		{"backend_deny_last100", store.AuditQuery{Backend: "backend03", Decision: store.Deny, Last: 100}, 0},
		{"after_seq_tail", store.AuditQuery{AfterSeq: uint64(total - 100)}, 100},
		{"since_last_minute", store.AuditQuery{Since: base.Add(time.Duration(total-1000) * time.Millisecond)}, 1000},
	}
	for _, qc := range queries {
		b.Run(qc.name, func(b *testing.B) {
			for b.Loop() {
				n := 0
				must(b, s.QueryAudit(ctx, qc.q, func(store.AuditEvent) bool { n++; return true }))
				if n != qc.want {
					b.Fatalf("%d events, want %d", n, qc.want)
				}
			}
		})
	}
	// What `agw audit verify` costs on the same store: the hash chain, then
	// the agent and backend indexes against the records.
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			n, err := s.VerifyAudit(ctx)
			must(b, err)
			if n != total {
				b.Fatalf("verified %d records, want %d", n, total)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(total), "ns/record")
	})
}

// dirBytes is the total size of the files in dir.
func dirBytes(b *testing.B, dir string) (n int64) {
	b.Helper()
	entries, err := os.ReadDir(dir)
	must(b, err)
	for _, e := range entries {
		fi, err := e.Info()
		must(b, err)
		n += fi.Size()
	}
	return n
}

// emptyStoreBytes is the size of a store opened and closed with nothing in it.
func emptyStoreBytes(b *testing.B) int64 {
	b.Helper()
	dir := b.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(b, err)
	must(b, s.Close())
	return dirBytes(b, dir)
}
