package otlp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agw-dev/agw/audit"
	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// receiver is an OTLP/HTTP logs endpoint that keeps what it was sent.
type receiver struct {
	mu   sync.Mutex
	raw  [][]byte
	recs []map[string]*commonpb.AnyValue
	body []string
	srv  *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var msg collogs.ExportLogsServiceRequest
		if err := proto.Unmarshal(b, &msg); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		r.raw = append(r.raw, b)
		for _, rl := range msg.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					m := map[string]*commonpb.AnyValue{}
					for _, kv := range lr.Attributes {
						m[kv.Key] = kv.Value
					}
					r.recs = append(r.recs, m)
					r.body = append(r.body, lr.Body.GetStringValue())
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collogs.ExportLogsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.recs) }

// waitFor polls cond, which reads state other goroutines change.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not ordering
	}
}

func openStore(t *testing.T) *badgerstore.Store {
	st, err := badgerstore.Open(t.TempDir(), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newSink(t *testing.T, u string, timeout time.Duration) *Sink {
	s, err := New(context.Background(), Config{URL: u, Version: "test", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func requestEvent(i int) store.AuditEvent {
	return store.AuditEvent{
		Time: time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC), Kind: store.KindRequest, RequestID: "req-" + strconv.Itoa(i),
		Agent: "bot", AuthMethod: "token", TokenID: "tok1", Client: "127.0.0.1:5555",
		Backend: "openai", Method: "POST", Host: "api.openai.com", Path: "/v1/chat/completions",
		Status: 200, Decision: "allow", UpstreamMillis: 12.5, TotalMillis: 13.25, BytesIn: 100, BytesOut: 2000,
		CredentialVersion: 3,
	}
}

// Every stored record reaches the collector with its export fields.
func TestExportFields(t *testing.T) {
	rcv := newReceiver(t)
	st := openStore(t)
	log := audit.New(audit.Config{Sink: audit.StoreSink{Store: st}, Secondary: []audit.Sink{newSink(t, rcv.srv.URL, time.Second)}})
	for i := range 20 {
		log.Record(requestEvent(i))
	}
	// An admin mutation's record, stored with the mutation itself.
	log.Stored([]store.AuditEvent{{Time: time.Now(), Kind: store.KindAdmin, Action: "token.mint", Target: "tok9", Decision: store.Allow}})
	log.Close()
	if got := rcv.count(); got != 21 {
		t.Fatalf("collector got %d records; want 21", got)
	}
	if s := log.Secondary()[0]; s.Sent != 21 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var a, adm map[string]*commonpb.AnyValue
	for i, r := range rcv.recs {
		switch r["request_id"].GetStringValue() {
		case "req-0":
			a = r
			if rcv.body[i] != "agw audit request" {
				t.Errorf("body %q", rcv.body[i])
			}
		case "":
			adm = r
		}
	}
	if a == nil || adm == nil {
		t.Fatal("the first request record or the admin record did not arrive")
	}
	for k, want := range map[string]string{"kind": "request", "agent": "bot", "backend": "openai", "method": "POST",
		"host": "api.openai.com", "path": "/v1/chat/completions", "decision": "allow", "token_id": "tok1", "request_id": "req-0"} {
		if got := a[k].GetStringValue(); got != want {
			t.Errorf("attribute %s = %q; want %q", k, got, want)
		}
	}
	if a["status"].GetIntValue() != 200 || a["credential_version"].GetIntValue() != 3 || a["total_ms"].GetDoubleValue() != 13.25 {
		t.Errorf("numeric attributes: status %v credential_version %v total_ms %v", a["status"], a["credential_version"], a["total_ms"])
	}
	// Shipped after the store wrote them: with their place in the chain.
	if a["time"].GetStringValue() == "" || a["seq"].GetIntValue() < 1 || a["hash"].GetStringValue() == "" {
		t.Errorf("time %v seq %v hash %v", a["time"], a["seq"], a["hash"])
	}
	if adm["kind"].GetStringValue() != "admin" || adm["action"].GetStringValue() != "token.mint" || adm["target"].GetStringValue() != "tok9" {
		t.Errorf("admin record attributes: %v", adm)
	}
}

// A collector that never answers slows neither Record nor the store: every
// record is stored while the export still hangs, and what its queue could
// not hold is counted.
func TestHangingCollector(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	st := openStore(t)
	log := audit.New(audit.Config{Sink: audit.StoreSink{Store: st}, Secondary: []audit.Sink{newSink(t, hang.URL, time.Hour)},
		Logger: slog.New(slog.DiscardHandler)})
	const n = 10000
	for i := range n {
		log.Record(requestEvent(i))
	}
	waitFor(t, "the store to take every record", func() bool { return log.Written() == n })
	s := log.Secondary()[0]
	if s.Sent != 0 {
		t.Fatalf("a hanging collector took %d records", s.Sent)
	}
	// At most one batch in the export and a queue's worth wait; the rest
	// were dropped and counted.
	if s.Dropped < n-8192-512 {
		t.Fatalf("dropped %d of %d; want at least %d counted", s.Dropped, n, n-8192-512)
	}
}

// A collector that is not there: each batch is tried a few times, then
// dropped, counted and logged; the store has every record.
func TestDeadCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/v1/logs"
	ln.Close()
	var logs bytes.Buffer
	var logMu sync.Mutex
	lg := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	st := openStore(t)
	log := audit.New(audit.Config{Sink: audit.StoreSink{Store: st}, Secondary: []audit.Sink{newSink(t, dead, time.Second)}, Logger: lg})
	for i := range 5 {
		log.Record(requestEvent(i))
	}
	waitFor(t, "the records to be counted as dropped", func() bool { return log.Secondary()[0].Dropped == 5 })
	if log.Written() != 5 {
		t.Fatalf("store has %d of 5", log.Written())
	}
	if f := log.Secondary()[0].Fails; f < 3 {
		t.Fatalf("%d attempts; want a bounded retry (3)", f)
	}
	log.Close()
	logMu.Lock()
	defer logMu.Unlock()
	if !bytes.Contains(logs.Bytes(), []byte("audit records dropped by a secondary sink")) {
		t.Fatalf("no log line for the drop:\n%s", logs.String())
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"", "collector:4318", "ftp://x/v1/logs", "http://"} {
		if _, err := New(context.Background(), Config{URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
