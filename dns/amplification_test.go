package dns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// hugeUpstream answers "x." TXT with about 16 kB of records, the largest
// answer a forwarder could be handed for the shortest name that can be asked.
func hugeUpstream(t testing.TB) string {
	t.Helper()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if strings.EqualFold(r.Question[0].Name, "x.") {
			for range 64 {
				m.Answer = append(m.Answer, &mdns.TXT{
					Hdr: mdns.RR_Header{Name: "x.", Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: 300},
					Txt: []string{strings.Repeat("a", 250)},
				})
			}
		}
		size := mdns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(mdns.MaxMsgSize, false)
			size = int(opt.UDPSize())
		}
		if _, tcp := w.RemoteAddr().(*net.TCPAddr); !tcp {
			m.Truncate(size) // the forwarder then asks again over TCP and gets it all
		}
		w.WriteMsg(m)
	})
	pc, ln := listenPair(t)
	serveMiekg(t, &mdns.Server{PacketConn: pc, Handler: h, UDPSize: mdns.MaxMsgSize})
	serveMiekg(t, &mdns.Server{Listener: ln, Handler: h})
	return pc.LocalAddr().String()
}

// TestUDPAmplification sends the queries that draw the largest UDP replies
// from a server on loopback and reports query bytes against reply bytes.
// Every reply must fit in 1232 bytes, so the factor is bounded by what the
// shortest possible query costs the sender.
func TestUDPAmplification(t *testing.T) {
	s := newTestServer(t, Config{Upstreams: []string{hugeUpstream(t)},
		Advertise: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "2001:db8::1", "2001:db8::2")})
	pc, ln := listenPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, pc, ln)
	conn, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	do := func(m *mdns.Msg) *mdns.Msg { m.IsEdns0().SetDo(); return m }
	tests := []struct {
		name string
		q    *mdns.Msg
	}{
		{name: "forwarded TXT, EDNS0 buffer 65535, DO", q: do(withEDNS(query("x.", mdns.TypeTXT), mdns.MaxMsgSize))},
		{name: "forwarded TXT, no EDNS0", q: query("x.", mdns.TypeTXT)},
		{name: "ANY, EDNS0 buffer 65535", q: withEDNS(query("x.", mdns.TypeANY), mdns.MaxMsgSize)},
		{name: "intercepted A, EDNS0 buffer 65535", q: withEDNS(query("api.openai.com.", mdns.TypeA), mdns.MaxMsgSize)},
		{name: "intercepted AAAA, EDNS0 buffer 65535", q: withEDNS(query("api.openai.com.", mdns.TypeAAAA), mdns.MaxMsgSize)},
	}
	worst := 0.0
	buf := make([]byte, mdns.MaxMsgSize)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Id = uint16(100 + i)
			b, err := tt.q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			var m mdns.Msg
			if err := m.Unpack(buf[:n]); err != nil || m.Id != tt.q.Id {
				t.Fatalf("reply id %d (err %v), want %d", m.Id, err, tt.q.Id)
			}
			factor := float64(n) / float64(len(b))
			worst = max(worst, factor)
			t.Logf("query %d bytes, reply %d bytes (TC %v): %.1f×", len(b), n, m.Truncated, factor)
			if n > ourUDPSize {
				t.Errorf("UDP reply is %d bytes, want at most %d", n, ourUDPSize)
			}
		})
	}
	t.Logf("worst UDP amplification for an allowed client: %.1f×", worst)
}

// A client outside the allow list gets a REFUSED as long as its query:
// there is nothing to amplify.
func TestUDPAmplificationOutsideClient(t *testing.T) {
	s := newTestServer(t, Config{Upstreams: []string{hugeUpstream(t)}, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, q := range []*mdns.Msg{
		withEDNS(query("x.", mdns.TypeTXT), mdns.MaxMsgSize),
		withEDNS(query("x.", mdns.TypeANY), mdns.MaxMsgSize),
		withEDNS(query("api.openai.com.", mdns.TypeA), mdns.MaxMsgSize),
	} {
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		w := &recorder{remote: udpFrom("198.51.100.7")}
		s.ServeDNS(w, q)
		t.Logf("%s %s: query %d bytes, reply %d bytes (%s)", q.Question[0].Name, mdns.TypeToString[q.Question[0].Qtype], len(b), w.size, mdns.RcodeToString[w.msg.Rcode])
		if w.msg.Rcode != mdns.RcodeRefused || w.size > len(b) {
			t.Errorf("reply %s of %d bytes to a %d-byte query, want REFUSED no larger than the query", mdns.RcodeToString[w.msg.Rcode], w.size, len(b))
		}
	}
}
