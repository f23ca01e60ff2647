package dns

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func udpFrom(ip string) net.Addr {
	return &net.UDPAddr{IP: net.ParseIP(ip), Port: 33333}
}

func TestServeDNSAllowList(t *testing.T) {
	up := startUpstream(t)
	s := newTestServer(t, Config{
		Upstreams: []string{up.addr},
		Allow:     []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:1::/48")},
	})
	anyQ := query("api.openai.com.", mdns.TypeANY)
	tests := []struct {
		name     string
		remote   net.Addr
		q        *mdns.Msg
		rcode    int
		answers  int
		upstream bool // the upstream must have been asked
	}{
		{name: "allowed IPv4 client is forwarded", remote: udpFrom("192.0.2.9"), q: query("example.org.", mdns.TypeA), answers: 1, upstream: true},
		{name: "allowed IPv6 client is forwarded", remote: udpFrom("2001:db8:1::9"), q: query("example.org.", mdns.TypeAAAA), answers: 1, upstream: true},
		{name: "IPv4 client on a dual-stack socket matches its IPv4 network", remote: udpFrom("::ffff:192.0.2.10"), q: query("www.example.org.", mdns.TypeA), answers: 3, upstream: true},
		{name: "loopback is always allowed", remote: udpFrom("127.0.0.53"), q: query("example.org.", mdns.TypeA), answers: 1},
		{name: "IPv6 loopback is always allowed", remote: &net.TCPAddr{IP: net.IPv6loopback, Port: 1}, q: query("api.openai.com.", mdns.TypeA), answers: 2},
		{name: "allowed client gets the intercepted answer", remote: udpFrom("192.0.2.9"), q: query("api.openai.com.", mdns.TypeA), answers: 2},
		{name: "outside client is refused a forwarded name", remote: udpFrom("198.51.100.7"), q: query("v4only.example.org.", mdns.TypeA), rcode: mdns.RcodeRefused},
		{name: "outside client is refused an intercepted name", remote: udpFrom("198.51.100.7"), q: query("api.openai.com.", mdns.TypeA), rcode: mdns.RcodeRefused},
		{name: "outside client is refused ANY", remote: udpFrom("198.51.100.7"), q: anyQ, rcode: mdns.RcodeRefused},
		{name: "outside client is refused over TCP", remote: &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 1}, q: query("v4only.example.org.", mdns.TypeAAAA), rcode: mdns.RcodeRefused},
		{name: "neighbouring IPv6 network is refused", remote: udpFrom("2001:db8:2::9"), q: query("v4only.example.org.", mdns.TypeA), rcode: mdns.RcodeRefused},
		{name: "mapped address outside the IPv4 list is refused", remote: udpFrom("::ffff:198.51.100.7"), q: query("v4only.example.org.", mdns.TypeA), rcode: mdns.RcodeRefused},
		{name: "non-IP remote address is refused", remote: &net.UnixAddr{Name: "@x", Net: "unix"}, q: query("v4only.example.org.", mdns.TypeA), rcode: mdns.RcodeRefused},
	}
	refused := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qq := tt.q.Question[0]
			before := up.count(qq.Name, qq.Qtype)
			w := &recorder{remote: tt.remote}
			s.ServeDNS(w, tt.q)
			if w.msg == nil {
				t.Fatal("no reply written")
			}
			if w.msg.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[w.msg.Rcode], mdns.RcodeToString[tt.rcode])
			}
			if len(w.msg.Answer) != tt.answers {
				t.Errorf("%d answers, want %d: %v", len(w.msg.Answer), tt.answers, w.msg.Answer)
			}
			if asked := up.count(qq.Name, qq.Qtype) > before; asked != tt.upstream {
				t.Errorf("upstream asked %v, want %v", asked, tt.upstream)
			}
			if tt.rcode == mdns.RcodeRefused {
				refused++
				if w.msg.RecursionAvailable {
					t.Error("REFUSED reply to an outside client claims recursion is available")
				}
			}
		})
	}
	if got := s.Stats().Refused; got != uint64(refused) {
		t.Errorf("Stats().Refused = %d, want %d", got, refused)
	}
	if n := up.count("v4only.example.org.", mdns.TypeA) + up.count("v4only.example.org.", mdns.TypeAAAA); n != 0 {
		t.Errorf("queries from outside clients reached the upstream %d times", n)
	}
}

// With no Allow list only loopback is served: a server built without one
// must not be an open resolver.
func TestServeDNSDefaultAllowIsLoopback(t *testing.T) {
	up := startUpstream(t)
	s := newTestServer(t, Config{Upstreams: []string{up.addr}})
	for _, tt := range []struct {
		remote string
		rcode  int
	}{{"127.0.0.1", mdns.RcodeSuccess}, {"::1", mdns.RcodeSuccess}, {"10.1.2.3", mdns.RcodeRefused}, {"2001:db8::1", mdns.RcodeRefused}} {
		t.Run(tt.remote, func(t *testing.T) {
			w := &recorder{remote: udpFrom(tt.remote)}
			s.ServeDNS(w, query("example.org.", mdns.TypeA))
			if w.msg.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[w.msg.Rcode], mdns.RcodeToString[tt.rcode])
			}
		})
	}
}

func TestParseAllow(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string // beyond loopback
		wantErr string
	}{
		{name: "none is loopback only", in: nil},
		{name: "IPv4 and IPv6 prefixes", in: []string{"10.0.0.0/8", "fd00::/8"}, want: []string{"10.0.0.0/8", "fd00::/8"}},
		{name: "host bits are masked", in: []string{"10.1.2.3/16"}, want: []string{"10.1.0.0/16"}},
		{name: "a bare address is one host", in: []string{"192.0.2.7", "2001:db8::7"}, want: []string{"192.0.2.7/32", "2001:db8::7/128"}},
		{name: "mapped IPv4 prefix means IPv4", in: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{name: "duplicates collapse", in: []string{"10.0.0.0/8", "10.9.9.9/8", "127.0.0.0/8"}, want: []string{"10.0.0.0/8"}},
		{name: "a name is refused", in: []string{"10.0.0.0/8", "lan"}, wantErr: `--dns-allow "lan" is not a network`},
		{name: "a bad length is refused", in: []string{"10.0.0.0/33"}, wantErr: `"10.0.0.0/33"`},
		{name: "a zone is refused", in: []string{"fe80::1%eth0"}, wantErr: `"fe80::1%eth0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAllow(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string{"127.0.0.0/8", "::1/128"}, tt.want...)
			if !samePrefixes(got, want) {
				t.Errorf("ParseAllow(%q) = %v, want %v", tt.in, got, want)
			}
		})
	}
}

func samePrefixes(got []netip.Prefix, want []string) bool {
	g := make([]string, len(got))
	for i, p := range got {
		g[i] = p.String()
	}
	slices.Sort(g)
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func TestDefaultAllowFromInterfaces(t *testing.T) {
	ifaddrs := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("192.168.1.20/24"),
		netip.MustParsePrefix("172.17.0.1/16"), // a container bridge: its agents use agw's DNS
		netip.MustParsePrefix("2001:db8:5::20/64"),
		netip.MustParsePrefix("fe80::1/64"),
	}
	tests := []struct {
		name   string
		listen string
		want   []string
	}{
		{name: "loopback listener serves loopback only", listen: "127.0.0.1", want: nil},
		{name: "an interface address serves its network", listen: "192.168.1.20", want: []string{"192.168.1.0/24"}},
		{name: "an IPv6 interface address serves its network", listen: "2001:db8:5::20", want: []string{"2001:db8:5::/64"}},
		{name: "IPv4 wildcard serves every interface network", listen: "0.0.0.0", want: []string{"192.168.1.0/24", "172.17.0.0/16", "2001:db8:5::/64"}},
		{name: "IPv6 wildcard serves every interface network", listen: "::", want: []string{"192.168.1.0/24", "172.17.0.0/16", "2001:db8:5::/64"}},
		{name: "an address on no interface serves itself", listen: "203.0.113.9", want: []string{"203.0.113.9/32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := newAllowList(defaultAllow(netip.MustParseAddr(tt.listen), ifaddrs))
			if err != nil {
				t.Fatal(err)
			}
			if want := append([]string{"127.0.0.0/8", "::1/128"}, tt.want...); !samePrefixes(l, want) {
				t.Errorf("default allow for %s = %v, want %v", tt.listen, l, want)
			}
		})
	}
}

// On this host, a wildcard listener allows the network of every global
// interface address and a loopback listener nothing but loopback.
func TestDefaultAllowOnThisHost(t *testing.T) {
	lo, err := DefaultAllow(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !samePrefixes(lo, []string{"127.0.0.0/8", "::1/128"}) {
		t.Errorf("DefaultAllow(127.0.0.1) = %v, want loopback only", lo)
	}
	all, err := DefaultAllow(netip.IPv6Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP)
		if ip = ip.Unmap(); ip.IsLinkLocalUnicast() {
			continue
		}
		if !allowList(all).contains(&net.UDPAddr{IP: ipn.IP}) {
			t.Errorf("DefaultAllow(::) = %v does not cover interface address %v", all, ipn)
		}
	}
}
