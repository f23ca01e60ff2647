package dns

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// SystemResolvers reads the nameserver lines of a resolv.conf file (usually
// /etc/resolv.conf) and returns them as "ip:53", IPv6 in brackets. It fails
// when the file cannot be read or lists no valid nameserver.
func SystemResolvers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read resolvers: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue // comments (# and ;) and other options
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue // resolvers skip what they cannot parse; so do we
		}
		out = append(out, net.JoinHostPort(a.String(), "53"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read resolvers from %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no nameserver: %w; pass the upstream resolvers explicitly", path, ErrNoUpstream)
	}
	return out, nil
}
