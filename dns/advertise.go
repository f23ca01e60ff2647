package dns

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// DefaultAdvertise picks the addresses DNS answers intercepted names with
// when the operator gave no --advertise-ip, from the HTTPS listener's
// address listen. A specific address is used as is. For a wildcard it is
// the addresses of the interface holding the default route (IPv4 from the
// IPv4 default route; IPv6 too when listen is "::"), never a container
// bridge's; with no default route, the global addresses of the other
// interfaces that are not container bridges; failing all that, 127.0.0.1.
// reason says which, for the start-up log line.
func DefaultAdvertise(listen netip.Addr) (addrs []netip.Addr, reason string) {
	return defaultAdvertise(listen, readRoutes, interfaceAddrs)
}

// routeReader returns the name of the interface holding the default route
// for IPv4 (v6 false) or IPv6, "" when there is none.
type routeReader func(v6 bool) (string, error)

// ifaceLister lists interfaces (by name) with their addresses.
type ifaceLister func() (map[string][]netip.Addr, error)

func defaultAdvertise(listen netip.Addr, route routeReader, ifaces ifaceLister) ([]netip.Addr, string) {
	listen = listen.Unmap()
	if listen.IsValid() && !listen.IsUnspecified() {
		return []netip.Addr{listen}, "the HTTPS listener's address"
	}
	families := []bool{false}
	if !listen.Is4() { // "::" accepts IPv4 and IPv6
		families = append(families, true)
	}
	all, err := ifaces()
	if err != nil {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, fmt.Sprintf("cannot list interfaces (%v): loopback only; set --advertise-ip", err)
	}
	var out []netip.Addr
	var used []string
	for _, v6 := range families {
		name, err := route(v6)
		if err != nil || name == "" || containerBridge(name) {
			continue
		}
		got := false
		for _, a := range all[name] {
			if usable(a) && a.Is6() == v6 {
				out = append(out, a)
				got = true
			}
		}
		if got && (len(used) == 0 || used[len(used)-1] != name) {
			used = append(used, name)
		}
	}
	if len(out) > 0 {
		return out, "addresses of " + strings.Join(used, " and ") + ", which holds the default route"
	}
	for name, as := range all {
		if containerBridge(name) {
			continue
		}
		for _, a := range as {
			if usable(a) && (!a.Is6() || len(families) == 2) {
				out = append(out, a)
			}
		}
	}
	if len(out) > 0 {
		sortAddrs(out)
		return out, "no default route: every global address outside container bridges; set --advertise-ip to choose"
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, "no default route and no global address: loopback only; set --advertise-ip"
}

func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsMulticast() && !a.IsUnspecified()
}

func sortAddrs(as []netip.Addr) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && as[j].Less(as[j-1]); j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}

// containerBridge reports whether an interface name is one container and
// VM managers create (Docker, Podman, CNI, libvirt, LXC/LXD, veth pairs):
// their addresses are reachable only from guests on the host.
func containerBridge(name string) bool {
	for _, p := range []string{"docker", "br-", "veth", "virbr", "cni", "podman", "lxcbr", "lxdbr", "flannel", "cali", "vxlan", "kube"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func readRoutes(v6 bool) (string, error) {
	path := "/proc/net/route"
	if v6 {
		path = "/proc/net/ipv6_route"
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if v6 {
		return defaultRoute6(f)
	}
	return defaultRoute4(f)
}

const (
	rtfUp     = 0x0001
	rtfReject = 0x0200
)

// defaultRoute4 reads /proc/net/route and returns the interface of the
// lowest-metric IPv4 default route that is up.
func defaultRoute4(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	best, bestMetric := "", uint64(1<<63)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) < 8 || f[0] == "Iface" || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		flags, err1 := strconv.ParseUint(f[3], 16, 32)
		metric, err2 := strconv.ParseUint(f[6], 10, 32)
		if err1 != nil || err2 != nil || flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		if metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best, sc.Err()
}

// defaultRoute6 reads /proc/net/ipv6_route and returns the interface of
// the lowest-metric IPv6 default route that is up and not a reject route.
func defaultRoute6(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	best, bestMetric := "", uint64(1<<63)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// dst dst_len src src_len next_hop metric refcnt use flags iface
		if len(f) < 10 || f[0] != strings.Repeat("0", 32) || f[1] != "00" || f[9] == "lo" {
			continue
		}
		metric, err1 := strconv.ParseUint(f[5], 16, 32)
		flags, err2 := strconv.ParseUint(f[8], 16, 32)
		if err1 != nil || err2 != nil || flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		if metric < bestMetric {
			best, bestMetric = f[9], metric
		}
	}
	return best, sc.Err()
}

func interfaceAddrs() (map[string][]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := map[string][]netip.Addr{}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				out[ifc.Name] = append(out[ifc.Name], p.Addr().Unmap())
			}
		}
	}
	return out, nil
}
