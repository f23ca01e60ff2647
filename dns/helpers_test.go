package dns

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// recorder is a ResponseWriter that keeps the reply, packed and unpacked as
// a real server would send it, so handlers are tested without sockets.
type recorder struct {
	tcp    bool
	remote net.Addr // nil → 127.0.0.1
	msg    *mdns.Msg
	size   int // bytes on the wire
}

var _ mdns.ResponseWriter = (*recorder)(nil)

func (r *recorder) LocalAddr() net.Addr {
	if r.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (r *recorder) RemoteAddr() net.Addr {
	if r.remote != nil {
		return r.remote
	}
	if r.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
}

func (r *recorder) WriteMsg(m *mdns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = r.Write(b)
	return err
}

func (r *recorder) Write(b []byte) (int, error) {
	r.size = len(b)
	r.msg = new(mdns.Msg)
	return len(b), r.msg.Unpack(b)
}

func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// upstream is a resolver on 127.0.0.1 (UDP and TCP on the same port) that
// serves testZone and counts the questions it was asked.
type upstream struct {
	addr  string
	mu    sync.Mutex
	asked map[string]int // "name TYPE" → count, over both transports
}

func (u *upstream) count(name string, qtype uint16) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.asked[strings.ToLower(mdns.Fqdn(name))+" "+mdns.TypeToString[qtype]]
}

func (u *upstream) total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, c := range u.asked {
		n += c
	}
	return n
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{asked: map[string]int{}}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		q := r.Question[0]
		u.mu.Lock()
		u.asked[strings.ToLower(q.Name)+" "+mdns.TypeToString[q.Qtype]]++
		u.mu.Unlock()
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		w.WriteMsg(testZone(r, tcp))
	})
	pc, ln := listenPair(t)
	u.addr = pc.LocalAddr().String()
	serveMiekg(t, &mdns.Server{PacketConn: pc, Handler: h})
	serveMiekg(t, &mdns.Server{Listener: ln, Handler: h})
	return u
}

// listenPair opens UDP and TCP listeners on the same 127.0.0.1 port.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no free UDP+TCP port pair on 127.0.0.1")
	return nil, nil
}

func serveMiekg(t testing.TB, srv *mdns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
}

// testZone answers like a recursive resolver would for a few names.
func testZone(r *mdns.Msg, tcp bool) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	q := r.Question[0]
	soa := mustRR("example.org. 3600 IN SOA ns.example.org. host.example.org. 1 7200 3600 1209600 60")
	switch name := strings.ToLower(q.Name); {
	case name == "fail.example.org.":
		m.Rcode = mdns.RcodeServerFailure
	case name == "example.org." && q.Qtype == mdns.TypeA:
		m.Answer = []mdns.RR{mustRR("example.org. 300 IN A 93.184.216.34")}
	case name == "example.org." && q.Qtype == mdns.TypeAAAA:
		m.Answer = []mdns.RR{mustRR("example.org. 300 IN AAAA 2606:2800:220:1::1")}
	case name == "www.example.org." && (q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeAAAA):
		m.Answer = []mdns.RR{mustRR("www.example.org. 100 IN CNAME example.org.")}
		if q.Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, mustRR("example.org. 300 IN A 93.184.216.34"), mustRR("other.example.org. 300 IN A 6.6.6.6"))
		}
	case name == "api.openai.com.":
		m.Answer = []mdns.RR{mustRR("api.openai.com. 300 IN A 162.159.140.245")}
	case name == "loop.example.org." && q.Qtype == mdns.TypeA:
		m.Answer = []mdns.RR{mustRR("loop.example.org. 300 IN A 10.0.0.5")}
	case name == "v4only.example.org." && q.Qtype == mdns.TypeA:
		m.Answer = []mdns.RR{mustRR("v4only.example.org. 300 IN A 192.0.2.7")}
	case name == "v4only.example.org.":
		m.Ns = []mdns.RR{soa}
	case name == "tc.example.org." && !tcp:
		m.Truncated = true
	case name == "tc.example.org.", name == "big.example.org.":
		for i := range 40 {
			m.Answer = append(m.Answer, mustRR(q.Name+" 300 IN TXT \"record "+strconv.Itoa(i)+" padding padding padding\""))
		}
	default:
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{soa}
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(ourUDPSize, false)
		if !tcp {
			m.Truncate(int(opt.UDPSize()))
		}
	} else if !tcp {
		m.Truncate(mdns.MinMsgSize)
	}
	return m
}

func mustRR(s string) mdns.RR {
	rr, err := mdns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

// deadUpstreams returns a closed port (the kernel refuses at once) and a
// socket that swallows queries (the exchange times out).
func deadUpstreams(t testing.TB) (closed, blackhole string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed = pc.LocalAddr().String()
	pc.Close()
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	return closed, hole.LocalAddr().String()
}

func mustHostSet(t testing.TB, hosts ...string) *HostSet {
	t.Helper()
	s, err := NewHostSet(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// fakeClock is a settable time source for the cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
