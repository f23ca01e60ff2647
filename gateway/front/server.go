// Package front is the gateway's TLS front: the HTTPS listener that
// completes handshakes with leaf certificates minted from agw's CA for the
// registered names only, tracks connections so that what Go's HTTP servers
// refuse before routing is still audited, and serves HTTP/1.1 and HTTP/2 to
// any http.Handler.
package front

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// DrainTimeout bounds how long Serve waits for in-flight requests after its
// context is done.
const DrainTimeout = 30 * time.Second

// Hosts says which names are registered: only those get a certificate.
type Hosts interface {
	Intercepts(name string) bool
}

// Config is what a Server needs.
type Config struct {
	CA      *crypto.CA
	Hosts   Hosts
	Handler http.Handler
	// Record takes the audit record of a refused TLS handshake or of a
	// request refused before it reached Handler; nil drops them.
	Record func(store.AuditEvent)
	// HTTP2Error counts a stream or frame the HTTP/2 server refused, by
	// its error type; nil counts nothing.
	HTTP2Error func(errType string)
	Logger     *slog.Logger
	// ErrorLog takes net/http's own log lines (it must redact URLs: they
	// may carry an injected key); nil discards them.
	ErrorLog *log.Logger
	Now      func() time.Time // nil → time.Now
	// MaxConns and MaxConnsPerClient cap open connections in all and per
	// client address (IPv4 address or IPv6 /64); 0 takes the defaults,
	// negative turns a cap off.
	MaxConns, MaxConnsPerClient int
}

// Server is the TLS front of the gateway.
type Server struct {
	certs      *certCache
	hosts      Hosts
	handler    http.Handler
	record     func(store.AuditEvent)
	http2Error func(string)
	log        *slog.Logger
	errorLog   *log.Logger
	now        func() time.Time
	h2         h2Conns // HTTP/2 connections being served, for graceful shutdown
	caps       connCaps

	tlsRefused, unrouted atomic.Uint64
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		hosts: cfg.Hosts, handler: cfg.Handler, record: cfg.Record,
		http2Error: cfg.HTTP2Error, log: cfg.Logger, errorLog: cfg.ErrorLog, now: cfg.Now,
	}
	s.caps.max = orDefault(cfg.MaxConns, DefaultMaxConns)
	s.caps.perClient = orDefault(cfg.MaxConnsPerClient, DefaultMaxConnsPerClient)
	if s.errorLog == nil {
		s.errorLog = log.New(io.Discard, "", 0)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.record == nil {
		s.record = func(store.AuditEvent) {}
	}
	if s.http2Error == nil {
		s.http2Error = func(string) {}
	}
	s.certs = newCertCache(cfg.CA, s.now)
	return s
}

func orDefault(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Stats are the front's counters since start.
type Stats struct {
	TLSRefused   uint64 // handshakes refused (unknown or missing SNI, plain HTTP)
	Unrouted     uint64 // requests refused by the HTTP servers before routing
	ConnsRefused uint64 // connections closed at once because a cap was reached
	OpenConns    int64  // connections open now
}

// Stats returns the counters since start.
func (s *Server) Stats() Stats {
	return Stats{TLSRefused: s.tlsRefused.Load(), Unrouted: s.unrouted.Load(),
		ConnsRefused: s.caps.refused.Load(), OpenConns: s.caps.total.Load()}
}

// Serve accepts TLS connections on ln and serves HTTP/1.1 and HTTP/2 until
// ctx is done; then it stops accepting, lets in-flight requests finish for
// up to DrainTimeout and closes what is left.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln)
}

// serve completes TLS handshakes on the connections ln accepts and serves
// HTTP on them: the DNS-steered path's TCP listener, or the proxy
// listener's intercepted tunnels.
func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	const handshakeTimeout = 30 * time.Second
	srv := &http.Server{
		Handler: s.handler,
		// Set for HTTP/2: the server configures it when the config offers
		// h2. Handshakes use their own copy (the server may amend this one).
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: handshakeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		// OPTIONS * goes to the handler (which refuses and audits it)
		// instead of being answered 200 by the server itself.
		DisableGeneralOptionsHandler: true,
		// Handshake refusals and client resets are routine; the audit
		// already has the refusals.
		ErrorLog:    s.errorLog,
		ConnContext: connContext,
		ConnState:   s.connState,
		// HTTP/2 connections are served one http2.Server each (h2conn.go).
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){"h2": s.serveH2},
	}
	srv.RegisterOnShutdown(s.h2.shutdown)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(newTLSListener(ln, s.TLSConfig(), handshakeTimeout, s)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve https: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("https drain timed out; closing remaining connections", "timeout", DrainTimeout)
		_ = srv.Close()
	}
	<-errc
	return nil
}

// NewRequestID returns 16 random hex characters.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
