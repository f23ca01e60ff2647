package dns

import (
	"net"
	"testing"

	mdns "github.com/miekg/dns"
)

// packWriter packs replies into a reused buffer: the cost a real server pays
// to put the reply on the wire, without a socket.
type packWriter struct {
	recorder
	buf []byte
}

func (w *packWriter) WriteMsg(m *mdns.Msg) error {
	b, err := m.PackBuffer(w.buf)
	w.buf = b[:cap(b)]
	return err
}

func (w *packWriter) RemoteAddr() net.Addr { return benchAddr }

var benchAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}

func BenchmarkServeDNSIntercepted(b *testing.B) {
	s := newTestServer(b, Config{Advertise: addrs("10.0.0.5")})
	q := withEDNS(query("api.openai.com.", mdns.TypeA), 1232)
	w := &packWriter{buf: make([]byte, 0, 512)}
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, q)
	}
}

func BenchmarkServeDNSForwardedCached(b *testing.B) {
	up := startUpstream(b)
	s := newTestServer(b, Config{Upstreams: []string{up.addr}})
	q := withEDNS(query("example.org.", mdns.TypeA), 1232)
	w := &packWriter{buf: make([]byte, 0, 512)}
	s.ServeDNS(w, q) // warm the cache
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, q)
	}
	if up.total() != 1 {
		b.Fatalf("upstream asked %d times, want once", up.total())
	}
}
