package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Errors returned by Resolver; match them with errors.Is.
var (
	// ErrLoopback means an upstream answered with one of the gateway's own
	// addresses: forwarding there would send the request back into agw.
	ErrLoopback = errors.New("resolution loops back to the gateway")
	// ErrNXDomain means the upstreams say the name does not exist.
	ErrNXDomain = errors.New("no such host")
	// ErrNoUpstream means no upstream resolver is configured or none answered.
	ErrNoUpstream = errors.New("no upstream resolver answered")
	// ErrNoAddress means the name exists but has no A or AAAA record.
	ErrNoAddress = errors.New("host has no address")
)

// Resolver resolves real backend addresses through the upstream resolvers
// only, never through agw's own answers, caching them by TTL like the Server.
// The gateway uses it to reach the backends it intercepts.
type Resolver struct {
	fwd    *forwarder
	self   []netip.Addr
	err    error // configuration error, returned by every lookup
	dialer net.Dialer
}

// NewResolver returns a Resolver asking upstreams ("ip:port") in order, each
// exchange bounded by timeout (0 → 2s). self lists the gateway's own
// advertised and listen addresses: an answer containing one of them is
// refused with ErrLoopback. A bad upstream makes every lookup fail with the
// reason.
func NewResolver(upstreams []string, self []netip.Addr, timeout time.Duration) *Resolver {
	r := &Resolver{}
	r.fwd, r.err = newForwarder(upstreams, timeout)
	for _, a := range self {
		r.self = append(r.self, a.Unmap().WithZone(""))
	}
	return r
}

// LookupNetIP returns host's IPv4 addresses followed by its IPv6 addresses,
// following CNAMEs in the upstream answers. An IP literal is returned as is.
// Errors wrap ErrNXDomain, ErrNoAddress, ErrNoUpstream or ErrLoopback.
func (r *Resolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return []netip.Addr{a}, nil
	}
	if r.err != nil {
		return nil, fmt.Errorf("lookup %s: %w", host, r.err)
	}
	name := canonicalName(host)
	if _, ok := mdns.IsDomainName(name); !ok || name == "" {
		return nil, fmt.Errorf("lookup %q: not a valid host name", host)
	}

	types := [2]uint16{mdns.TypeA, mdns.TypeAAAA}
	var (
		msgs [2]*mdns.Msg
		errs [2]error
		wg   sync.WaitGroup
	)
	for i, t := range types {
		wg.Go(func() {
			msgs[i], _, errs[i] = r.fwd.resolve(ctx, cacheKey{name: name, qtype: t, qclass: mdns.ClassINET}, true)
		})
	}
	wg.Wait()

	var addrs []netip.Addr
	nx, servfail := 0, 0
	for i, m := range msgs {
		if errs[i] != nil {
			continue
		}
		switch m.Rcode {
		case mdns.RcodeSuccess:
			addrs = append(addrs, addressesOf(m, mdns.Fqdn(name), types[i])...)
		case mdns.RcodeNameError:
			nx++
		default:
			servfail++
		}
	}
	for _, a := range addrs {
		for _, s := range r.self {
			if a.Unmap() == s {
				return nil, fmt.Errorf("lookup %s: upstream answered %s, an address of the gateway: %w; use upstream resolvers that do not serve agw's own answers", host, a, ErrLoopback)
			}
		}
	}
	switch {
	case len(addrs) > 0:
		return addrs, nil
	case errs[0] != nil && errs[1] != nil:
		return nil, fmt.Errorf("lookup %s: %w", host, errs[0])
	case nx > 0:
		return nil, fmt.Errorf("lookup %s: %w", host, ErrNXDomain)
	case servfail > 0:
		return nil, fmt.Errorf("lookup %s: upstream could not resolve it: %w", host, ErrNoUpstream)
	case errs[0] != nil || errs[1] != nil:
		return nil, fmt.Errorf("lookup %s: %w", host, errors.Join(errs[0], errs[1]))
	}
	return nil, fmt.Errorf("lookup %s: %w", host, ErrNoAddress)
}

// addressesOf collects the records of type qtype (A or AAAA) at the end of
// the CNAME chain that starts at name, ignoring anything else an upstream put
// in the answer section.
func addressesOf(m *mdns.Msg, name string, qtype uint16) []netip.Addr {
	target := name
	for range 16 { // CNAME chains longer than this are broken or hostile
		next := ""
		for _, rr := range m.Answer {
			if c, ok := rr.(*mdns.CNAME); ok && strings.EqualFold(c.Hdr.Name, target) {
				next = c.Target
			}
		}
		if next == "" {
			break
		}
		target = next
	}
	var out []netip.Addr
	for _, rr := range m.Answer {
		if rr.Header().Rrtype != qtype || !strings.EqualFold(rr.Header().Name, target) {
			continue
		}
		var ip net.IP
		switch rr := rr.(type) {
		case *mdns.A:
			ip = rr.A
		case *mdns.AAAA:
			ip = rr.AAAA
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			if qtype == mdns.TypeA {
				a = a.Unmap() // miekg keeps IPv4 in 16 bytes
			}
			out = append(out, a)
		}
	}
	return out
}

// DialContext resolves addr's host with LookupNetIP and dials its addresses
// in order until one connects. It fits http.Transport.DialContext.
func (r *Resolver) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	ips, err := r.LookupNetIP(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var errs []error
	for _, ip := range ips {
		c, err := r.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dial %s: %w", addr, errors.Join(errs...))
}
