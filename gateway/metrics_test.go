package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/gateway/front"
	"github.com/agw-dev/agw/gateway/limit"
	"github.com/agw-dev/agw/state"
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
	m := NewMetrics(MetricSources{
		AuditDepth:      func() int { return 7 },
		AuditWriteFails: func() uint64 { return 2 },
		DNS:             func() (uint64, uint64, uint64, uint64, uint64, uint64) { return 10, 4, 5, 1, 3, 2 },
		JWTVerifications: func() (uint64, uint64, uint64) {
			return 6, 1, 0
		},
		OAuth2: func() (uint64, uint64, uint64, uint64) { return 9, 1, 2, 2 },
	})
	m.observe(&store.AuditEvent{Backend: "api", Agent: "bot", Decision: store.Allow, Status: 200, TotalMillis: 12, UpstreamMillis: 10, Redactions: 2})
	m.observe(&store.AuditEvent{Backend: "api", Agent: "bot", Decision: store.Allow, Status: 200, TotalMillis: 3})
	m.observe(&store.AuditEvent{Backend: "api", Decision: store.Deny, Status: 401})
	m.rateLimited(limit.KindGrant)
	h := m.Handler(nil)

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
		`agw_dns_refused_total 2`,
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
}

// Series of removed backends and agents are dropped.
func TestMetricsForget(t *testing.T) {
	t.Parallel()
	st := state.New()
	st.PutAgent(store.Agent{Name: "bot"})
	m := NewMetrics(MetricSources{})
	m.observe(&store.AuditEvent{Backend: "gone", Agent: "bot", Decision: store.Allow, Status: 200})
	m.observe(&store.AuditEvent{Agent: "bot", Decision: store.Deny, Status: 421})
	m.forget(st)
	_, body := scrape(t, m.Handler(nil), "/metrics")
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
	st, err := state.Load(&store.Snapshot{
		Backends:    []store.Backend{{Name: "api", Hosts: []string{testHost}, Upstream: "https://127.0.0.1:1", Inject: store.InjectHeader, Header: "X-Api-Key"}},
		Credentials: []store.Credential{{Backend: "api", Sealed: sealed}},
		Agents:      []store.Agent{{Name: "bot"}},
		Grants:      []store.Grant{{Agent: "bot", Backend: "api", Methods: []string{"POST"}, Paths: []string{"/v1/**"}}},
		Tokens:      []store.Token{{ID: id, Agent: "bot", Hash: hash}},
	}, keys)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(MetricSources{})
	p := New(Config{State: st, Metrics: m})
	p.ups.roundTripper = cannedUpstream{}
	for _, path := range []string{"/v1/a", "/v2/a"} {
		r := benchRequest(string(tok.Reveal()))
		r.URL.Path = path
		p.ServeHTTP(httptest.NewRecorder(), r)
	}
	_, body := scrape(t, m.Handler(nil), "/metrics")
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
	m := NewMetrics(MetricSources{})
	ev := &store.AuditEvent{Backend: "api", Agent: "bot", Decision: store.Allow, Status: 200, TotalMillis: 12, UpstreamMillis: 10}
	b.ReportAllocs()
	for b.Loop() {
		m.observe(ev)
	}
}

// TestHTTP2RefusalsAudited: streams and frames the HTTP/2 server refuses
// itself never reach the pipeline, yet each gets an audit record naming the
// client, the host and what was wrong, beside the records of the requests
// the same connection carried.
func TestHTTP2RefusalsAudited(t *testing.T) {
	t.Parallel()
	m := NewMetrics(MetricSources{})
	h := newHarness(t, withMetrics(m))
	c, err := tls.Dial("tcp", h.addr, &tls.Config{RootCAs: h.caPool(), ServerName: testHost, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	headers := func(stream uint32, fields ...string) {
		t.Helper()
		hb.Reset()
		for i := 0; i+1 < len(fields); i += 2 {
			if err := enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]}); err != nil {
				t.Fatal(err)
			}
		}
		err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	auth := []string{":scheme", "https", ":authority", testHost, "authorization", "Bearer " + h.token}
	headers(1, append([]string{":method", "GET", ":path", "/v1/models"}, auth...)...)
	headers(3, append([]string{":method", "GET"}, auth...)...)                        // no :path
	headers(5, append([]string{":method", "GET", ":path", "/v1/models"}, auth...)...) // the connection still serves
	// Wait for both answers and the reset, so the refusal of the whole
	// connection below cuts no request short.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	done := map[uint32]bool{}
	for len(done) < 3 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the answers: %v (have %v)", err, done)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			done[f.StreamID] = f.StreamID == 3 && f.ErrCode == http2.ErrCodeProtocol
		case *http2.DataFrame:
			if f.StreamEnded() {
				done[f.StreamID] = true
			}
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				done[f.StreamID] = true
			}
		}
	}
	if !done[1] || !done[3] || !done[5] {
		t.Fatalf("streams ended: %v; want 1 and 5 answered and 3 reset", done)
	}
	headers(6, ":method", "GET")  // even stream: the connection is refused
	_, _ = io.Copy(io.Discard, c) // GOAWAY, then the server hangs up

	// The allowed records come as their requests finish, so the order
	// across streams is not fixed.
	want := map[string]int{
		"allow": 2,
		"deny " + front.ReasonH2Refused + ": stream_PROTOCOL_ERROR_bad_path_method": 1,
		"deny " + front.ReasonH2Refused + ": conn_PROTOCOL_ERROR_headers_even":      1,
	}
	for i := range 4 {
		ev := h.nextAudit()
		k := ev.Decision
		if ev.Decision == store.Deny {
			k += " " + ev.Reason
		}
		if want[k] == 0 {
			t.Fatalf("unexpected record %d: %s %q (status %d)", i, ev.Decision, ev.Reason, ev.Status)
		}
		want[k]--
		if ev.Client != c.LocalAddr().String() || ev.Host != testHost || ev.RequestID == "" {
			t.Errorf("record %d names client %q, host %q, request id %q; want %q, %q and an id", i, ev.Client, ev.Host, ev.RequestID, c.LocalAddr(), testHost)
		}
	}
	select {
	case ev := <-h.auditc:
		t.Errorf("extra record: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
	if n := h.seenCount(); n != 2 {
		t.Errorf("backend received %d requests, want the 2 well-formed ones", n)
	}
	_, body := scrape(t, m.Handler(nil), "/metrics")
	for _, want := range []string{
		`agw_http2_errors_total{type="stream_PROTOCOL_ERROR_bad_path_method"} 1`,
		`agw_http2_errors_total{type="conn_PROTOCOL_ERROR_headers_even"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestHTTP2DrainOnShutdown: at shutdown an HTTP/2 connection is told to go
// away, its request in flight still gets its answer and its record, and the
// server stops as soon as that request is done rather than at the drain
// timeout.
func TestHTTP2DrainOnShutdown(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "late answer")
	}))
	type result struct {
		res  *http.Response
		body []byte
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "https://"+testHost+"/v1/slow", nil)
		req.Header.Set("Authorization", "Bearer "+h.token)
		res, err := h.client(true).Do(req)
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		resc <- result{res, body, err}
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- h.stop() }()
	// The listener closes first; the request is still in flight.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", h.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if i == 500 {
			t.Fatal("the listener still accepts after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-resc
	if r.err != nil || r.res.StatusCode != 200 || r.res.Proto != "HTTP/2.0" || string(r.body) != "late answer" {
		t.Fatalf("in-flight HTTP/2 request during shutdown: %v %v %q", r.err, r.res, r.body)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(front.DrainTimeout / 2):
		t.Fatal("Serve still draining long after the last request finished: the HTTP/2 connection was not told to go away")
	}
	if ev := h.nextAudit(); ev.Decision != store.Allow || ev.Status != 200 || ev.Path != "/v1/slow" {
		t.Errorf("record of the drained request: %+v", ev)
	}
	if strings.Contains(h.logs.String(), "drain timed out") {
		t.Errorf("log says the drain timed out:\n%s", h.logs.String())
	}
}
