package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agw-dev/agw/audit/otlp"
	"github.com/agw-dev/agw/store"
)

// The audit records of real requests, shipped over OTLP to a collector on
// loopback, arrive whole and carry neither the injected credential nor the
// agent's token in any exported byte.
func TestOTLPAuditCarriesNoCredential(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var raw [][]byte
	records := 0
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var msg collogs.ExportLogsServiceRequest
		if err := proto.Unmarshal(b, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		raw = append(raw, b)
		for _, rl := range msg.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				records += len(sl.LogRecords)
			}
		}
		mu.Unlock()
		out, _ := proto.Marshal(&collogs.ExportLogsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer col.Close()
	sink, err := otlp.New(context.Background(), otlp.Config{URL: col.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(context.Background())

	h.get("/v1/models?key=x", "Authorization", "Bearer "+h.token)
	h.get("/v1/models", "Authorization", "Bearer "+h.token+"x") // a wrong token
	h.get("/v1/models", "Authorization", "Bearer "+canary)      // the credential itself, as a token
	var evs []store.AuditEvent
	for range 3 {
		evs = append(evs, h.nextAudit())
	}
	if err := sink.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if records != 3 {
		t.Fatalf("collector got %d records; want 3", records)
	}
	for _, b := range raw {
		for _, secret := range []string{canary, h.token} {
			if bytes.Contains(b, []byte(secret)) {
				t.Fatal("an OTLP export carries a credential")
			}
		}
	}
}
