package front

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/store"
)

// Requests that never reach the pipeline.
//
// Go's HTTP server refuses some HTTP/1.x requests while reading them
// (malformed request line or headers, duplicate Host, conflicting or unknown
// framing, a header block over the limit, an Expect it does not support) and
// answers 4xx/5xx itself without calling the handler; a client may also stop
// sending half-way. Each of these is a request all the same, and often an
// attack's probe, so each gets an audit record.
//
// To see them, the gateway completes TLS handshakes itself (tlsListener) and
// hands HTTP/1.x connections to the server wrapped in h1Conn, which watches
// the plaintext: a response the server writes while no request is in the
// pipeline is the server's own refusal (its status is read from the status
// line); request bytes read since the last answered request when the
// connection closes are a request cut off. HTTP/2 connections go to the
// server as the plain *tls.Conn it needs to speak HTTP/2, and on to an
// HTTP/2 server of their own whose refusals are recorded (h2conn.go).

const (
	ReasonRefusedByServer = "malformed request refused by the HTTP server before routing"
	ReasonCutOff          = "incomplete request: the client stopped sending or took too long"
)

// tlsListener accepts TCP connections and completes each TLS handshake in
// its own goroutine, so a slow client holds up no other.
type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration // for the handshake
	s       *Server
	ready   chan net.Conn
	errc    chan error

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{} // mid-handshake
	done    chan struct{}
	once    sync.Once
}

func newTLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, s *Server) *tlsListener {
	l := &tlsListener{
		Listener: ln, cfg: cfg, timeout: timeout, s: s,
		ready:   make(chan net.Conn),
		errc:    make(chan error, 1),
		pending: make(map[net.Conn]struct{}),
		done:    make(chan struct{}),
	}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.isClosed() || errors.Is(err, net.ErrClosed) {
				select {
				case l.errc <- err:
				case <-l.done:
				}
				return
			}
			// Out of file descriptors and the like: wait and retry, as
			// http.Server does, rather than stop serving.
			l.s.log.Warn("accept failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		capped, ok := l.s.caps.admit(c)
		if !ok {
			l.s.log.Debug("connection refused: too many open connections", "client", c.RemoteAddr().String())
			c.Close()
			continue
		}
		c = capped
		if !l.track(c) {
			c.Close()
			return
		}
		go l.handshake(c)
	}
}

func (l *tlsListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *tlsListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *tlsListener) handshake(raw net.Conn) {
	defer func() {
		l.mu.Lock()
		delete(l.pending, raw)
		l.mu.Unlock()
	}()
	tc := tls.Server(raw, l.cfg)
	if l.timeout > 0 {
		_ = raw.SetDeadline(time.Now().Add(l.timeout))
	}
	if err := tc.Handshake(); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
			_, _ = io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nThis is agw's HTTPS port: connect with https://.\n")
			l.s.tlsRefused.Add(1)
			l.s.record(store.AuditEvent{Time: l.s.now(), Kind: store.KindTLS, Decision: store.Deny,
				Reason: "plain HTTP on the HTTPS port", Client: raw.RemoteAddr().String(), Via: viaOfRaw(raw)})
		}
		l.s.log.Debug("TLS handshake failed", "client", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	var c net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		c = &h1Conn{Conn: tc, t: &trackedConn{framing: newFraming()}}
	}
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "PATCH", "DELET", "CONNE":
		return true
	}
	return false
}

// Accept returns the next connection whose handshake has completed.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections still in their
// handshake.
func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// h1Conn is an HTTP/1.x connection as the HTTP server sees it. Embedding
// the *tls.Conn keeps ConnectionState, so requests still carry their TLS
// state (SNI for routing).
type h1Conn struct {
	*tls.Conn
	t *trackedConn
}

type trackedConn struct {
	// owed: a request is in the pipeline, which writes its record; the
	// answer written meanwhile is the pipeline's. Cleared when the server
	// has sent the answer and waits for the next request.
	owed     atomic.Bool
	read     atomic.Int64 // plaintext bytes read
	mark     int64        // read when the last answer was complete
	refusals atomic.Int32 // answers the server wrote on its own, not yet recorded
	status   atomic.Int32 // of the last refusal

	fmu     sync.Mutex
	framing framing // header blocks with conflicting framing (framing.go)
}

func (c *h1Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.t.read.Add(int64(n))
	if n > 0 {
		c.t.fmu.Lock()
		c.t.framing.scan(b[:n])
		c.t.fmu.Unlock()
	}
	return n, err
}

// Write notices an answer the server writes with no request in the
// pipeline: the server refusing a request itself.
func (c *h1Conn) Write(b []byte) (int, error) {
	if !c.t.owed.Load() && bytes.HasPrefix(b, []byte("HTTP/1.")) && len(b) >= 12 {
		if code, err := strconv.Atoi(string(b[9:12])); err == nil && code >= 400 {
			c.t.status.Store(int32(code))
			c.t.refusals.Add(1)
		}
	}
	return c.Conn.Write(b)
}

type trackedConnKey struct{}

// connContext gives requests on an HTTP/1.x connection its tracker
// (http.Server.ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if t := tunnelOf(c); t != nil {
		ctx = context.WithValue(ctx, tunnelKey{}, t)
	}
	if hc, ok := c.(*h1Conn); ok {
		return context.WithValue(ctx, trackedConnKey{}, hc.t)
	}
	return ctx
}

// MarkServed records that the current request of ctx's connection reached
// the pipeline, which writes its audit record.
func MarkServed(ctx context.Context) {
	if t, ok := ctx.Value(trackedConnKey{}).(*trackedConn); ok {
		t.owed.Store(true)
	}
}

// connState is the http.Server.ConnState hook; the server runs it from the
// connection's own goroutine, in order.
func (s *Server) connState(c net.Conn, cs http.ConnState) {
	hc, ok := c.(*h1Conn)
	if !ok {
		return
	}
	t := hc.t
	switch cs {
	case http.StateIdle:
		s.settle(hc, false)
		t.owed.Store(false)
		t.mark = t.read.Load()
	case http.StateClosed:
		s.settle(hc, true)
	}
}

// settle writes the records of what the server refused or the client cut
// off since the last answered request.
func (s *Server) settle(c *h1Conn, closing bool) {
	t := c.t
	n := int(t.refusals.Swap(0))
	for range n {
		s.recordUnrouted(c.RemoteAddr().String(), c.host(), viaOf(c.Conn), int(t.status.Load()), ReasonRefusedByServer)
	}
	if closing && n == 0 && !t.owed.Load() && t.read.Load() > t.mark {
		s.recordUnrouted(c.RemoteAddr().String(), c.host(), viaOf(c.Conn), 0, ReasonCutOff)
	}
}

// host is the server name the client asked for.
func (c *h1Conn) host() string { return store.RequestHost(c.ConnectionState().ServerName) }

func (s *Server) recordUnrouted(client, host, via string, status int, reason string) {
	s.unrouted.Add(1)
	ev := store.AuditEvent{
		Time:      s.now(),
		Kind:      store.KindRequest,
		RequestID: NewRequestID(),
		Client:    client,
		Via:       via,
		Host:      host,
		Status:    status,
		Decision:  store.Deny,
		Reason:    reason,
	}
	s.record(ev)
}
