package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// forwarder asks the upstream resolvers and caches what they say. The
// Server and the Resolver share it so both follow the same rules.
type forwarder struct {
	upstreams []netip.AddrPort
	timeout   time.Duration
	udp, tcp  *mdns.Client
	cache     *cache
	// preferred is the upstream asked first: the last one that answered.
	// A dead resolver then costs one timeout, not one per lookup.
	preferred atomic.Int32
}

func newForwarder(upstreams []string, timeout time.Duration) (*forwarder, error) {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	f := &forwarder{
		timeout: timeout,
		udp:     &mdns.Client{Net: "udp", Timeout: timeout, UDPSize: ourUDPSize},
		tcp:     &mdns.Client{Net: "tcp", Timeout: timeout},
		cache:   newCache(cacheMaxEntries),
	}
	for _, u := range upstreams {
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			return nil, fmt.Errorf("dns: upstream %q is not ip:port (IPv6 in brackets, e.g. [2001:db8::1]:53): %w", u, err)
		}
		f.upstreams = append(f.upstreams, ap)
	}
	return f, nil
}

// resolve answers key from the cache or the upstreams. The message returned
// belongs to the caller; hit says it came from the cache. An error means no
// upstream gave a usable answer; it wraps ErrNoUpstream.
func (f *forwarder) resolve(ctx context.Context, key cacheKey, rd bool) (*mdns.Msg, bool, error) {
	if m, ok := f.cache.get(key); ok {
		return m, true, nil
	}
	q := new(mdns.Msg)
	q.Id = mdns.Id()
	q.RecursionDesired = rd
	q.CheckingDisabled = key.cd
	q.Question = []mdns.Question{{Name: mdns.Fqdn(key.name), Qtype: key.qtype, Qclass: key.qclass}}
	q.SetEdns0(ourUDPSize, key.do)

	m, err := f.exchange(ctx, q)
	if err != nil {
		return nil, false, err
	}
	f.cache.put(key, m)
	return m.Copy(), false, nil
}

// exchange tries each upstream in turn, from the one that answered last. A
// truncated UDP answer is asked again over TCP. SERVFAIL, REFUSED and NOTIMP
// move on to the next upstream but are returned when no upstream does better.
func (f *forwarder) exchange(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, ErrNoUpstream
	}
	var errs []error
	var fallback *mdns.Msg
	first := int(f.preferred.Load())
	for n := range f.upstreams {
		i := (first + n) % len(f.upstreams)
		u := f.upstreams[i]
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		m, err := f.exchangeOne(ctx, q, u.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		switch m.Rcode {
		case mdns.RcodeServerFailure, mdns.RcodeRefused, mdns.RcodeNotImplemented:
			if fallback == nil {
				fallback = m
			}
			continue
		}
		if i != first {
			f.preferred.Store(int32(i))
		}
		return m, nil
	}
	if fallback != nil {
		return fallback, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrNoUpstream, errors.Join(errs...))
}

func (f *forwarder) exchangeOne(ctx context.Context, q *mdns.Msg, addr string) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	m, _, err := f.udp.ExchangeContext(ctx, q, addr)
	if err == nil && m.Truncated {
		m, _, err = f.tcp.ExchangeContext(ctx, q, addr)
	}
	if err != nil {
		return nil, err
	}
	if !m.Response || len(m.Question) != 1 || !sameQuestion(m.Question[0], q.Question[0]) {
		return nil, errors.New("answer does not match the question")
	}
	return m, nil
}

func sameQuestion(a, b mdns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
