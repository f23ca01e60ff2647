package dns

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// loopback is always in an allow list: a process on the host can reach the
// upstream resolvers itself, so refusing it protects nothing.
var loopback = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// allowList is the set of client networks that may query the server.
type allowList []netip.Prefix

// contains reports whether a client at addr may query. An address that is
// not IP (or cannot be read) is refused.
func (l allowList) contains(a net.Addr) bool {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("") // a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
	for _, p := range l {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// normalizePrefix masks p and turns an IPv4-mapped IPv6 prefix into the
// IPv4 prefix it means, so client addresses (unmapped) can match it.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// newAllowList returns loopback plus prefixes, normalised and without
// duplicates.
func newAllowList(prefixes []netip.Prefix) (allowList, error) {
	l := slices.Clone(loopback)
	for _, p := range prefixes {
		if !p.IsValid() {
			return nil, fmt.Errorf("dns: invalid allow prefix %v", p)
		}
		l = append(l, normalizePrefix(p))
	}
	slices.SortFunc(l, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(l), nil
}

// ParseAllow parses --dns-allow values: CIDR prefixes ("10.0.0.0/8",
// "fd00::/8") or single addresses ("192.0.2.7"). Host bits are masked off
// ("10.1.2.3/8" means 10.0.0.0/8). The result always includes loopback. It
// fails on the first value that is neither, naming it.
func ParseAllow(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		s := strings.TrimSpace(v)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil && a.Zone() == "" {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || !p.IsValid() {
			return nil, fmt.Errorf("--dns-allow %q is not a network: give a CIDR prefix such as 10.0.0.0/8 or fd00::/8, or a single address", v)
		}
		out = append(out, p)
	}
	l, err := newAllowList(out)
	return []netip.Prefix(l), err
}

// DefaultAllow returns the clients that may query a DNS server listening on
// listen when the operator gave no --dns-allow: loopback, plus the network
// of the interface address listen is (a wildcard listen address stands for
// every interface address, container bridges included, since agents often
// run in containers). IPv6 link-local networks are left out. When the host's
// interfaces cannot be read it returns loopback and the error.
func DefaultAllow(listen netip.Addr) ([]netip.Prefix, error) {
	ifaddrs, err := interfacePrefixes()
	l, lerr := newAllowList(defaultAllow(listen, ifaddrs))
	if lerr != nil {
		return slices.Clone(loopback), lerr
	}
	if err != nil {
		return []netip.Prefix(l), fmt.Errorf("dns: read interface addresses for the default allow list: %w", err)
	}
	return []netip.Prefix(l), nil
}

// defaultAllow picks, from the host's interface address prefixes, the
// networks a listener on listen serves (loopback is added by the caller).
func defaultAllow(listen netip.Addr, ifaddrs []netip.Prefix) []netip.Prefix {
	listen = listen.Unmap().WithZone("")
	var out []netip.Prefix
	for _, p := range ifaddrs {
		a := p.Addr().Unmap()
		if a.IsLinkLocalUnicast() || a.IsLoopback() || a.IsMulticast() || a.IsUnspecified() {
			continue
		}
		if listen.IsUnspecified() || a == listen {
			out = append(out, normalizePrefix(p))
		}
	}
	if listen.IsValid() && !listen.IsUnspecified() && !listen.IsLoopback() && len(out) == 0 {
		// Not an interface address (a non-local bind): allow the address itself.
		out = append(out, netip.PrefixFrom(listen, listen.BitLen()))
	}
	return out
}

// interfacePrefixes lists the host's interface addresses with their
// network prefix lengths.
func interfacePrefixes() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}
