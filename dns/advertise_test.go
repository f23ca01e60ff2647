package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// Taken from a host whose default routes are on eth0, with a Docker bridge
// and a reject route on lo, as /proc shows them.
const (
	procRoute = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
docker0	000011AC	00000000	0001	0	0	0	0000FFFF	0	0	0
wlan0	00000000	0101A8C0	0003	0	0	600	00000000	0	0	0
eth0	00000000	010200C0	0003	0	0	100	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
`
	procIPv6Route = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`
)

func TestDefaultRoute(t *testing.T) {
	if got, err := defaultRoute4(strings.NewReader(procRoute)); err != nil || got != "eth0" {
		t.Errorf("IPv4 default route on %q (%v), want eth0, the lower metric", got, err)
	}
	if got, err := defaultRoute6(strings.NewReader(procIPv6Route)); err != nil || got != "eth0" {
		t.Errorf("IPv6 default route on %q (%v), want eth0, not the reject route on lo", got, err)
	}
	if got, _ := defaultRoute4(strings.NewReader(procRoute[:strings.Index(procRoute, "wlan0")])); got != "" {
		t.Errorf("no default route: got %q", got)
	}
}

func TestDefaultAdvertise(t *testing.T) {
	hostIfaces := map[string][]netip.Addr{
		"lo":      addrs("127.0.0.1", "::1"),
		"eth0":    addrs("192.0.2.10", "fd00::2", "fe80::1"),
		"docker0": addrs("172.17.0.1"),
		"br-1a2b": addrs("172.18.0.1"),
		"wlan0":   addrs("192.168.1.7"),
	}
	routes := func(v4, v6 string) routeReader {
		return func(ipv6 bool) (string, error) {
			if ipv6 {
				return v6, nil
			}
			return v4, nil
		}
	}
	list := func() (map[string][]netip.Addr, error) { return hostIfaces, nil }
	tests := []struct {
		name   string
		listen string
		route  routeReader
		want   []string
		reason string
	}{
		{name: "a specific listener advertises itself", listen: "192.168.1.7", route: routes("eth0", "eth0"), want: []string{"192.168.1.7"}, reason: "listener's address"},
		{name: "IPv4 wildcard: the default route's interface, IPv4 only", listen: "0.0.0.0", route: routes("eth0", "eth0"), want: []string{"192.0.2.10"}, reason: "eth0, which holds the default route"},
		{name: "dual-stack wildcard: both families, no link-local", listen: "::", route: routes("eth0", "eth0"), want: []string{"192.0.2.10", "fd00::2"}, reason: "eth0"},
		{name: "no IPv6 default route: IPv4 only", listen: "::", route: routes("eth0", ""), want: []string{"192.0.2.10"}},
		{name: "a default route on a container bridge is ignored", listen: "0.0.0.0", route: routes("docker0", ""), want: []string{"192.0.2.10", "192.168.1.7"}, reason: "no default route"},
		{name: "no default route: global addresses, no bridges", listen: "0.0.0.0", route: routes("", ""), want: []string{"192.0.2.10", "192.168.1.7"}, reason: "no default route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := defaultAdvertise(netip.MustParseAddr(tt.listen), tt.route, list)
			if s := fmt.Sprint(got); s != fmt.Sprint(addrs(tt.want...)) {
				t.Errorf("advertise %s, want %v", s, tt.want)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q, want it to mention %q", reason, tt.reason)
			}
		})
	}
	got, reason := defaultAdvertise(netip.IPv4Unspecified(), routes("", ""), func() (map[string][]netip.Addr, error) {
		return map[string][]netip.Addr{"lo": addrs("127.0.0.1"), "docker0": addrs("172.17.0.1")}, nil
	})
	if !slices.Equal(got, addrs("127.0.0.1")) || !strings.Contains(reason, "--advertise-ip") {
		t.Errorf("only a bridge: got %v (%q), want loopback and a hint", got, reason)
	}
}

// On this host a wildcard listener never advertises a container bridge's
// address nor a loopback one when a default route exists.
func TestDefaultAdvertiseOnThisHost(t *testing.T) {
	got, reason := DefaultAdvertise(netip.IPv6Unspecified())
	t.Logf("advertise %v: %s", got, reason)
	if len(got) == 0 {
		t.Fatal("no address")
	}
	ifs, err := interfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for name, as := range ifs {
		for _, a := range as {
			if containerBridge(name) && slices.Contains(got, a) {
				t.Errorf("advertises %v of container bridge %s", a, name)
			}
		}
	}
}
