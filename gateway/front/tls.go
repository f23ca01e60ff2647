package front

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

const (
	// leafValidity is how long a minted leaf is valid; short, because the
	// CA key is the one long-lived secret and a leaked leaf should die fast.
	leafValidity = 24 * time.Hour
	// leafRenewFraction: a cached leaf is replaced once less than this
	// fraction of its lifetime is left.
	leafRenewFraction = 4 // 1/4 = 25%
	// maxCachedLeaves bounds the cache: a wildcard backend makes the set of
	// names unbounded.
	maxCachedLeaves = 4096
)

// certCache mints leaf certificates for registered hosts on first use and
// keeps them until they near expiry. Concurrent handshakes for one name
// share a single mint.
type certCache struct {
	ca  *crypto.CA
	now func() time.Time

	mu       sync.Mutex
	certs    map[string]*tls.Certificate // by normalised SNI
	inflight map[string]*mintCall
}

type mintCall struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

func newCertCache(ca *crypto.CA, now func() time.Time) *certCache {
	return &certCache{ca: ca, now: now, certs: map[string]*tls.Certificate{}, inflight: map[string]*mintCall{}}
}

// get returns a valid leaf for name, minting one if none is cached or the
// cached one is near its end.
func (c *certCache) get(name string) (*tls.Certificate, error) { return c.getKind(name, false) }

// getRSA is get for the RSA leaf of name, minted for clients that accept
// no ECDSA signature scheme; it is cached beside the ECDSA one.
func (c *certCache) getRSA(name string) (*tls.Certificate, error) { return c.getKind(name, true) }

func (c *certCache) getKind(host string, useRSA bool) (*tls.Certificate, error) {
	name := host
	if useRSA {
		name = host + " rsa"
	}
	now := c.now()
	c.mu.Lock()
	if cert := c.certs[name]; cert != nil && fresh(cert.Leaf, now) {
		c.mu.Unlock()
		return cert, nil
	}
	if call := c.inflight[name]; call != nil {
		c.mu.Unlock()
		<-call.done
		return call.cert, call.err
	}
	call := &mintCall{done: make(chan struct{})}
	c.inflight[name] = call
	c.mu.Unlock()

	if useRSA {
		call.cert, call.err = c.ca.MintLeafRSA(host, now, leafValidity)
	} else {
		call.cert, call.err = c.ca.MintLeaf(host, now, leafValidity)
	}

	c.mu.Lock()
	delete(c.inflight, name)
	if call.err == nil {
		if len(c.certs) >= maxCachedLeaves {
			c.evictLocked(now)
		}
		c.certs[name] = call.cert
	}
	c.mu.Unlock()
	close(call.done)
	return call.cert, call.err
}

// fresh reports whether a leaf has more than a quarter of its lifetime left.
func fresh(leaf *x509.Certificate, now time.Time) bool {
	if leaf == nil {
		return false
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Sub(now) > life/leafRenewFraction
}

// evictLocked makes room: expired or stale leaves first, then arbitrary
// ones (map order) until a quarter of the cache is free.
func (c *certCache) evictLocked(now time.Time) {
	for k, cert := range c.certs {
		if !fresh(cert.Leaf, now) {
			delete(c.certs, k)
		}
	}
	for k := range c.certs {
		if len(c.certs) < maxCachedLeaves*3/4 {
			break
		}
		delete(c.certs, k)
	}
}

// TLSConfig is the server TLS configuration of the proxy listener: a leaf
// per registered SNI name, ALPN h2 and http/1.1, TLS 1.2 or later.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: s.getCertificate,
	}
}

// getCertificate serves a leaf for a registered host and refuses the
// handshake for anything else: an unknown name must not be intercepted, so
// clients that pin certificates fail closed rather than talk to agw.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := store.RequestHost(hello.ServerName)
	var tun *Tunnel
	if pc, ok := unwrapCapped(hello.Conn).(*proxiedConn); ok {
		tun = &pc.tun
	}
	if name == "" || !s.hosts.Intercepts(name) || tun != nil && name != tun.host {
		s.tlsRefused.Add(1)
		reason := "missing SNI"
		switch {
		case name != "" && tun != nil && name != tun.host:
			reason = "SNI " + store.PrintableName(name) + " differs from the tunnel's target " + store.PrintableName(tun.host)
		case name != "":
			reason = "unknown SNI " + store.PrintableName(name)
		}
		ev := store.AuditEvent{Time: s.now(), Kind: store.KindTLS, Decision: store.Deny, Reason: reason}
		if hello.Conn != nil {
			ev.Client = hello.Conn.RemoteAddr().String()
		}
		if tun != nil {
			ev.Via, ev.Agent = store.ViaProxy, tun.agent
		}
		s.record(ev)
		switch {
		case name == "":
			return nil, errors.New("agw: the client sent no server name (SNI); connect by host name")
		case tun != nil && name != tun.host:
			return nil, errors.New("agw: the TLS server name differs from the proxy tunnel's target")
		}
		// No certificate and no error: the TLS stack then refuses with the
		// unrecognized_name alert, which says what is wrong, rather than
		// internal_error.
		return nil, nil
	}
	cert, err := s.certs.get(name)
	if err != nil {
		s.log.Error("mint leaf certificate", "host", store.PrintableName(name), "err", err)
		return nil, fmt.Errorf("agw: no certificate for %s", store.PrintableName(name))
	}
	if hello.SupportsCertificate(cert) != nil {
		// A client that offers no ECDSA signature scheme gets an RSA leaf
		// (chosen per ClientHello; both are cached).
		if rc, err := s.certs.getRSA(name); err == nil && hello.SupportsCertificate(rc) == nil {
			return rc, nil
		}
	}
	return cert, nil
}
