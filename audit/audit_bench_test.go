package audit

import (
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// BenchmarkAuditWriter measures audit records stored per second through the
// batch writer into a Badger store, with concurrent recorders as the proxy
// has them. Close is inside the timed region, so every record counted is
// committed.
//
//	go test -run '^$' -bench AuditWriter -benchtime 200000x ./audit
func BenchmarkAuditWriter(b *testing.B) {
	st, err := badgerstore.Open(b.TempDir(), badgerstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a := New(Config{Sink: StoreSink{st}, Logger: slog.New(slog.DiscardHandler)})
	b.SetParallelism(16)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			a.Record(benchAuditEvent(i))
			i++
		}
	})
	a.Close()
	b.StopTimer()
	if got := a.written.Load(); got != uint64(b.N) {
		b.Fatalf("wrote %d records, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	// CPU, not wall time, is what audit writing takes from the proxy.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/record")
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchAuditEvent(i int) store.AuditEvent {
	return store.AuditEvent{
		Kind: store.KindRequest, RequestID: fmt.Sprintf("req-%012d", i),
		Agent: fmt.Sprintf("agent%03d", i%100), AuthMethod: "token", TokenID: "tk00000001", Client: "10.1.2.3:51234",
		Backend: fmt.Sprintf("backend%02d", i%10), Method: "POST", Host: "api.example.com", Path: "/v1/chat/completions",
		Status: 200, Decision: store.Allow, UpstreamMillis: 812.5, TotalMillis: 813.1, BytesIn: 2048, BytesOut: 16384,
		CredentialVersion: 3,
	}
}
