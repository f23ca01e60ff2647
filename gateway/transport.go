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

	"github.com/agw-dev/agw/gateway/inject"
	"github.com/agw-dev/agw/gateway/scrub"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// defaultUpstreamTimeout bounds the wait for an upstream's response headers
// when the backend sets no Timeout. Streams may run longer: only the wait
// for headers is bounded.
const defaultUpstreamTimeout = 60 * time.Second

// upstream is everything the request path needs to forward to one backend,
// built once per published route: the route itself (configuration and
// credential version captured together), the prepared injection, the
// compiled forms of the credential and the backend's connection pool.
type upstream struct {
	route *state.Route
	inj   *inject.Injection
	// secrets are the forms of the injected credential, redacted from
	// response headers, trailers and errors always, and from bodies and
	// WebSocket frames unless the backend has NoScrub.
	secrets     *scrub.Set
	scrubBodies bool
	target      *url.URL // explicit upstream; nil: the requested host on :443
	pool        *pool
	err         string // configuration error answered as 502 (never holds a secret)
}

// secretsOf compiles the forms of a backend's credential: the secret, and
// for Basic injection the user:secret pair that goes on the wire.
func secretsOf(b *store.Backend, secret []byte) *scrub.Set {
	if len(secret) == 0 {
		return nil
	}
	if b.Inject == store.InjectBasic {
		return scrub.New(secret, []byte(b.BasicUser+":"+string(secret)))
	}
	return scrub.New(secret)
}

// pool is one backend's upstream HTTP transport (its keep-alive
// connections). It is shared by successive routes of the backend as long as
// the settings it was built from are unchanged, so a credential rotation
// keeps the warm connections.
type pool struct {
	key       poolKey
	transport *http.Transport
	rt        http.RoundTripper // transport, or upstreams.roundTripper in benchmarks
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
func (us *upstreams) get(r *state.Route) *upstream {
	name := r.Backend.Name
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
	b := &r.Backend
	u.inj = inject.New(b, r.Secret.Reveal())
	u.secrets = secretsOf(b, r.Secret.Reveal())
	u.scrubBodies = !b.NoScrub && u.secrets != nil
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
			old.pool.transport.CloseIdleConnections()
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
	p := &pool{key: key, transport: tr, rt: tr}
	if us.roundTripper != nil {
		p.rt = us.roundTripper
	}
	return p, cfgErr
}

// closeAll closes every pool's idle connections (shutdown).
func (us *upstreams) closeAll() {
	us.m.Range(func(_, v any) bool {
		if p := v.(*upstream).pool; p != nil {
			p.transport.CloseIdleConnections()
		}
		return true
	})
}

// errUpstreamConfig marks a backend whose settings prevent forwarding.
var errUpstreamConfig = errors.New("upstream misconfigured")
