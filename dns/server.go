// Package dns answers DNS for agw: it answers authoritatively for the backend
// hosts the gateway intercepts (pointing them at the gateway's advertised
// addresses), forwards every other query to the upstream resolvers with a
// small cache, resolves real backend addresses for the gateway through those
// upstreams only, and exports the overrides an enterprise loads into its own
// DNS.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Interceptor tells which names agw answers for. The gateway implements it
// from its live config; it changes at runtime (adding a backend changes
// answers at once), so it is consulted on every query.
type Interceptor interface {
	// Intercepts reports whether name (lower case, no trailing dot) is a
	// registered backend host or matches a wildcard host ("*.crm.example.com"
	// matches exactly one extra label).
	Intercepts(name string) bool
}

// Config configures a Server.
type Config struct {
	Intercept Interceptor  // names answered by agw; required
	Advertise []netip.Addr // addresses returned for intercepted names (A for IPv4, AAAA for IPv6)
	Upstreams []string     // "ip:port" upstream resolvers for everything else; none → REFUSED for other names
	// Allow lists the client networks that get answers; every other client
	// gets REFUSED for every query, intercepted names included. Loopback is
	// always allowed; nil → loopback only. See DefaultAllow and ParseAllow.
	Allow   []netip.Prefix
	TTL     uint32        // TTL of intercepted answers; 0 → 30
	Timeout time.Duration // per upstream exchange; 0 → 2s
	Logger  *slog.Logger  // nil → discard
}

const (
	defaultTTL     = 30
	defaultTimeout = 2 * time.Second
	// ourUDPSize is the EDNS0 payload size agw advertises and asks upstreams
	// for: the DNS flag day 2020 value, which avoids IP fragmentation.
	ourUDPSize = 1232
)

// Server is agw's DNS server. Its ServeDNS method is an mdns.Handler; Serve
// runs it on UDP and TCP listeners the caller opened.
type Server struct {
	intercept Interceptor
	adv       atomic.Pointer[advertised] // addresses intercepted names resolve to
	ttl       uint32
	log       *slog.Logger
	fwd       *forwarder // nil when no upstream is configured
	allow     allowList

	queries, intercepted, forwarded, failures, cacheHits, refused atomic.Uint64
	warnedRefused                                                 atomic.Bool
}

// Stats counts what the server has answered since it was created.
type Stats struct {
	Queries     uint64 `json:"queries"`     // every query handed to ServeDNS
	Intercepted uint64 `json:"intercepted"` // queries for intercepted names
	Forwarded   uint64 `json:"forwarded"`   // queries answered with upstream data (cache hits included)
	Failures    uint64 `json:"failures"`    // queries answered SERVFAIL because no upstream answered
	CacheHits   uint64 `json:"cache_hits"`  // forwarded queries answered from the cache
	Refused     uint64 `json:"refused"`     // queries from clients outside the allow list (answered REFUSED)
}

var _ mdns.Handler = (*Server)(nil)

// New checks cfg and returns a Server. It fails when the interceptor is
// missing, an advertised address or allow prefix is invalid, or an upstream is not "ip:port"
// or points back at an advertised address (which would loop queries through
// agw forever).
func New(cfg Config) (*Server, error) {
	if cfg.Intercept == nil {
		return nil, errors.New("dns: config has no Intercept: give the server the set of intercepted hosts")
	}
	s := &Server{intercept: cfg.Intercept, ttl: cfg.TTL, log: cfg.Logger}
	if s.ttl == 0 {
		s.ttl = defaultTTL
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	allow, err := newAllowList(cfg.Allow)
	if err != nil {
		return nil, err
	}
	s.allow = allow
	if err := s.SetAdvertise(cfg.Advertise); err != nil {
		return nil, err
	}
	if len(cfg.Upstreams) > 0 {
		fwd, err := newForwarder(cfg.Upstreams, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		for _, u := range fwd.upstreams {
			for _, a := range cfg.Advertise {
				if u.Addr().Unmap() == a.Unmap() && u.Port() == 53 {
					return nil, fmt.Errorf("dns: upstream %s is an advertised address of the gateway: queries would loop back to agw; use the resolvers agw itself should use", u)
				}
			}
		}
		s.fwd = fwd
	} else {
		s.log.Warn("dns: no upstream resolvers; only intercepted names will be answered")
	}
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Queries:     s.queries.Load(),
		Intercepted: s.intercepted.Load(),
		Forwarded:   s.forwarded.Load(),
		Failures:    s.failures.Load(),
		CacheHits:   s.cacheHits.Load(),
		Refused:     s.refused.Load(),
	}
}

// Serve answers DNS on pc (UDP) and ln (TCP) until ctx is done; either may be
// nil, not both. It returns nil when ctx is cancelled and the listeners'
// error otherwise. The listeners are closed when Serve returns.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	if pc == nil && ln == nil {
		return errors.New("dns: Serve needs a UDP packet conn or a TCP listener")
	}
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) { s.serve(ctx, w, r) })
	var servers []*mdns.Server
	if pc != nil {
		servers = append(servers, &mdns.Server{PacketConn: pc, Handler: handler, UDPSize: mdns.DefaultMsgSize})
	}
	if ln != nil {
		servers = append(servers, &mdns.Server{Listener: ln, Handler: handler})
	}

	errc := make(chan error, len(servers))
	var started sync.WaitGroup
	for _, srv := range servers {
		started.Add(1)
		var once sync.Once
		done := func() { once.Do(started.Done) }
		srv.NotifyStartedFunc = done
		go func() {
			err := srv.ActivateAndServe()
			done()
			errc <- err
		}()
	}
	started.Wait()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("dns: serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(shutdownCtx) // "server not started" when it already failed
	}
	return err
}

// advertised holds the addresses of intercepted answers, shared read-only
// by every answer until replaced.
type advertised struct {
	v4, v6 []net.IP
}

// SetAdvertise replaces the addresses intercepted names resolve to (in
// cluster mode, every live replica's), from the next query on.
func (s *Server) SetAdvertise(addrs []netip.Addr) error {
	a := &advertised{}
	for _, ip := range addrs {
		switch {
		case !ip.IsValid():
			return errors.New("dns: invalid advertise address")
		case ip.Unmap().Is4():
			b := ip.Unmap().As4()
			a.v4 = append(a.v4, net.IP(b[:]))
		default:
			b := ip.As16()
			a.v6 = append(a.v6, net.IP(b[:]))
		}
	}
	s.adv.Store(a)
	return nil
}
