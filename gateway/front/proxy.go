package front

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/front/tunnel"
	"github.com/agw-dev/agw/store"
)

// The proxy listener.
//
// A client that can only be told HTTPS_PROXY (or a SOCKS5 proxy) opens a
// tunnel with CONNECT or SOCKS5 (package tunnel). A tunnel to a registered
// host on port 443 is answered as open and its connection handed, as if it
// had just been accepted on the HTTPS port, to the same TLS handshake and
// HTTP servers as a DNS-steered connection: every request inside goes
// through the same handler, and knows it came through a tunnel (TunnelOf).
// A tunnel to a host listed for pass-through is spliced to the real host
// without terminating TLS, and audited with its byte counts. Anything else
// is refused and audited.

// ProxyConfig is what the proxy listener needs beyond the front's Config.
type ProxyConfig struct {
	// Allow is the client networks served; a client outside is
	// disconnected before it is read (and audited).
	Allow tunnel.Allow
	// PassesThrough reports whether a normalised host is listed for
	// pass-through tunnels; nil lists none.
	PassesThrough func(host string) bool
	// Dial reaches pass-through targets (through the upstream resolver,
	// never agw's own answers); nil uses a plain net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Authenticate checks the credential a client gave in its handshake
	// and names the agent it belongs to. Its error is shown to the client
	// and audited, so it must not hold the credential. nil refuses every
	// credential.
	Authenticate func(ctx context.Context, credential string) (agent string, err error)
}

// Tunnel is what a request that came through the proxy listener knows of
// its tunnel.
type Tunnel struct {
	host  string // the target the client asked for, normalised
	agent string // named by the handshake's credential; "" without one
	cred  string // the handshake's credential; never printed
}

// Host is the tunnel's target host.
func (t *Tunnel) Host() string { return t.host }

// Agent is the agent the tunnel's handshake identified, or "".
func (t *Tunnel) Agent() string { return t.agent }

// Credential is the gateway token given in the handshake, or "". It is a
// secret: for identification only.
func (t *Tunnel) Credential() string { return t.cred }

type tunnelKey struct{}

// TunnelOf returns the tunnel a request arrived through, or nil for a
// request on the HTTPS port.
func TunnelOf(ctx context.Context) *Tunnel {
	t, _ := ctx.Value(tunnelKey{}).(*Tunnel)
	return t
}

// proxiedConn is an intercepted tunnel, before TLS.
type proxiedConn struct {
	*tunnel.Conn
	tun Tunnel
}

// tunnelOf finds the tunnel under a connection the HTTP server serves.
func tunnelOf(c net.Conn) *Tunnel {
	var tc *tls.Conn
	switch v := c.(type) {
	case *h1Conn:
		tc = v.Conn
	case *tls.Conn:
		tc = v
	}
	if tc == nil {
		return nil
	}
	if pc, ok := unwrapCapped(tc.NetConn()).(*proxiedConn); ok {
		return &pc.tun
	}
	return nil
}

// unwrapCapped is the connection under a connection-cap slot.
func unwrapCapped(c net.Conn) net.Conn {
	if cc, ok := c.(*cappedConn); ok {
		return cc.Conn
	}
	return c
}

func viaOf(c net.Conn) string {
	if tunnelOf(c) != nil {
		return store.ViaProxy
	}
	return ""
}

func viaOfRaw(c net.Conn) string {
	if _, ok := unwrapCapped(c).(*proxiedConn); ok {
		return store.ViaProxy
	}
	return ""
}

// ServeProxy runs the proxy listener on ln until ctx is done, then drains
// as Serve does and closes the pass-through tunnels still open.
func (s *Server) ServeProxy(ctx context.Context, ln net.Listener, cfg ProxyConfig) error {
	pl := &proxyListener{
		ln: ln, s: s, cfg: cfg,
		ready:   make(chan net.Conn),
		done:    make(chan struct{}),
		pending: map[net.Conn]struct{}{},
	}
	if pl.cfg.Dial == nil {
		pl.cfg.Dial = (&net.Dialer{}).DialContext
	}
	if pl.cfg.PassesThrough == nil {
		pl.cfg.PassesThrough = func(string) bool { return false }
	}
	go pl.acceptLoop()
	err := s.serve(ctx, pl)
	pl.Close()
	pl.wg.Wait()
	if err != nil {
		return fmt.Errorf("proxy listener: %w", err)
	}
	return nil
}

// proxyListener accepts clients, reads their handshakes (each in its own
// goroutine) and hands the HTTP server the intercepted tunnels.
type proxyListener struct {
	ln    net.Listener
	s     *Server
	cfg   ProxyConfig
	ready chan net.Conn
	errc  atomic.Pointer[error]
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup // handshakes and pass-through tunnels

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{} // in a handshake or passing through
}

func (l *proxyListener) acceptLoop() {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.isClosed() {
				l.errc.Store(&err)
				l.Close()
				return
			}
			l.s.log.Warn("proxy listener: accept failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if !l.track(c) {
			c.Close()
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.untrack(c)
			l.handle(c)
		}()
	}
}

func (l *proxyListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *proxyListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *proxyListener) untrack(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, c)
}

// Accept returns the next intercepted tunnel.
func (l *proxyListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		if err := l.errc.Load(); err != nil && !errors.Is(*err, net.ErrClosed) {
			return nil, *err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections in a handshake and the
// pass-through tunnels.
func (l *proxyListener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		close(l.done)
		err = l.ln.Close()
	})
	return err
}

// Addr is the listener's address.
func (l *proxyListener) Addr() net.Addr { return l.ln.Addr() }

// handle reads one client's handshake and decides its tunnel.
func (l *proxyListener) handle(raw net.Conn) {
	s := l.s
	start := s.now()
	ev := store.AuditEvent{Time: start, Kind: store.KindTunnel, RequestID: NewRequestID(),
		Client: raw.RemoteAddr().String(), Via: store.ViaProxy, Decision: store.Deny}
	if !l.cfg.Allow.Permits(raw.RemoteAddr()) {
		ev.Reason = "client address outside --proxy-allow"
		s.record(ev)
		raw.Close()
		return
	}
	var agent, cred string
	tc, err := tunnel.Handshake(raw, tunnel.Options{
		RequestID: ev.RequestID,
		Now:       s.now,
		Authenticate: func(user, pass string) error {
			c := pass
			if c == "" {
				c = user
			}
			if l.cfg.Authenticate == nil {
				return errors.New("the proxy listener accepts no credentials")
			}
			a, err := l.cfg.Authenticate(context.Background(), c)
			if err != nil {
				return err
			}
			agent, cred = a, c
			return nil
		},
	})
	if err != nil {
		var te *tunnel.Error
		if !errors.As(err, &te) {
			s.log.Debug("proxy handshake failed", "client", ev.Client, "err", err)
			raw.Close()
			return
		}
		ev.Reason = te.Reason
		ev.TotalMillis = millis(s.now().Sub(start))
		s.record(ev)
		raw.Close()
		return
	}
	req := tc.Request()
	ev.Agent, ev.Host, ev.Method = agent, store.PrintableName(req.Host), "CONNECT"
	if req.Proto == tunnel.ProtoSOCKS5 {
		ev.Method = "SOCKS5"
	}
	refuse := func(why tunnel.Refusal, typ, msg string) {
		ev.Reason = msg
		ev.TotalMillis = millis(s.now().Sub(start))
		s.record(ev)
		_ = tc.Refuse(why, tunnel.ErrorBody(typ, msg, ev.RequestID))
		raw.Close()
	}
	intercepted := s.hosts.Intercepts(req.Host)
	switch {
	case intercepted && req.Port == 443:
		if err := tc.Grant(); err != nil {
			raw.Close()
			return
		}
		l.untrack(raw) // the HTTP server owns it from here
		select {
		case l.ready <- &proxiedConn{Conn: tc, tun: Tunnel{host: req.Host, agent: agent, cred: cred}}:
		case <-l.done:
			raw.Close()
		}
	case intercepted:
		refuse(tunnel.NotAllowed, deny.Forbidden, fmt.Sprintf("host %s is a registered backend: agw serves it on port 443 only, not %d", ev.Host, req.Port))
	case l.cfg.PassesThrough(req.Host):
		l.passThrough(tc, raw, req, &ev, start)
	default:
		msg := "tunnel to " + ev.Host + " refused: it is neither a registered backend nor listed for pass-through (agw passthrough add HOST)." + deny.PolicyNote
		if isIPLiteral(req.Host) {
			msg = "tunnel to the address " + ev.Host + " refused: agw opens tunnels by host name only; let the proxy resolve names (socks5h://, or HTTPS_PROXY)." + deny.PolicyNote
		}
		refuse(tunnel.NotAllowed, deny.Forbidden, msg)
	}
}

func isIPLiteral(h string) bool { return net.ParseIP(h) != nil }

const (
	// passThroughDialTimeout bounds connecting to a pass-through target.
	passThroughDialTimeout = 15 * time.Second
	// passThroughLinger is how long a pass-through tunnel stays open for
	// the client once the target has finished.
	passThroughLinger = 10 * time.Second
)

// passThrough splices a tunnel to its real target without terminating
// TLS, and audits it with the bytes each way once both directions end.
func (l *proxyListener) passThrough(tc *tunnel.Conn, raw net.Conn, req *tunnel.Request, ev *store.AuditEvent, start time.Time) {
	s := l.s
	ctx, cancel := context.WithTimeout(context.Background(), passThroughDialTimeout)
	up, err := l.cfg.Dial(ctx, "tcp", req.Target())
	cancel()
	if err != nil {
		ev.Reason = "pass-through target unreachable: " + err.Error()
		ev.TotalMillis = millis(s.now().Sub(start))
		s.record(*ev)
		_ = tc.Refuse(tunnel.Unreachable, tunnel.ErrorBody(deny.Upstream, "cannot reach "+ev.Host+" for a pass-through tunnel", ev.RequestID))
		raw.Close()
		return
	}
	if !l.track(up) {
		up.Close()
		raw.Close()
		return
	}
	defer l.untrack(up)
	if err := tc.Grant(); err != nil {
		up.Close()
		raw.Close()
		return
	}
	var in, out int64
	var wg sync.WaitGroup
	wg.Go(func() {
		in, _ = io.Copy(up, tc)
		closeWrite(up)
	})
	out, _ = io.Copy(raw, up)
	closeWrite(raw)
	// The target is done; a client that neither sends nor hangs up is
	// not waited for long.
	_ = raw.SetReadDeadline(time.Now().Add(passThroughLinger))
	wg.Wait()
	up.Close()
	raw.Close()
	ev.Decision = store.Allow
	ev.Reason = "pass-through: TLS not terminated, no credential injected"
	ev.BytesIn, ev.BytesOut = in, out
	ev.TotalMillis = millis(s.now().Sub(start))
	s.record(*ev)
}

// closeWrite half-closes a TCP connection so the peer sees the end of what
// the other side sent; other connections are closed.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	c.Close()
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
