package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/inject"
	"github.com/agw-dev/agw/gateway/inject/clientcreds"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// refusedAgain is how long after a 401 made the gateway fetch a token a 401
// to that new token is passed to the agent without another fetch: a backend
// that refuses every token (a client without the permission, say) costs
// one token fetch per this period, not one per request.
const refusedAgain = 30 * time.Second

// maxReplayBody is the largest request body the gateway holds in memory so
// that a request to an oauth2 backend can be sent again, with a fresh
// token, after the backend answered 401. Only bodies whose Content-Length
// is known and at most this size are held (and so reach the backend only
// once read whole); larger or chunked bodies stream as for every other
// backend, and their 401 goes back to the agent, with the token dropped so
// the agent's retry gets a new one.
const maxReplayBody = 1 << 20

// oauth2Sources keeps one client-credentials token source per oauth2
// backend. A source is keyed by the backend's name, credential version and
// UpdatedAt, so a rotated client secret or a changed token URL, client id,
// scope or parameter gets a new source (and a new token) on the next
// request, and the old one is dropped. The zero value is ready to use.
type oauth2Sources struct {
	m       sync.Map      // backend name → *oauth2Source
	mu      sync.Mutex    // serialises building and dropping sources
	retired atomic.Uint64 // fetches made by dropped sources

	failures, refused, retried atomic.Uint64
}

type oauth2Key struct {
	name    string
	version int
	updated int64 // UpdatedAt, unix nanoseconds
}

// oauth2Source is one backend's token source and the HTTP transport it
// reaches the token endpoint with.
type oauth2Source struct {
	key oauth2Key
	src *clientcreds.Source
	tr  *http.Transport
	// last is the upstream prepared for the latest token, so the request
	// path allocates only when the token changes.
	last atomic.Pointer[oauth2Upstream]

	mu        sync.Mutex
	renewed   string    // the last token fetched because the backend refused its predecessor
	renewedAt time.Time // when
}

type oauth2Upstream struct {
	base *upstream // the route's upstream
	tok  string
	up   *upstream // base with the token's inject.Injection and the retrying transport
}

// oauth2Source returns the token source for rt, creating it when rt's backend is
// new, rotated or reconfigured.
func (p *Gateway) oauth2Source(rt *state.Route) *oauth2Source {
	srcs := &p.oauth
	b := &rt.Backend
	k := oauth2Key{b.Name, b.CredentialVersion, b.UpdatedAt.UnixNano()}
	if v, ok := srcs.m.Load(b.Name); ok && v.(*oauth2Source).key == k {
		return v.(*oauth2Source)
	}
	srcs.mu.Lock()
	defer srcs.mu.Unlock()
	if v, ok := srcs.m.Load(b.Name); ok && v.(*oauth2Source).key == k {
		return v.(*oauth2Source)
	}
	// Building is rare (once per backend change): drop every source whose
	// backend is gone or has changed since, this one's included.
	srcs.m.Range(func(name, v any) bool {
		s := v.(*oauth2Source)
		cur := p.state.Backend(name.(string))
		if cur == nil || name == b.Name || cur.Backend.CredentialVersion != s.key.version || cur.Backend.UpdatedAt.UnixNano() != s.key.updated {
			srcs.retired.Add(s.src.Fetches())
			s.tr.CloseIdleConnections()
			srcs.m.Delete(name)
		}
		return true
	})
	var cfg store.OAuth2
	if b.OAuth2 != nil {
		cfg = *b.OAuth2
	}
	tr := p.tokenTransport(b)
	s := &oauth2Source{
		key: k,
		tr:  tr,
		src: clientcreds.New(cfg, rt.Secret.Reveal(), clientcreds.Options{
			HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second},
			Now:        p.now,
			Logger:     p.logger,
		}),
	}
	srcs.m.Store(b.Name, s)
	return s
}

// tokenTransport is how the gateway reaches a backend's token endpoint:
// through the same dialer as the backend itself (the upstream resolvers,
// never agw's own DNS answers, which would send the client secret back
// into the gateway), with TLS verified against the system roots plus the
// backend's UpstreamCA (an internal token endpoint is usually signed by the
// same private CA as the internal API), and never through a proxy from the
// environment.
func (p *Gateway) tokenTransport(b *store.Backend) *http.Transport {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if strings.TrimSpace(b.UpstreamCA) != "" {
		roots.AppendCertsFromPEM([]byte(b.UpstreamCA))
	}
	dial := p.ups.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
}

// oauth2Upstream returns up prepared for one request to an oauth2 backend:
// the access token to inject, the token added to what is redacted from
// response headers, bodies and errors, and a transport that refreshes the token once when
// the backend refuses it. It also holds a small body in memory so that the
// refresh can resend it (see maxReplayBody). A token that cannot be
// obtained is a 502 that says so; the backend is not called without one.
func (p *Gateway) oauth2Upstream(r *http.Request, rt *state.Route, up *upstream) (*upstream, *deny.Denial) {
	s := p.oauth2Source(rt)
	tok, err := s.src.Token(r.Context())
	if err != nil {
		p.oauth.failures.Add(1)
		msg := "backend " + rt.Backend.Name + ": the gateway could not obtain an OAuth2 access token"
		if errors.Is(err, clientcreds.ErrTokenUnavailable) {
			msg += " (" + err.Error() + ")"
		}
		return nil, deny.New(http.StatusBadGateway, deny.Upstream, msg+"; the request was not sent")
	}
	if r.ContentLength > 0 && r.ContentLength <= maxReplayBody && r.Body != nil && r.GetBody == nil {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, deny.New(http.StatusBadRequest, deny.BadRequest, "the request body ended before its Content-Length")
		}
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	}
	return s.upstreamFor(p, up, tok), nil
}

// upstreamFor returns base carrying tok, reusing the last one built.
func (s *oauth2Source) upstreamFor(p *Gateway, base *upstream, tok string) *upstream {
	if l := s.last.Load(); l != nil && l.base == base && l.tok == tok {
		return l.up
	}
	cp := *base
	cp.inj = inject.New(&store.Backend{Inject: store.InjectBearer}, []byte(tok))
	// The access token, and the client secret, must not come back to the
	// agent in a reflected header, body or error. Compiled once per token
	// (the last one is reused).
	cp.secrets = base.secrets.With([]byte(tok))
	cp.scrubBodies = !base.route.Backend.NoScrub
	cp.pool = &pool{key: base.pool.key, transport: base.pool.transport,
		rt: &oauth2Transport{p: p, s: s, base: base, tok: tok}}
	s.last.Store(&oauth2Upstream{base: base, tok: tok, up: &cp})
	return &cp
}

// oauth2Transport sends a request with one token and, when the backend
// answers 401, drops that token, gets a fresh one and sends the request
// once more if its body can be replayed. Many requests refused with the
// same token cause one fetch (clientcreds.Source.Invalidate ignores a token
// already replaced), and a token fetched after a 401 and refused at once
// is not replaced again for refusedAgain.
type oauth2Transport struct {
	p    *Gateway
	s    *oauth2Source
	base *upstream
	tok  string
}

// errOAuth2Refresh is a backend's 401 to a token that could not be
// replaced; the agent gets a 502 saying so rather than the 401.
type errOAuth2Refresh struct{ msg string }

func (e *errOAuth2Refresh) Error() string { return e.msg }

var _ http.RoundTripper = (*oauth2Transport)(nil)

func (t *oauth2Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.pool.rt.RoundTrip(req)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	t.p.oauth.refused.Add(1)
	if !t.s.shouldRenew(t.tok, t.p.now()) {
		return res, nil
	}
	t.s.src.Invalidate(t.tok)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		return res, nil // the agent's retry gets a new token
	}
	tok, terr := t.s.src.Token(req.Context())
	if terr != nil {
		if req.Context().Err() != nil {
			return res, nil
		}
		t.p.oauth.failures.Add(1)
		discard(res)
		return nil, &errOAuth2Refresh{msg: "backend " + t.base.route.Backend.Name +
			" refused its OAuth2 access token and the gateway could not obtain a new one (" + terr.Error() + ")"}
	}
	if tok == t.tok {
		return res, nil
	}
	t.s.renewedFor(tok, t.p.now())
	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			return res, nil
		}
	}
	discard(res)
	up := t.s.upstreamFor(t.p, t.base, tok)
	if ex := exchangeOf(req.Context()); ex != nil {
		// From here the response is scrubbed of the new token.
		ex.up = up
		ex.rec.secrets = up.secrets
	}
	again := req.Clone(req.Context())
	again.Header = req.Header.Clone()
	up.inj.Apply(again.Header, again.URL)
	again.Body = body
	t.p.oauth.retried.Add(1)
	res, err = t.base.pool.rt.RoundTrip(again)
	if err == nil && res.StatusCode == http.StatusUnauthorized {
		t.p.oauth.refused.Add(1)
	}
	return res, err
}

// shouldRenew reports whether a 401 to tok is worth a new token: not when
// tok itself was fetched after a 401 less than refusedAgain ago.
func (s *oauth2Source) shouldRenew(tok string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return tok != s.renewed || now.Sub(s.renewedAt) >= refusedAgain
}

func (s *oauth2Source) renewedFor(tok string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok != s.renewed {
		s.renewed, s.renewedAt = tok, now
	}
}

// discard reads a little of a response being dropped, so its connection
// can be reused, and closes it.
func discard(res *http.Response) {
	_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
	_ = res.Body.Close()
}

// OAuth2Stats counts OAuth2 token activity since start, for metrics.
type OAuth2Stats struct {
	Fetches  uint64 // requests to token endpoints
	Failures uint64 // requests answered 502 for want of a token
	Refused  uint64 // upstream 401s to an injected token
	Retried  uint64 // requests sent again with a fresh token
}

// OAuth2Stats returns the OAuth2 token counters.
func (p *Gateway) OAuth2Stats() OAuth2Stats {
	srcs := &p.oauth
	srcs.mu.Lock()
	n := srcs.retired.Load()
	srcs.m.Range(func(_, v any) bool {
		n += v.(*oauth2Source).src.Fetches()
		return true
	})
	srcs.mu.Unlock()
	return OAuth2Stats{Fetches: n, Failures: srcs.failures.Load(), Refused: srcs.refused.Load(), Retried: srcs.retried.Load()}
}
