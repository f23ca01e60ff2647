package gateway

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agw-dev/agw/gateway/limit"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// Metrics are the gateway's Prometheus metrics, in a registry of their own
// (never the global default, so tests and embedders do not collide).
//
// Label cardinality is bounded by configuration: backend and agent labels
// take registered names only ("" when a request was not routed or not
// identified), decision is allow/deny and status is an HTTP status code.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	total      *prometheus.HistogramVec
	upstream   *prometheus.HistogramVec
	limited    *prometheus.CounterVec
	redactions *prometheus.CounterVec
	h2errs     *prometheus.CounterVec
	stale      prometheus.Counter

	// Per-label children are cached by value keys so the request path does
	// not build label slices or format status codes.
	reqs sync.Map // requestLabels → prometheus.Counter
	lats sync.Map // backend → *backendObservers
}

type requestLabels struct {
	backend, agent, decision string
	status                   int
}

type backendObservers struct {
	total, upstream prometheus.Observer
	redactions      prometheus.Counter
}

// MetricSources are the counters kept elsewhere that metrics read on each
// scrape; a nil function leaves its metric out.
type MetricSources struct {
	AuditDepth       func() int
	AuditWritten     func() uint64
	AuditWriteFails  func() uint64
	AuditLost        func() uint64
	TLSRefused       func() uint64
	UpstreamErrors   func() uint64
	DNS              func() (queries, intercepted, forwarded, failures, cacheHits, refused uint64)
	JWTVerifications func() (verified, rejected, unavailable uint64)
	OAuth2           func() (fetches, failures, refused, retried uint64)
	Conns            func() (open int64, refused uint64)
}

// latencyBuckets span a cached answer (a millisecond) to a long model
// completion (two minutes).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// NewMetrics registers the gateway's metrics and those of src.
func NewMetrics(src MetricSources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_requests_total",
		Help: "Requests through the gateway by backend, agent, decision and status.",
	}, []string{"backend", "agent", "decision", "status"})
	m.total = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agw_request_duration_seconds",
		Help:    "Time from request to the end of the response, by backend.",
		Buckets: latencyBuckets,
	}, []string{"backend"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agw_upstream_duration_seconds",
		Help:    "Time from forwarding a request to the backend's response headers, by backend.",
		Buckets: latencyBuckets,
	}, []string{"backend"})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_rate_limited_total",
		Help: "Requests refused with 429, by the limit that refused them (grant, agent, backend, concurrency, auth_failure).",
	}, []string{"limit"})
	m.redactions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_redactions_total",
		Help: "Reflected credentials replaced in responses (headers and bodies), by backend.",
	}, []string{"backend"})
	// The types are the fixed set Go's HTTP/2 server reports, such as
	// conn_PROTOCOL_ERROR_headers_even (scope, error code, check), so the
	// label stays bounded.
	m.h2errs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_http2_errors_total",
		Help: "HTTP/2 protocol errors from agents' connections (malformed frames or streams the HTTP/2 server refused before routing), by type.",
	}, []string{"type"})
	m.stale = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agw_stale_refusals_total",
		Help: "Requests refused (503) because the store's change feed had not confirmed the gateway's view current within --max-staleness.",
	})
	m.reg.MustRegister(m.stale)
	for _, kind := range limit.Kinds {
		m.limited.WithLabelValues(kind) // present at zero before the first hit
	}
	m.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		m.requests, m.total, m.upstream, m.limited, m.redactions, m.h2errs,
	)
	counter := func(name, help string, f func() uint64) {
		if f != nil {
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) }))
		}
	}
	if src.AuditDepth != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "agw_audit_queue_depth",
			Help: "Audit records waiting to be written.",
		}, func() float64 { return float64(src.AuditDepth()) }))
	}
	counter("agw_audit_records_written_total", "Audit records written to the store.", src.AuditWritten)
	counter("agw_audit_write_errors_total", "Failed audit batch writes (each is retried).", src.AuditWriteFails)
	counter("agw_audit_records_lost_total", "Audit records given up on: the store failed with the queue full, or a shutdown could not write them.", src.AuditLost)
	counter("agw_tls_handshakes_refused_total", "TLS handshakes refused (unknown server name, plain HTTP on the HTTPS port).", src.TLSRefused)
	if f := src.Conns; f != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "agw_open_connections",
			Help: "Agent connections open now (HTTPS listener).",
		}, func() float64 { o, _ := f(); return float64(o) }))
		counter("agw_connections_refused_total", "Agent connections closed at once because --max-conns or --max-conns-per-client was reached.", func() uint64 { _, r := f(); return r })
	}
	counter("agw_upstream_errors_total", "Requests the backend could not answer (502/504).", src.UpstreamErrors)
	if f := src.DNS; f != nil {
		pick := func(i int) func() uint64 {
			return func() uint64 {
				q, in, fw, fl, ch, rf := f()
				return [6]uint64{q, in, fw, fl, ch, rf}[i]
			}
		}
		counter("agw_dns_queries_total", "DNS queries received.", pick(0))
		counter("agw_dns_intercepted_total", "DNS queries answered with the gateway's address.", pick(1))
		counter("agw_dns_forwarded_total", "DNS queries answered with upstream data.", pick(2))
		counter("agw_dns_failures_total", "DNS queries answered SERVFAIL.", pick(3))
		counter("agw_dns_cache_hits_total", "Forwarded DNS queries answered from the cache.", pick(4))
		counter("agw_dns_refused_total", "DNS queries refused: the client is outside --dns-allow.", pick(5))
	}
	if f := src.JWTVerifications; f != nil {
		counter("agw_jwt_verified_total", "IdP tokens verified that identified an agent.", func() uint64 { v, _, _ := f(); return v })
		counter("agw_jwt_rejected_total", "IdP tokens rejected.", func() uint64 { _, r, _ := f(); return r })
		counter("agw_jwt_unavailable_total", "IdP token checks that failed closed (no usable key).", func() uint64 { _, _, u := f(); return u })
	}
	if f := src.OAuth2; f != nil {
		counter("agw_oauth2_token_fetches_total", "OAuth2 client-credentials token requests to token endpoints.", func() uint64 { v, _, _, _ := f(); return v })
		counter("agw_oauth2_token_failures_total", "Requests answered 502 for want of an OAuth2 token.", func() uint64 { _, v, _, _ := f(); return v })
		counter("agw_oauth2_token_refused_total", "Upstream 401s to an injected OAuth2 token.", func() uint64 { _, _, v, _ := f(); return v })
		counter("agw_oauth2_retries_total", "Requests sent again with a fresh OAuth2 token.", func() uint64 { _, _, _, v := f(); return v })
	}
	return m
}

// observe counts one finished request.
func (m *Metrics) observe(ev *store.AuditEvent) {
	if m == nil {
		return
	}
	k := requestLabels{ev.Backend, ev.Agent, ev.Decision, ev.Status}
	c, ok := m.reqs.Load(k)
	if !ok {
		c, _ = m.reqs.LoadOrStore(k, m.requests.WithLabelValues(k.backend, k.agent, k.decision, strconv.Itoa(k.status)))
	}
	c.(prometheus.Counter).Inc()
	o := m.observers(ev.Backend)
	o.total.Observe(ev.TotalMillis / 1000)
	if ev.UpstreamMillis > 0 {
		o.upstream.Observe(ev.UpstreamMillis / 1000)
	}
	if ev.Redactions > 0 {
		o.redactions.Add(float64(ev.Redactions))
	}
}

// http2Error counts an HTTP/2 protocol error (http.HTTP2Config.CountError).
// These streams never reach the pipeline, and the HTTP/2 server says nothing
// of the connection they came on, so they are counted rather than audited.
func (m *Metrics) http2Error(errType string) {
	if m == nil {
		return
	}
	m.h2errs.WithLabelValues(errType).Inc()
}

func (m *Metrics) observers(backend string) *backendObservers {
	if v, ok := m.lats.Load(backend); ok {
		return v.(*backendObservers)
	}
	o := &backendObservers{
		total:      m.total.WithLabelValues(backend),
		upstream:   m.upstream.WithLabelValues(backend),
		redactions: m.redactions.WithLabelValues(backend),
	}
	v, _ := m.lats.LoadOrStore(backend, o)
	return v.(*backendObservers)
}

// staleRefusal counts a request refused for a stale view.
func (m *Metrics) staleRefusal() {
	if m != nil {
		m.stale.Inc()
	}
}

// rateLimited counts a 429 by the kind of limit.
func (m *Metrics) rateLimited(kind string) {
	if m == nil || kind == "" {
		return
	}
	m.limited.WithLabelValues(kind).Inc()
}

// forget drops the series of backends and agents that no longer exist, so
// removed names do not stay in every scrape.
func (m *Metrics) forget(st *state.State) {
	if m == nil || st == nil {
		return
	}
	m.reqs.Range(func(k, _ any) bool {
		l := k.(requestLabels)
		if l.backend != "" && st.Backend(l.backend) == nil || l.agent != "" && st.Agent(l.agent) == nil {
			m.requests.DeleteLabelValues(l.backend, l.agent, l.decision, strconv.Itoa(l.status))
			m.reqs.Delete(k)
		}
		return true
	})
	m.lats.Range(func(k, _ any) bool {
		if b := k.(string); b != "" && st.Backend(b) == nil {
			m.total.DeleteLabelValues(b)
			m.upstream.DeleteLabelValues(b)
			m.redactions.DeleteLabelValues(b)
			m.lats.Delete(k)
		}
		return true
	})
}

// Handler serves the metrics in the Prometheus text and OpenMetrics
// formats; scrape errors go to logger (nil discards them).
func (m *Metrics) Handler(logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}
