package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestDNSAllowList runs agw in a namespace joined to this one by a veth
// pair, so its DNS server sees a query from a real non-loopback address
// (the veth end on this side), and checks who gets an answer.
func TestDNSAllowList(t *testing.T) {
	requireNetns(t)
	tests := []struct {
		name  string
		extra []string
		rcode int
	}{
		// The upstream is a closed port, so an allowed client's forwarded
		// query ends in SERVFAIL: it was served, not refused.
		{name: "default allow serves the listener's network", rcode: mdns.RcodeServerFailure},
		{name: "a client outside --dns-allow is refused", extra: []string{"--dns-allow", "192.0.2.0/24"}, rcode: mdns.RcodeRefused},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNetns(t)
			// 198.18.0.0/15 is reserved for benchmarks: no real network uses it.
			seq := netnsSeq.Load()%60 + int32(i)
			inside := fmt.Sprintf("198.18.%d.1", seq)
			outside := fmt.Sprintf("198.18.%d.2", seq)
			hostEnd := fmt.Sprintf("agwv%d-%d", os.Getpid()%10000, seq)
			n.ip("link", "add", hostEnd, "type", "veth", "peer", "name", "agw0", "netns", n.name)
			t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostEnd).Run() }) // usually gone with the namespace already
			n.ip("addr", "add", outside+"/30", "dev", hostEnd)
			n.ip("link", "set", hostEnd, "up")
			n.ip("-n", n.name, "addr", "add", inside+"/30", "dev", "agw0")
			n.ip("-n", n.name, "link", "set", "agw0", "up")

			e := newEnv(t)
			e.startIn(n, append([]string{"--dns-listen", inside + ":53"}, tt.extra...)...)
			c := &mdns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(outside)}}}
			for _, q := range []struct {
				name  string
				qtype uint16
			}{{unregistered + ".", mdns.TypeA}, {"example.org.", mdns.TypeANY}} {
				m := new(mdns.Msg)
				m.SetQuestion(q.name, q.qtype)
				m.SetEdns0(4096, false)
				var r *mdns.Msg
				var err error
				eventually(t, 10*time.Second, func() bool { // the veth link may take a moment to carry traffic
					r, _, err = c.Exchange(m, inside+":53")
					return err == nil
				})
				want := tt.rcode
				if q.qtype == mdns.TypeANY && want != mdns.RcodeRefused {
					want = mdns.RcodeSuccess // RFC 8482 answer, never forwarded
				}
				if r.Rcode != want {
					t.Errorf("%s %s from %s: rcode %s, want %s", q.name, mdns.TypeToString[q.qtype], outside, mdns.RcodeToString[r.Rcode], mdns.RcodeToString[want])
				}
				if want == mdns.RcodeRefused && (len(r.Answer) != 0 || r.RecursionAvailable) {
					t.Errorf("refused reply carries %v, RA %v: want nothing", r.Answer, r.RecursionAvailable)
				}
			}
		})
	}
}
