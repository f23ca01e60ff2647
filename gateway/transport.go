package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agw-dev/agw/store"
)

// defaultUpstreamTimeout bounds the wait for an upstream's response headers
// when the backend sets no Timeout. Streams may run longer: only the wait
// for headers is bounded.
const defaultUpstreamTimeout = 60 * time.Second

// upstream is everything the request path needs to forward to one backend,
// built once per published route: the route itself (configuration and
// credential version captured together), the prepared injection and the
// backend's connection pool.
type upstream struct {
	route  *route
	inj    *injection
	scrub  *scrubber
	target *url.URL // explicit upstream; nil: the requested host on :443
	pool   *pool
	err    string // configuration error answered as 502 (never holds a secret)
}

// pool is one backend's upstream HTTP transport (its keep-alive
// connections). It is shared by successive routes of the backend as long as
// the settings it was built from are unchanged, so a credential rotation
// keeps the warm connections.
//
// It holds two transports to the same backend. The protocol upstream follows
// the agent's: a request that came over HTTP/2 (gRPC among them) goes out over
// HTTP/2 when the backend offers it, so interception never downgrades it; a
// request that came over HTTP/1.1 goes out over a keep-alive HTTP/1.1 pool,
// as nginx does, which serves such agents about 1.6 times the requests per
// second of multiplexing them all onto one HTTP/2 connection
// (gateway/bench/loadtest.sh).
type pool struct {
	key       poolKey
	transport *http.Transport // HTTP/2 when offered, else HTTP/1.1
	h1        *http.Transport // HTTP/1.1 only
	// rt, when set, replaces both: upstreams.roundTripper in benchmarks, or
	// the oauth2 wrapper around a backend's pool.
	rt http.RoundTripper
}

// RoundTrip sends req over the transport that matches the agent's protocol.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	if p.rt != nil {
		return p.rt.RoundTrip(req)
	}
	if ex := exchangeOf(req.Context()); ex != nil && !ex.agentH2 && p.h1 != nil {
		return p.h1.RoundTrip(req)
	}
	return p.transport.RoundTrip(req)
}

// closeIdle closes both transports' idle connections.
func (p *pool) closeIdle() {
	p.transport.CloseIdleConnections()
	if p.h1 != nil {
		p.h1.CloseIdleConnections()
	}
}

type poolKey struct {
	updatedAt      time.Time
	upstream       string
	upstreamCA     string
	allowPlainHTTP bool
	timeout        time.Duration
}

func poolKeyOf(b *store.Backend) poolKey {
	return poolKey{b.UpdatedAt, b.Upstream, b.UpstreamCA, b.AllowPlainHTTP, b.Timeout.Std()}
}

// upstreams caches an upstream per backend name.
type upstreams struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// roundTripper, when set, replaces every backend's transport: the
	// overhead benchmark uses it to take the network out of the measure.
	roundTripper http.RoundTripper

	mu sync.Mutex
	m  sync.Map // backend name → *upstream
}

// get returns the upstream for a route, building it when the route was
// published since the last call. The old pool's idle connections are
// closed when its settings changed; requests still using it finish.
func (us *upstreams) get(r *route) *upstream {
	name := r.backend.Name
	if v, ok := us.m.Load(name); ok && v.(*upstream).route == r {
		return v.(*upstream)
	}
	us.mu.Lock()
	defer us.mu.Unlock()
	var old *upstream
	if v, ok := us.m.Load(name); ok {
		old = v.(*upstream)
		if old.route == r {
			return old
		}
	}
	u := &upstream{route: r}
	b := &r.backend
	u.inj = newInjection(b, r.secret.Reveal())
	u.scrub = newScrubber(b, r.secret.Reveal())
	key := poolKeyOf(b)
	if b.Upstream != "" {
		t, err := url.Parse(b.Upstream)
		switch {
		case err != nil || t.Host == "":
			u.err = "backend " + b.Name + " has an invalid upstream URL"
		case t.Scheme == "http" && !b.AllowPlainHTTP:
			u.err = "backend " + b.Name + " has a plain http:// upstream but allow_plain_http is not set"
		case t.Scheme != "http" && t.Scheme != "https":
			u.err = "backend " + b.Name + " upstream scheme must be https"
		}
		u.target = t
	}
	switch {
	case old != nil && old.pool != nil && old.pool.key == key:
		u.pool = old.pool
	default:
		p, err := us.newPool(b, key)
		if err != nil {
			u.err = err.Error()
		}
		u.pool = p
		if old != nil && old.pool != nil {
			old.pool.closeIdle()
		}
	}
	us.m.Store(name, u)
	return u
}

func (us *upstreams) newPool(b *store.Backend, key poolKey) (*pool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	var cfgErr error
	if strings.TrimSpace(b.UpstreamCA) != "" && !roots.AppendCertsFromPEM([]byte(b.UpstreamCA)) {
		cfgErr = fmt.Errorf("backend %s: upstream CA holds no PEM certificate", b.Name)
	}
	timeout := b.Timeout.Std()
	if timeout <= 0 {
		timeout = defaultUpstreamTimeout
	}
	dial := us.dial
	if dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	tr := &http.Transport{
		// Never http.ProxyFromEnvironment: a proxy variable in the daemon's
		// environment must not divert credentialed requests.
		Proxy:       nil,
		DialContext: dial,
		TLSClientConfig: &tls.Config{
			RootCAs:    roots,
			MinVersion: tls.VersionTLS12,
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		// Forward the agent's Accept-Encoding as is and the body as it comes.
		DisableCompression: true,
	}
	// Clone copies the TLS config after it was given "h2" in its ALPN list;
	// the HTTP/1.1 pool must offer only http/1.1.
	h1 := tr.Clone()
	h1.ForceAttemptHTTP2 = false
	h1.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	p := &pool{key: key, transport: tr, h1: h1}
	if us.roundTripper != nil {
		p.rt = us.roundTripper
	}
	return p, cfgErr
}

// closeAll closes every pool's idle connections (shutdown).
func (us *upstreams) closeAll() {
	us.m.Range(func(_, v any) bool {
		if p := v.(*upstream).pool; p != nil {
			p.closeIdle()
		}
		return true
	})
}

// errUpstreamConfig marks a backend whose settings prevent forwarding.
var errUpstreamConfig = errors.New("upstream misconfigured")
