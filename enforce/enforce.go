// Package enforce writes the nftables rules that keep agents on agw: their
// traffic may reach agw's DNS, HTTPS and proxy ports and the destinations
// the operator lists, DNS to any other resolver, DNS over TLS and listed
// DNS-over-HTTPS endpoints are dropped, and everything else is rejected.
// It only produces text for `nft -f`; applying it is the caller's job.
package enforce

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Table is the nftables table holding every rule agw installs, so that
// removing it removes exactly those rules.
const (
	Family = "inet"
	Table  = "agw_enforce"
)

// Dest is a destination agents may reach: a network and a TCP/UDP port.
type Dest struct {
	Net  netip.Prefix
	Port uint16
}

// ParseDest reads CIDR:PORT (an address alone stands for its /32 or /128;
// IPv6 in brackets: [fd00::/8]:443).
func ParseDest(s string) (Dest, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Dest{}, fmt.Errorf("destination %q: want CIDR:PORT, like 10.0.0.0/8:5432", s)
	}
	host, ps := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]"), s[i+1:]
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return Dest{}, fmt.Errorf("destination %q: the port must be 1-65535", s)
	}
	p, err := netip.ParsePrefix(host)
	if err != nil {
		a, aerr := netip.ParseAddr(host)
		if aerr != nil {
			return Dest{}, fmt.Errorf("destination %q: %q is neither a network (10.0.0.0/8) nor an address", s, host)
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	return Dest{Net: p.Masked(), Port: uint16(port)}, nil
}

// Config says what agents may reach and which processes are agents.
type Config struct {
	// Gateway is agw's addresses as agents reach them.
	Gateway []netip.Addr
	// DNSPort, HTTPSPort and ProxyPort are agw's ports there; 0 omits one.
	DNSPort, HTTPSPort, ProxyPort uint16
	// Allow lists further destinations agents may reach.
	Allow []Dest
	// DoH lists addresses of DNS-over-HTTPS endpoints, dropped on 443.
	DoH []netip.Addr
	// UIDs and CGroups scope the rules to agent processes (by socket owner
	// or by cgroup v2 path, like "agents.slice/coder.service"); with
	// neither, the rules apply to every process.
	UIDs    []uint32
	CGroups []string
}

// Validate reports what is missing or wrong.
func (c *Config) Validate() error {
	if len(c.Gateway) == 0 {
		return fmt.Errorf("no gateway address: pass --gateway IP, the address agents reach agw at")
	}
	if c.DNSPort == 0 && c.HTTPSPort == 0 && c.ProxyPort == 0 {
		return fmt.Errorf("no gateway port: agents would reach nothing")
	}
	for _, g := range c.CGroups {
		if g == "" || strings.ContainsAny(g, "\"\n\\") || strings.HasPrefix(g, "/") && len(g) == 1 {
			return fmt.Errorf("cgroup %q: give a cgroup v2 path below the root, like agents.slice", g)
		}
	}
	return nil
}

// Rules returns the ruleset for `nft -f`: it creates Table, or replaces it
// atomically when it exists, so applying it twice leaves one copy.
func Rules(c Config) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# agw enforce: agents reach agw and the listed destinations only.")
	w("add table %s %s", Family, Table)
	w("delete table %s %s", Family, Table)
	w("table %s %s {", Family, Table)
	w("\tchain output {")
	w("\t\ttype filter hook output priority filter; policy accept;")
	if len(c.UIDs) == 0 && len(c.CGroups) == 0 {
		w("\t\tjump agents")
	}
	if len(c.UIDs) > 0 {
		uids := make([]string, len(c.UIDs))
		for i, u := range c.UIDs {
			uids[i] = strconv.FormatUint(uint64(u), 10)
		}
		w("\t\tmeta skuid { %s } jump agents", strings.Join(uids, ", "))
	}
	for _, g := range c.CGroups {
		g = strings.Trim(path.Clean("/"+g), "/")
		w("\t\tsocket cgroupv2 level %d %q jump agents", strings.Count(g, "/")+1, g)
	}
	w("\t}")
	w("\tchain agents {")
	// Replies on connections agents did not start (agw answering them
	// when it shares the host) are not agents' egress.
	w("\t\tct state established,related ct direction reply accept")
	gw := addrSets(c.Gateway)
	var tcp []string
	for _, p := range []uint16{c.DNSPort, c.HTTPSPort, c.ProxyPort} {
		if p != 0 && !slices.Contains(tcp, strconv.Itoa(int(p))) {
			tcp = append(tcp, strconv.Itoa(int(p)))
		}
	}
	for _, s := range gw {
		if c.DNSPort != 0 {
			w("\t\t%s daddr %s udp dport %d accept", s.fam, s.set, c.DNSPort)
		}
		w("\t\t%s daddr %s tcp dport { %s } accept", s.fam, s.set, strings.Join(tcp, ", "))
	}
	w("\t\tudp dport { 53, 853 } drop")
	w("\t\ttcp dport { 53, 853 } drop")
	for _, s := range addrSets(c.DoH) {
		w("\t\t%s daddr %s meta l4proto { tcp, udp } th dport 443 drop", s.fam, s.set)
	}
	for _, d := range c.Allow {
		fam := "ip"
		if d.Net.Addr().Is6() {
			fam = "ip6"
		}
		w("\t\t%s daddr %s meta l4proto { tcp, udp } th dport %d accept", fam, d.Net, d.Port)
	}
	w("\t\tmeta l4proto tcp reject with tcp reset")
	w("\t\treject with icmpx type admin-prohibited")
	w("\t}")
	w("}")
	return b.String(), nil
}

type addrSet struct{ fam, set string }

// addrSets groups addresses by family as nft set literals.
func addrSets(as []netip.Addr) []addrSet {
	var v4, v6 []string
	for _, a := range as {
		a = a.Unmap()
		if a.Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	var out []addrSet
	if len(v4) > 0 {
		out = append(out, addrSet{"ip", "{ " + strings.Join(v4, ", ") + " }"})
	}
	if len(v6) > 0 {
		out = append(out, addrSet{"ip6", "{ " + strings.Join(v6, ", ") + " }"})
	}
	return out
}

// Remove is the `nft -f` input that deletes Table, whether or not it
// exists.
func Remove() string {
	return fmt.Sprintf("add table %s %s\ndelete table %s %s\n", Family, Table, Family, Table)
}
