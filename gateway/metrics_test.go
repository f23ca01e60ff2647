package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

func scrape(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(body)
}

func TestMetricsHandler(t *testing.T) {
	t.Parallel()
	m := newMetrics(metricSources{
		AuditDepth:      func() int { return 7 },
		AuditWriteFails: func() uint64 { return 2 },
		DNS:             func() (uint64, uint64, uint64, uint64, uint64) { return 10, 4, 5, 1, 3 },
		JWTVerifications: func() (uint64, uint64, uint64) {
			return 6, 1, 0
		},
		OAuth2: func() (uint64, uint64, uint64, uint64) { return 9, 1, 2, 2 },
	})
	m.observe(&store.AuditEvent{Backend: "api", Agent: "bot", Decision: store.Allow, Status: 200, TotalMillis: 12, UpstreamMillis: 10, Redactions: 2})
	m.observe(&store.AuditEvent{Backend: "api", Agent: "bot", Decision: store.Allow, Status: 200, TotalMillis: 3})
	m.observe(&store.AuditEvent{Backend: "api", Decision: store.Deny, Status: 401})
	m.rateLimited(limitGrant)
	var readyErr error
	s := &metricsServer{m: m, ready: func(context.Context) error { return readyErr }}
	h := s.handler()

	code, body := scrape(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		`agw_requests_total{agent="bot",backend="api",decision="allow",status="200"} 2`,
		`agw_requests_total{agent="",backend="api",decision="deny",status="401"} 1`,
		`agw_request_duration_seconds_count{backend="api"} 3`,
		`agw_upstream_duration_seconds_count{backend="api"} 1`,
		`agw_rate_limited_total{limit="grant"} 1`,
		`agw_rate_limited_total{limit="auth_failure"} 0`,
		`agw_redactions_total{backend="api"} 2`,
		`agw_audit_queue_depth 7`,
		`agw_audit_write_errors_total 2`,
		`agw_dns_queries_total 10`,
		`agw_dns_intercepted_total 4`,
		`agw_dns_cache_hits_total 3`,
		`agw_jwt_verified_total 6`,
		`agw_oauth2_token_fetches_total 9`,
		`agw_oauth2_token_refused_total 2`,
		`process_start_time_seconds`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := scrape(t, h, "/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := scrape(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz %d", code)
	}
	readyErr = errors.New("store: closed")
	if code, body := scrape(t, h, "/readyz"); code != 503 || !strings.Contains(body, "store: closed") {
		t.Errorf("/readyz when not ready: %d %q", code, body)
	}
	if code, _ := scrape(t, h, "/"); code != 404 {
		t.Errorf("/ %d", code)
	}
}

// Series of removed backends and agents are dropped.
func TestMetricsForget(t *testing.T) {
	t.Parallel()
	st := newState()
	st.putAgent(store.Agent{Name: "bot"})
	m := newMetrics(metricSources{})
	m.observe(&store.AuditEvent{Backend: "gone", Agent: "bot", Decision: store.Allow, Status: 200})
	m.observe(&store.AuditEvent{Agent: "bot", Decision: store.Deny, Status: 421})
	m.forget(st)
	_, body := scrape(t, (&metricsServer{m: m}).handler(), "/metrics")
	if strings.Contains(body, `backend="gone"`) {
		t.Error("series of a removed backend kept")
	}
	if !strings.Contains(body, `agw_requests_total{agent="bot",backend="",decision="deny",status="421"} 1`) {
		t.Error("series of a live agent dropped")
	}
}

// Through the pipeline: each request is counted once with its outcome.
func TestProxyMetrics(t *testing.T) {
	t.Parallel()
	keys, err := crypto.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := keys.Seal([]byte(canary))
	tok, id, hash, _ := crypto.MintToken()
	st, err := loadState(&store.Snapshot{
		Backends:    []store.Backend{{Name: "api", Hosts: []string{testHost}, Upstream: "https://127.0.0.1:1", Inject: store.InjectHeader, Header: "X-Api-Key"}},
		Credentials: []store.Credential{{Backend: "api", Sealed: sealed}},
		Agents:      []store.Agent{{Name: "bot"}},
		Grants:      []store.Grant{{Agent: "bot", Backend: "api", Methods: []string{"POST"}, Paths: []string{"/v1/**"}}},
		Tokens:      []store.Token{{ID: id, Agent: "bot", Hash: hash}},
	}, keys)
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(metricSources{})
	p := newProxy(proxyConfig{State: st, Metrics: m})
	p.ups.roundTripper = cannedUpstream{}
	for _, path := range []string{"/v1/a", "/v2/a"} {
		r := benchRequest(string(tok.Reveal()))
		r.URL.Path = path
		p.ServeHTTP(httptest.NewRecorder(), r)
	}
	_, body := scrape(t, (&metricsServer{m: m}).handler(), "/metrics")
	for _, want := range []string{
		`agw_requests_total{agent="bot",backend="api",decision="allow",status="200"} 1`,
		`agw_requests_total{agent="bot",backend="api",decision="deny",status="403"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// BenchmarkMetricsObserve is the per-request cost of counting.
func BenchmarkMetricsObserve(b *testing.B) {
	m := newMetrics(metricSources{})
	ev := &store.AuditEvent{Backend: "api", Agent: "bot", Decision: store.Allow, Status: 200, TotalMillis: 12, UpstreamMillis: 10}
	b.ReportAllocs()
	for b.Loop() {
		m.observe(ev)
	}
}

// A malformed HTTP/2 stream never reaches the pipeline; the HTTP/2 server
// refuses it and the refusal is counted by type.
func TestHTTP2ErrorsCounted(t *testing.T) {
	t.Parallel()
	m := newMetrics(metricSources{})
	h := newHarness(t, withMetrics(m))
	c, err := tls.Dial("tcp", h.addr, &tls.Config{RootCAs: h.caPool(), ServerName: testHost, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	frame := func(typ, flags byte, stream uint32, payload ...byte) []byte {
		n := len(payload)
		return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags,
			byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}, payload...)
	}
	msg := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	msg = append(msg, frame(0x4, 0, 0)...)         // SETTINGS
	msg = append(msg, frame(0x1, 0x5, 2, 0x82)...) // HEADERS on an even (server-only) stream: :method GET
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, c) // the server answers GOAWAY and hangs up
	_, body := scrape(t, (&metricsServer{m: m}).handler(), "/metrics")
	if want := `agw_http2_errors_total{type="conn_PROTOCOL_ERROR_headers_even"} 1`; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend received %d requests", n)
	}
}
