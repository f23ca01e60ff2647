// Package gateway is the request pipeline's spine: one ServeHTTP that
// routes, identifies, authorizes, limits, swaps the credential, forwards,
// scrubs and audits each request, calling the stages in that order.
package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/dns"
	"github.com/agw-dev/agw/gateway/auth"
	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/front"
	"github.com/agw-dev/agw/gateway/front/tunnel"
	"github.com/agw-dev/agw/gateway/limit"
	"github.com/agw-dev/agw/gateway/policy"
	"github.com/agw-dev/agw/gateway/scrub"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// Config is what the daemon gives the request pipeline.
type Config struct {
	State *state.State
	CA    *crypto.CA
	// Dial reaches real backend addresses through the upstream resolver
	// (dns.Resolver.DialContext); nil uses a plain net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Audit hands a record to the batch writer; it may block briefly under
	// back-pressure and never drops.
	Audit  func(store.AuditEvent)
	Logger *slog.Logger
	Now    func() time.Time // nil → time.Now
	// IdP verifies JWTs presented by agents; nil refuses them.
	IdP auth.IdPVerifier
	// Limiter decides rate limits, concurrency caps and the auth-failure
	// throttle; nil uses in-process buckets.
	Limiter limit.Limiter
	// Metrics counts requests; nil counts nothing.
	Metrics *Metrics
	// Unhealthy, when set, says why requests cannot be served safely now
	// (the audit trail or the storage under it is failing), or "": the
	// gateway then refuses with 503 rather than serve unrecorded.
	Unhealthy func() string
	// MaxConns and MaxConnsPerClient cap open agent connections (see
	// front.Config); 0 takes the defaults.
	MaxConns, MaxConnsPerClient int
	// MaxStaleness, when positive, is how long the view may go without the
	// store's change feed confirming it current before requests are
	// refused (503 agw_unavailable): a revoked token must never keep
	// working because the feed stopped.
	MaxStaleness time.Duration
}

// Gateway is the credential-swapping request pipeline: route → identify →
// authorize → limit → swap → forward → scrub → audit, one ServeHTTP, served
// behind the TLS front.
type Gateway struct {
	state   *state.State
	front   *front.Server
	ident   *auth.Identifier
	limiter limit.Limiter
	ups     upstreams
	audit   func(store.AuditEvent)
	logger  *slog.Logger
	now     func() time.Time
	idp     auth.IdPVerifier
	rp      *httputil.ReverseProxy
	bufs    bufferPool
	oauth   oauth2Sources // client-credentials tokens of oauth2 backends
	metrics *Metrics
	live    liveSet // allowed exchanges being forwarded, for revocation
	sampler *sampler

	maxStale  time.Duration
	unhealthy func() string

	stats struct {
		requests, allowed, denied, upstreamErrs atomic.Uint64
	}
}

// New returns the pipeline for cfg.
func New(cfg Config) *Gateway {
	p := &Gateway{
		state:   cfg.State,
		audit:   cfg.Audit,
		logger:  cfg.Logger,
		now:     cfg.Now,
		idp:     cfg.IdP,
		limiter: cfg.Limiter,
		metrics: cfg.Metrics,

		maxStale:  cfg.MaxStaleness,
		unhealthy: cfg.Unhealthy,
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.audit == nil {
		p.audit = func(store.AuditEvent) {}
	}
	p.sampler = &sampler{emit: p.audit, now: p.now}
	p.audit = p.sampler.record
	if p.limiter == nil {
		p.limiter = limit.NewLocal()
	}
	p.ident = auth.New(auth.Config{State: p.state, IdP: p.idp, Throttle: limit.NewAuthThrottle(p.limiter)})
	p.front = front.New(front.Config{
		CA:      cfg.CA,
		Hosts:   p.state,
		Handler: p,
		Record: func(ev store.AuditEvent) {
			if ev.Kind == store.KindRequest {
				p.metrics.observe(&ev)
			}
			p.audit(ev)
		},
		HTTP2Error: p.metrics.http2Error,
		Logger:     p.logger,
		ErrorLog:   log.New(&logWriter{logger: p.logger}, "", 0),
		Now:        p.now,

		MaxConns:          cfg.MaxConns,
		MaxConnsPerClient: cfg.MaxConnsPerClient,
	})
	p.ups.dial = cfg.Dial
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: upstreamTransport{},
		// FlushInterval 0: ReverseProxy flushes every write of an event
		// stream or of a body of unknown length (chunked streams), and lets an
		// answer of known length go out through the server's buffer (one
		// write for a small body) without arming its flush timer.
		FlushInterval:  0,
		ErrorHandler:   p.upstreamError,
		ModifyResponse: p.modifyResponse,
		BufferPool:     &p.bufs,
		ErrorLog:       log.New(&logWriter{logger: p.logger}, "", 0),
	}
	return p
}

// Conns returns the open agent connections and how many were refused at a
// connection cap since start.
func (p *Gateway) Conns() (open int64, refused uint64) {
	fs := p.front.Stats()
	return fs.OpenConns, fs.ConnsRefused
}

// Stats returns the request counters since start.
func (p *Gateway) Stats() admin.Traffic {
	fs := p.front.Stats()
	return admin.Traffic{
		Requests:     p.stats.requests.Load() + fs.Unrouted,
		Allowed:      p.stats.allowed.Load(),
		Denied:       p.stats.denied.Load() + fs.Unrouted,
		TLSRefused:   fs.TLSRefused,
		UpstreamErrs: p.stats.upstreamErrs.Load(),
	}
}

// TLSConfig is the server TLS configuration of the HTTPS listener.
func (p *Gateway) TLSConfig() *tls.Config { return p.front.TLSConfig() }

// Serve serves the gateway on ln (TCP; TLS is completed here) until ctx is
// done, then drains in-flight requests (front.DrainTimeout) and closes the
// backend connection pools.
func (p *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	go p.sweep(ctx)
	go p.watchRevocations(ctx)
	sctx, stopSampler := context.WithCancel(context.WithoutCancel(ctx))
	sampled := make(chan struct{})
	go func() { p.sampler.run(sctx); close(sampled) }()
	err := p.front.Serve(ctx, ln)
	stopSampler()
	<-sampled // the last summaries, after every request has finished
	p.ups.closeAll()
	return err
}

// ServeProxy runs the proxy listener (HTTP CONNECT and SOCKS5) on ln
// until ctx is done: tunnels to registered hosts are served by this same
// pipeline, tunnels to hosts listed for pass-through are spliced through
// unterminated, and the rest are refused. Clients outside allow are
// turned away.
func (p *Gateway) ServeProxy(ctx context.Context, ln net.Listener, allow tunnel.Allow) error {
	dial := p.ups.dial
	return p.front.ServeProxy(ctx, ln, front.ProxyConfig{
		Allow:         allow,
		PassesThrough: p.state.PassesThrough,
		Dial:          dial,
		Authenticate: func(ctx context.Context, cred string) (string, error) {
			ident, d := p.ident.AuthenticateTunnel(ctx, cred, p.now())
			if d != nil {
				return "", errors.New(d.Message())
			}
			return ident.Agent.Name, nil
		},
	})
}

// sweep drops, once a minute until ctx is done, the limiter state that has
// refilled and the metric series of removed backends and agents.
func (p *Gateway) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if l, ok := p.limiter.(*limit.Local); ok {
				l.Sweep(p.now())
			}
			p.metrics.forget(p.state)
		}
	}
}

// exchange is one request's state through the pipeline, allocated once.
type exchange struct {
	rec   recorder
	body  countingBody
	ev    store.AuditEvent
	up    *upstream
	ident auth.Identity
	host  string
	start time.Time

	upStart, upEnd time.Time
	upStatus       int
	adm            limit.Admission // in-flight slot held until finish
	norm           string          // the normalised path policy decided on
	proto          int             // the request's HTTP major version

	cancel     context.CancelCauseFunc // ends the forwarding (revocation)
	revokeOnce sync.Once
	revoked    atomic.Pointer[string] // why the exchange was ended mid-flight
	ws         *scrub.WebSocket       // the scrubbed backend connection after a 101
}

type exchangeKey struct{}

func exchangeOf(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// ServeHTTP runs the pipeline for one request and records exactly one
// audit event for it, however it ends.
func (p *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	front.MarkServed(r.Context())
	p.stats.requests.Add(1)
	ex := &exchange{start: p.now()}
	ex.rec.ResponseWriter = w
	ex.ev = store.AuditEvent{
		Time:      ex.start,
		Kind:      store.KindRequest,
		RequestID: front.NewRequestID(),
		Client:    r.RemoteAddr,
		Method:    r.Method,
	}
	if front.TunnelOf(r.Context()) != nil {
		ex.ev.Via = store.ViaProxy
	}
	defer func() {
		if v := recover(); v != nil {
			// http.ErrAbortHandler from a stream cut mid-way: record, then
			// let the server handle the panic as before.
			if ex.ev.Reason == "" {
				ex.ev.Reason = "response stream aborted"
			}
			p.finish(ex)
			panic(v)
		}
		p.finish(ex)
	}()
	w.Header().Set(deny.RequestIDHeader, ex.ev.RequestID)
	ex.proto = r.ProtoMajor
	if r.Body != nil && r.Body != http.NoBody {
		ex.body.rc = r.Body
		r.Body = &ex.body
	}

	if d := p.serve(ex, r); d != nil {
		p.refuse(ex, d)
	}
}

// serve routes, identifies, authorizes and forwards; a non-nil denial is
// the gateway's answer instead.
func (p *Gateway) serve(ex *exchange, r *http.Request) *deny.Denial {
	// Route: the Host the agent asks for must be the name it opened TLS
	// for, so a connection opened for one backend cannot carry requests
	// for another (and the leaf it trusted matches the backend served).
	sni := ""
	if r.TLS != nil {
		sni = store.RequestHost(r.TLS.ServerName)
	}
	host := store.RequestHost(r.Host)
	ex.host = host
	ex.ev.Host = store.PrintableName(host)
	raw := policy.RequestPath(r)
	ex.ev.Path = store.Printable(scrub.Path(raw, crypto.TokenPrefix))
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 && front.ConflictingFraming(r.Context()) {
		ex.rec.Header().Set("Connection", "close")
		return deny.New(http.StatusBadRequest, deny.BadRequest,
			"the request has both Content-Length and Transfer-Encoding; send one framing only (the connection is closed)")
	}
	if sni == "" || host != sni {
		return deny.New(http.StatusMisdirectedRequest, deny.Misdirected,
			fmt.Sprintf("host %s does not match the TLS server name %s; open a connection per host", store.PrintableName(host), store.PrintableName(sni)))
	}
	if r.URL.Host != "" && store.RequestHost(r.URL.Host) != sni {
		return deny.New(http.StatusMisdirectedRequest, deny.Misdirected, "the absolute request target names another host")
	}
	rt := p.state.RouteHost(host)
	if rt == nil {
		return deny.New(http.StatusMisdirectedRequest, deny.Misdirected, "no backend is registered for host "+store.PrintableName(host))
	}
	b := &rt.Backend
	ex.ev.Backend = b.Name
	ex.ev.CredentialVersion = b.CredentialVersion
	if d := p.stale(ex.start); d != nil {
		return d
	}

	// Identify (failed attempts are throttled before any token lookup, so
	// guessing stays slow).
	var ident auth.Identity
	var d *deny.Denial
	if tun := front.TunnelOf(r.Context()); tun != nil && tun.Credential() != "" {
		ident, d = p.ident.IdentifyTunneled(r.Context(), r, b, ex.start, tun.Credential())
	} else {
		ident, d = p.ident.Identify(r.Context(), r, b, ex.start)
	}
	ex.ident = ident
	ex.ev.TokenID = ident.TokenID
	ex.ev.AuthMethod = ident.AuthMethod
	ex.ev.IdP, ex.ev.Subject, ex.ev.JTI = ident.IdP, ident.Subject, ident.JTI
	if ident.Agent != nil {
		ex.ev.Agent = ident.Agent.Name
	}
	if d != nil {
		if d.Limit != "" {
			p.metrics.rateLimited(d.Limit)
		}
		if d.Status == http.StatusUnauthorized && b.Inject == store.InjectBasic {
			// Git and other Basic clients send credentials (from a helper)
			// only when the challenge offers Basic.
			ex.rec.Header().Add("WWW-Authenticate", `Basic realm="agw"`)
		}
		return d
	}

	// Authorize (policy.Decide: the same step agw policy explain runs).
	if c := ident.Credential; c != "" && strings.Contains(raw, c) {
		return deny.New(http.StatusBadRequest, deny.BadRequest, "the request path contains the agent credential")
	}
	g := p.state.Grant(ident.Agent.Name, b.Name)
	norm, d := policy.Decide(g, ident.Agent.Name, b.Name, r.Method, raw)
	if d != nil {
		return d
	}
	if c := ident.Credential; c != "" && strings.Contains(norm, c) {
		return deny.New(http.StatusBadRequest, deny.BadRequest, "the request path contains the agent credential")
	}
	if why := policy.CheckOverrideParams(r); why != "" {
		return deny.New(http.StatusBadRequest, deny.BadRequest, why)
	}
	if limit.Limited(ident.Agent, g, b) {
		adm, d := limit.Admit(r.Context(), p.limiter, ident.Agent, g, b, ex.start)
		if d != nil {
			p.metrics.rateLimited(d.Limit)
			return d
		}
		ex.adm = adm
	}

	// Swap and forward.
	up := p.ups.get(rt)
	if up.err != "" {
		p.stats.upstreamErrs.Add(1)
		return deny.New(http.StatusBadGateway, deny.Upstream, up.err)
	}
	if b.Inject == store.InjectOAuth2 {
		if up, d = p.oauth2Upstream(r, rt, up); d != nil {
			p.stats.upstreamErrs.Add(1)
			return d
		}
	}
	ex.up = up
	ex.rec.secrets = up.secrets
	ex.ev.Decision = store.Allow
	p.stats.allowed.Add(1)
	p.state.MarkSeen(ident.Agent.Name, ex.start)

	ex.norm = norm
	ctx, cancel := context.WithCancelCause(context.WithValue(r.Context(), exchangeKey{}, ex))
	ex.cancel = cancel
	p.live.add(ex)
	defer func() { p.live.remove(ex); cancel(nil) }()
	if why := p.stillAllowed(ex, ex.start); why != "" {
		// A change applied between the checks above and registration.
		return deny.Policy(why)
	}
	p.rp.ServeHTTP(&ex.rec, r.WithContext(ctx))
	if ex.rec.out != nil {
		// The body ended: the scrubber writes what it held (a partial
		// match long enough to matter as a marker). A body cut mid-way
		// panics out of ServeHTTP instead and is aborted in finish.
		_ = ex.rec.out.Close()
	}
	// Trailers are copied into the header map after the body; scrub them
	// before the server sends them.
	ex.ev.Redactions += ex.up.secrets.Header(ex.rec.Header())
	return nil
}

// stale refuses every request while the view cannot be proved current, or
// while the request could not be recorded.
func (p *Gateway) stale(now time.Time) *deny.Denial {
	if p.unhealthy != nil {
		if why := p.unhealthy(); why != "" {
			d := deny.New(http.StatusServiceUnavailable, deny.Unavailable, why+"; the gateway refuses rather than serve requests it cannot record; retry shortly")
			d.RetryAfter = 5
			return d
		}
	}
	if p.maxStale <= 0 {
		return nil
	}
	age := now.Sub(p.state.ConfirmedAt())
	if age <= p.maxStale {
		return nil
	}
	p.metrics.staleRefusal()
	d := deny.New(http.StatusServiceUnavailable, deny.Unavailable, fmt.Sprintf(
		"the gateway cannot confirm its configuration is current (last confirmed %s ago, limit %s), so it refuses rather than risk honouring a revoked token; retry shortly",
		age.Truncate(time.Millisecond), p.maxStale))
	d.RetryAfter = 1
	return d
}

// Stale reports why the gateway refuses requests for staleness, or "".
func (p *Gateway) Stale() string {
	if d := p.stale(p.now()); d != nil {
		return d.Reason
	}
	return ""
}

// refuse answers a gateway decision and counts it.
func (p *Gateway) refuse(ex *exchange, d *deny.Denial) {
	if d.Status != http.StatusBadGateway && d.Status != http.StatusGatewayTimeout {
		p.stats.denied.Add(1)
		ex.ev.Decision = store.Deny
	} else {
		ex.ev.Decision = store.Allow
	}
	ex.ev.Reason = d.Reason
	if d.RetryAfter > 0 {
		ex.rec.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
	}
	if ex.body.rc != nil && !ex.body.eof && ex.proto == 1 {
		// The refused request's body is still coming: rather than let the
		// server drain a body trickled in forever, close the connection
		// after the answer, and give the body at most refusedBodyWait.
		ex.rec.Header().Set("Connection", "close")
		_ = http.NewResponseController(ex.rec.ResponseWriter).SetReadDeadline(p.now().Add(refusedBodyWait))
	}
	deny.Write(&ex.rec, d.Status, d.Type, d.Message(), ex.ev.RequestID)
}

// refusedBodyWait bounds how long the connection of a refused HTTP/1.1
// request keeps reading the body still arriving. (HTTP/2 streams of
// refused requests are reset by the server once the answer is sent.)
const refusedBodyWait = 2 * time.Second

// finish completes and hands over the audit record.
func (p *Gateway) finish(ex *exchange) {
	ex.adm.Release()
	end := p.now()
	ev := &ex.ev
	switch {
	case ex.rec.status != 0:
		ev.Status = ex.rec.status
	case ex.upStatus != 0:
		ev.Status = ex.upStatus // hijacked (101)
	default:
		ev.Status = http.StatusOK
	}
	if ex.rec.out != nil {
		// Stops the hold timer; what a cut body held is never released.
		ex.rec.out.Abort()
		ev.Redactions += ex.rec.out.Redactions()
	}
	if ex.ws != nil {
		ev.Redactions += ex.ws.Redactions()
	}
	ev.Redactions += ex.rec.early
	ev.BytesIn = ex.body.n + ex.rec.upIn.Load()
	ev.BytesOut = ex.rec.n + ex.rec.upOut.Load()
	ev.TotalMillis = millis(end.Sub(ex.start))
	if !ex.upEnd.IsZero() {
		ev.UpstreamMillis = millis(ex.upEnd.Sub(ex.upStart))
	}
	if why := ex.revokedReason(); why != "" {
		ev.Reason = "closed mid-flight: " + why
	}
	if c := ex.ident.Credential; c != "" && strings.Contains(ev.Path, c) {
		ev.Path = "[path withheld: it contained the agent credential]"
	}
	p.metrics.observe(ev)
	p.audit(*ev)
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rewrite builds the upstream request. httputil.ReverseProxy has already
// removed the hop-by-hop headers, those named in Connection included, and
// the agent's X-Forwarded-For/Host/Proto and Forwarded; the credential is
// injected last so nothing the agent sent can remove or shadow it.
func (p *Gateway) rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeOf(pr.In.Context())
	out := pr.Out
	b := &ex.up.route.Backend
	auth.StripAgentCredential(out.Header, out.URL, b, ex.ident.Credential)
	stripForwarding(out.Header)
	policy.StripOverrideHeaders(out.Header)
	ex.up.inj.Apply(out.Header, out.URL)
	if ex.up.scrubBodies {
		scrub.Request(out.Header)
	}
	if t := ex.up.target; t != nil {
		out.URL.Scheme = t.Scheme
		out.URL.Host = t.Host
		if base := strings.TrimSuffix(t.Path, "/"); base != "" {
			out.URL.Path = base + out.URL.Path
			if out.URL.RawPath != "" {
				out.URL.RawPath = strings.TrimSuffix(t.EscapedPath(), "/") + out.URL.RawPath
			}
		}
	} else {
		out.URL.Scheme = "https"
		out.URL.Host = net.JoinHostPort(ex.host, "443")
	}
	// The backend is the host the agent named: keep it as Host even when
	// the connection goes to an explicit upstream address.
	out.Host = ex.host
	ex.upStart = p.now()
}

func (p *Gateway) modifyResponse(res *http.Response) error {
	ex := exchangeOf(res.Request.Context())
	ex.upEnd = p.now()
	ex.upStatus = res.StatusCode
	ex.ev.Redactions += ex.up.secrets.Header(res.Header)
	res.Header.Del(deny.RequestIDHeader)
	if !ex.up.scrubBodies {
		return nil
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		ws, err := ex.up.secrets.Upgrade(res)
		ex.ws = ws
		return err
	}
	length := res.ContentLength
	body, err := ex.up.secrets.Response(res, scrub.BodyConfig{Dst: agentWriter{&ex.rec}, Flush: ex.rec.flushAgent})
	if err != nil || body == nil {
		return err
	}
	ex.rec.out = body
	// Scrubbing may change the body's length, so it dropped the
	// Content-Length header (the agent gets the answer chunked or measured
	// by the server). ReverseProxy reads res.ContentLength only to choose
	// how to flush: keep it, so an answer the backend sent with a known
	// length is still written through the server's buffer instead of being
	// flushed write by write like a stream.
	if length >= 0 {
		res.ContentLength = length
	}
	return nil
}

// upstreamError answers a failed forward. The message never holds the
// credential: see scrub.Set.Error.
func (p *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeOf(r.Context())
	p.stats.upstreamErrs.Add(1)
	var secrets *scrub.Set
	if ex.up != nil {
		secrets = ex.up.secrets
	}
	status, typ := http.StatusBadGateway, deny.Upstream
	var msg string
	var ne net.Error
	var unread *scrub.UninspectableError
	var oauth *errOAuth2Refresh
	switch {
	case errors.As(err, &oauth):
		msg = oauth.msg
	case errors.As(err, &unread):
		msg = unread.Error()
	case errors.Is(err, scrub.ErrWebSocketExtension):
		msg = err.Error()
	case errors.Is(err, policy.ErrOverrideInBody):
		status, typ = http.StatusBadRequest, deny.BadRequest
		msg = "the multipart body has a method override field (_method); the gateway decides one method and forwards exactly that one, so the request was abandoned"
	case errors.Is(err, dns.ErrLoopback):
		msg = "resolution loops back to the gateway: the upstream resolvers answer " + ex.host + " with agw's own address; set an explicit upstream for the backend"
	case r.Context().Err() != nil:
		msg = "the client went away before the backend answered"
	case errors.As(err, &ne) && ne.Timeout():
		status, typ = http.StatusGatewayTimeout, deny.UpstreamTimeout
		msg = "the backend did not answer in time: " + secrets.Error(err)
	default:
		msg = "the backend could not be reached: " + secrets.Error(err)
	}
	ex.ev.Reason = msg
	p.logger.Warn("upstream error", "request_id", ex.ev.RequestID, "backend", ex.ev.Backend, "host", ex.ev.Host, "err", msg)
	deny.Write(w, status, typ, msg, ex.ev.RequestID)
}

// upstreamTransport sends each request through its backend's pool.
type upstreamTransport struct{}

func (upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchangeOf(req.Context())
	if ex == nil || ex.up == nil || ex.up.pool == nil {
		return nil, errUpstreamConfig
	}
	return ex.up.pool.rt.RoundTrip(req)
}

// stripForwarding removes forwarding headers the agent may have set
// (ReverseProxy removes only Forwarded and X-Forwarded-For/Host/Proto), and
// h2c upgrade remnants. The gateway adds no X-Forwarded-For: the backend is
// a third-party API that has no use for the agent's internal address, and
// agents reached it directly before the gateway existed.
func stripForwarding(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "X-Forwarded-") {
			delete(h, k)
		}
	}
	delete(h, "Forwarded")
	delete(h, "X-Real-Ip")
	delete(h, "Http2-Settings")
	// Only WebSocket upgrades pass: "Upgrade: h2c" over TLS is meaningless
	// and other protocols would tunnel past the gateway unseen.
	if up := h.Get("Upgrade"); up != "" && !strings.EqualFold(up, "websocket") {
		delete(h, "Upgrade")
		delete(h, "Connection")
	}
}

// recorder wraps the agent's ResponseWriter to count bytes and keep the
// status for the audit record. Unwrap keeps http.ResponseController (used
// by ReverseProxy to flush and to hijack for WebSockets) working.
type recorder struct {
	http.ResponseWriter
	status  int
	n       int64
	secrets *scrub.Set
	// out scrubs the backend's body on its way here, once it answered.
	out *scrub.Body
	// early counts the redactions in 1xx headers.
	early int
	// upIn and upOut count the bytes each way after a protocol upgrade
	// (WebSocket), when the connection is no longer HTTP. Atomic: the two
	// copy goroutines may still be finishing as the record is written.
	upIn, upOut atomic.Int64
	up          atomic.Pointer[countingConn]
}

func (w *recorder) WriteHeader(code int) {
	if code < 200 {
		// 1xx (103 Early Hints) headers go out as they are: scrub them too.
		w.early += w.secrets.Header(w.Header())
	} else if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.out != nil {
		return w.out.Write(b)
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Flush flushes the agent connection. ReverseProxy flushes after every
// write of a stream, so this avoids NewResponseController's allocation on
// that path.
func (w *recorder) Flush() {
	if w.out != nil {
		_ = w.out.Flush()
		return
	}
	switch f := w.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		_ = f.FlushError()
	case http.Flusher:
		f.Flush()
	default:
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// FlushError is what http.ResponseController calls first.
func (w *recorder) FlushError() error {
	if w.out != nil {
		return w.out.Flush()
	}
	return w.flushAgent()
}

// flushAgent flushes the agent connection itself (the scrubbed body's
// Flush ends here, under the scrubber's lock).
func (w *recorder) flushAgent() error {
	if f, ok := w.ResponseWriter.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the agent's connection to ReverseProxy for an upgraded
// protocol, wrapped so the bytes each way still reach the audit record.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	cc := &countingConn{Conn: conn, in: &w.upIn, out: &w.upOut}
	w.up.Store(cc)
	return cc, brw, nil
}

// agentWriter is where a scrubbed body goes: the agent connection,
// counted for the audit record.
type agentWriter struct{ w *recorder }

func (a agentWriter) Write(b []byte) (int, error) {
	n, err := a.w.ResponseWriter.Write(b)
	a.w.n += int64(n)
	return n, err
}

// upgraded is the agent's connection after a protocol upgrade, or nil.
func (w *recorder) upgraded() *countingConn { return w.up.Load() }

// countingConn counts the bytes read from and written to an upgraded
// agent connection.
type countingConn struct {
	net.Conn
	in, out *atomic.Int64
	wmu     sync.Mutex // one writer at a time: the copy, or the close frame
	closed  bool       // guarded by wmu: a close frame was sent
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// closeWith1008 sends the agent a WebSocket close frame (policy violation)
// between two writes of the backend's data, then closes the connection.
func (c *countingConn) closeWith1008(reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	n, _ := c.Conn.Write(wsClose1008(reason))
	c.out.Add(int64(n))
	_ = c.Conn.Close()
}

// countingBody counts the request body bytes read, and keeps answering
// io.EOF once the body has ended.
//
// The second half matters for HTTP/1.1 upstreams. Having sent Content-Length
// bytes, the transport reads the body once more to check it was not longer
// than declared. By then the upstream may have answered and the proxy written
// the response headers, and writing them makes net/http's server close the
// agent's request body; that late read would then fail with "invalid Read on
// closed Body", and the transport would tear down the upstream connection
// with the response still streaming (golang/go#40747).
type countingBody struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	n   int64
	eof bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// bufferPool recycles ReverseProxy's 32 KiB copy buffers through a bounded
// free list (a channel: unlike sync.Pool it does not allocate to box the
// slice on Put).
type bufferPool struct {
	once sync.Once
	free chan []byte
}

func (bp *bufferPool) init() { bp.free = make(chan []byte, 256) }

func (bp *bufferPool) Get() []byte {
	bp.once.Do(bp.init)
	select {
	case b := <-bp.free:
		return b
	default:
		return make([]byte, 32<<10)
	}
}

func (bp *bufferPool) Put(b []byte) {
	bp.once.Do(bp.init)
	if cap(b) < 32<<10 {
		return
	}
	select {
	case bp.free <- b[:32<<10]:
	default:
	}
}

// logWriter sends net/http's internal log lines to slog at debug level,
// with URL queries cut out.
type logWriter struct{ logger *slog.Logger }

func (lw *logWriter) Write(b []byte) (int, error) {
	lw.logger.Debug(scrub.URLs(strings.TrimSpace(string(b))))
	return len(b), nil
}
