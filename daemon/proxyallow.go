package daemon

import (
	"net"
	"net/netip"

	"github.com/agw-dev/agw/gateway/front/tunnel"
)

// defaultProxyAllow is the proxy listener's client networks when the
// operator names none: loopback, and the network (interface prefix) of
// each address agw listens on; a listener on every address contributes
// every interface's network. A client elsewhere is refused.
func defaultProxyAllow(lns ...any) tunnel.Allow {
	allow := tunnel.Allow{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	var ifaces []netip.Prefix
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() {
			ifaces = append(ifaces, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked())
		}
	}
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix) {
		if !seen[p] {
			seen[p] = true
			allow = append(allow, p)
		}
	}
	for _, l := range lns {
		var s string
		switch v := l.(type) {
		case net.Listener:
			if v == nil {
				continue
			}
			s = v.Addr().String()
		case net.PacketConn:
			if v == nil {
				continue
			}
			s = v.LocalAddr().String()
		default:
			continue
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			continue
		}
		ip := ap.Addr().Unmap()
		for _, p := range ifaces {
			if ip.IsUnspecified() || p.Contains(ip) {
				add(p)
			}
		}
	}
	return allow
}
