package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// Under a flood of anonymous refusals the audit trail grows by a bounded
// number of records, while every refusal is still accounted for in the
// summaries, and nothing that names an agent or a token is aggregated.
func TestAnonymousFloodAggregated(t *testing.T) {
	t.Parallel()
	var got []store.AuditEvent
	now := time.Unix(1700000000, 0)
	s := &sampler{emit: func(ev store.AuditEvent) { got = append(got, ev) }, now: func() time.Time { return now }}
	const flood = 5000
	for i := range flood {
		s.record(store.AuditEvent{Kind: store.KindRequest, Client: fmt.Sprintf("192.0.2.7:%d", 1024+i%60000), Host: "api.example.com",
			Status: 401, Decision: store.Deny, Reason: "no credential"})
	}
	// Requests that name an agent or a token are all recorded.
	for range 50 {
		s.record(store.AuditEvent{Kind: store.KindRequest, Client: "192.0.2.7:1", Agent: "bot", Status: 403, Decision: store.Deny, Reason: "path not in grant"})
		s.record(store.AuditEvent{Kind: store.KindRequest, Client: "192.0.2.7:1", TokenID: "abc", Status: 401, Decision: store.Deny, Reason: "gateway token abc is revoked"})
	}
	now = now.Add(sampleWindow)
	s.flush(false)
	anon, named, counted := 0, 0, 0
	for _, ev := range got {
		if ev.Agent != "" || ev.TokenID != "" {
			named++
			continue
		}
		anon++
		if i := strings.Index(ev.Reason, "(aggregated: "); i >= 0 {
			var n int
			fmt.Sscanf(ev.Reason[i:], "(aggregated: %d refusals", &n)
			counted += n
		} else {
			counted++
		}
	}
	t.Logf("%d anonymous refusals in one window: %d records written (without aggregation: %d)", flood, anon, flood)
	if anon > sampleBurst+1 {
		t.Errorf("%d records for one kind of refusal in one window, want at most %d", anon, sampleBurst+1)
	}
	if counted != flood {
		t.Errorf("the records account for %d refusals, want all %d", counted, flood)
	}
	if named != 100 {
		t.Errorf("%d records naming an agent or token, want all 100", named)
	}
}

// Past sampleMaxKeys kinds (a spray of client addresses) refusals are
// aggregated across clients, so the map and the trail stay bounded.
func TestAnonymousFloodManyClientsBounded(t *testing.T) {
	t.Parallel()
	n := 0
	now := time.Unix(1700000000, 0)
	s := &sampler{emit: func(store.AuditEvent) { n++ }, now: func() time.Time { return now }}
	for i := range 200000 {
		s.record(store.AuditEvent{Kind: store.KindTLS, Client: fmt.Sprintf("10.%d.%d.%d:443", i>>16&255, i>>8&255, i&255), Decision: store.Deny, Reason: "unknown SNI"})
	}
	if len(s.m) > sampleMaxKeys+1 {
		t.Errorf("%d windows held, want at most %d", len(s.m), sampleMaxKeys+1)
	}
	if n > sampleMaxKeys+sampleBurst {
		t.Errorf("%d records for 200000 refusals from 200000 addresses, want at most %d", n, sampleMaxKeys+sampleBurst)
	}
}
