package front

import (
	"context"
	"crypto/tls"
	"net/http"
	"sync"

	"github.com/agw-dev/agw/store"
	"golang.org/x/net/http2"
)

// HTTP/2 connections.
//
// The HTTP/2 server refuses malformed frames and streams itself (RST_STREAM
// or GOAWAY) without calling the handler, and reports each refusal only
// through its CountError hook, which names no connection. So each HTTP/2
// connection is served by its own http2.Server whose CountError knows the
// client and the server name: every refusal is counted in
// agw_http2_errors_total and becomes an audit record, as the HTTP/1.x
// server's refusals do (conntrack.go).

const ReasonH2Refused = "malformed HTTP/2 stream or frame refused by the HTTP/2 server before routing"

// h2Conns holds a graceful-shutdown handle for each HTTP/2 connection being
// served.
type h2Conns struct {
	mu       sync.Mutex
	shutting bool
	live     map[*http.Server]struct{}
}

// add registers a connection's handle; it reports false once shutdown has
// begun, when the connection should not be served.
func (h *h2Conns) add(s *http.Server) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutting {
		return false
	}
	if h.live == nil {
		h.live = make(map[*http.Server]struct{})
	}
	h.live[s] = struct{}{}
	return true
}

func (h *h2Conns) remove(s *http.Server) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.live, s)
}

// shutdown starts every connection's graceful shutdown: a GOAWAY, then the
// connection closes once its streams are done. The HTTP server's Shutdown
// runs it (RegisterOnShutdown) and then waits for those connections.
func (h *h2Conns) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.shutting = true
	for s := range h.live {
		// The stand-in holds no listener or connection of its own, so its
		// Shutdown returns at once and has nothing to report.
		go func() { _ = s.Shutdown(context.Background()) }()
	}
}

// serveH2 is the HTTP server's TLSNextProto handler for "h2".
func (s *Server) serveH2(hs *http.Server, c *tls.Conn, h http.Handler) {
	ctx := context.Background()
	// h carries the connection's base context (ConnContext and the
	// server's BaseContext), as net/http's own HTTP/2 setup uses it.
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext()
	}
	client, host := c.RemoteAddr().String(), store.RequestHost(c.ConnectionState().ServerName)
	h2 := &http2.Server{CountError: func(errType string) {
		s.http2Error(errType)
		s.recordUnrouted(client, host, viaOf(c), 0, ReasonH2Refused+": "+errType)
	}}
	// ConfigureServer ties this connection's graceful shutdown to a
	// stand-in server that holds nothing else, so shutting it down reaches
	// this connection alone.
	stop := &http.Server{}
	if err := http2.ConfigureServer(stop, h2); err != nil {
		s.log.Error("HTTP/2 setup failed; closing the connection", "client", client, "err", err)
		c.Close()
		return
	}
	if !s.h2.add(stop) {
		c.Close()
		return
	}
	defer s.h2.remove(stop)
	h2.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: hs, Handler: h})
}
