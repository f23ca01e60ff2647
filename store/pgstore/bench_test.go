package pgstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// BenchmarkAppendAudit measures audit insert throughput against the real
// server, in records per second, for the batch sizes the gateway's batcher
// produces, from one replica and from two writing at once.
//
//	go test -run '^$' -bench AppendAudit ./store/pgstore/
func BenchmarkAppendAudit(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		for _, batch := range []int{1, 64, 512} {
			b.Run(fmt.Sprintf("replicas=%d/batch=%d", replicas, batch), func(b *testing.B) {
				dbURL := newDatabase(b)
				stores := make([]*Store, replicas)
				for i := range stores {
					stores[i] = openStore(b, dbURL, fmt.Sprint("r", i))
				}
				tmpl := store.AuditEvent{Kind: store.KindRequest, Agent: "bench-agent", AuthMethod: "token", TokenID: "tok_0123456789",
					Client: "10.1.2.3:54321", Backend: "crm", Method: "POST", Host: "crm.example.com", Path: "/v1/contacts/search",
					Status: 200, Decision: store.Allow, UpstreamMillis: 12.5, TotalMillis: 13.1, BytesIn: 512, BytesOut: 4096, CredentialVersion: 3}
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				per := (b.N + replicas - 1) / replicas
				for _, s := range stores {
					wg.Go(func() {
						evs := make([]store.AuditEvent, batch)
						for done := 0; done < per; done += batch {
							for i := range evs {
								evs[i] = tmpl
								evs[i].RequestID = fmt.Sprint("req-", done+i)
							}
							if err := s.AppendAudit(b.Context(), evs[:min(batch, per-done)]); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(per*replicas)/time.Since(start).Seconds(), "records/s")
			})
		}
	}
}
