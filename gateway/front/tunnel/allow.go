package tunnel

import (
	"net"
	"net/netip"
)

// Allow is the set of client networks the proxy listener serves.
type Allow []netip.Prefix

// Permits reports whether a client at addr (an ip:port net.Addr) may use
// the proxy listener. An address it cannot parse is refused.
func (a Allow) Permits(addr net.Addr) bool {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, p := range a {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
