package front

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Connection caps: a flood of idle or slow connections must not exhaust
// the gateway's file descriptors and memory. A connection over either cap
// is closed at once, before its TLS handshake, and counted.
const (
	DefaultMaxConns          = 20000
	DefaultMaxConnsPerClient = 512
)

// connCaps counts open connections, in all and per client address (an
// IPv4 address, or an IPv6 /64).
type connCaps struct {
	max, perClient int
	total          atomic.Int64
	mu             sync.Mutex
	byClient       map[netip.Addr]int
	refused        atomic.Uint64
}

// admit takes a slot for c, or reports false when a cap is reached; a true
// result must be paired with a release of the returned connection's Close.
func (cc *connCaps) admit(c net.Conn) (net.Conn, bool) {
	if cc.max <= 0 && cc.perClient <= 0 {
		return c, true
	}
	if cc.max > 0 && cc.total.Add(1) > int64(cc.max) {
		cc.total.Add(-1)
		cc.refused.Add(1)
		return nil, false
	} else if cc.max <= 0 {
		cc.total.Add(1)
	}
	key := clientAddr(c.RemoteAddr())
	if cc.perClient > 0 {
		cc.mu.Lock()
		if cc.byClient == nil {
			cc.byClient = make(map[netip.Addr]int)
		}
		if cc.byClient[key] >= cc.perClient {
			cc.mu.Unlock()
			cc.total.Add(-1)
			cc.refused.Add(1)
			return nil, false
		}
		cc.byClient[key]++
		cc.mu.Unlock()
	}
	return &cappedConn{Conn: c, caps: cc, key: key}, true
}

func (cc *connCaps) release(key netip.Addr) {
	cc.total.Add(-1)
	if cc.perClient > 0 {
		cc.mu.Lock()
		if cc.byClient[key]--; cc.byClient[key] <= 0 {
			delete(cc.byClient, key)
		}
		cc.mu.Unlock()
	}
}

func clientAddr(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// cappedConn gives its slot back when closed, once.
type cappedConn struct {
	net.Conn
	caps *connCaps
	key  netip.Addr
	once sync.Once
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.caps.release(c.key) })
	return err
}
