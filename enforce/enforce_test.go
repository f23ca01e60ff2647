package enforce

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestRules(t *testing.T) {
	ip := netip.MustParseAddr
	cases := []struct {
		name string
		cfg  Config
	}{
		{"host", Config{Gateway: []netip.Addr{ip("127.0.0.1")}, DNSPort: 53, HTTPSPort: 443}},
		{"scoped", Config{
			Gateway: []netip.Addr{ip("10.0.0.5"), ip("fd00::5")}, DNSPort: 53, HTTPSPort: 443, ProxyPort: 3128,
			Allow: []Dest{{netip.MustParsePrefix("10.1.0.0/16"), 5432}},
			DoH:   []netip.Addr{ip("1.1.1.1"), ip("2606:4700:4700::1111")},
			UIDs:  []uint32{1001, 1002}, CGroups: []string{"agents.slice/coder.service"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Rules(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".nft")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("rules differ from %s (run with -update to accept):\n%s", golden, got)
			}
		})
	}
}

func TestRulesRefuse(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no gateway": {HTTPSPort: 443},
		"no port":    {Gateway: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		"bad cgroup": {Gateway: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, HTTPSPort: 443, CGroups: []string{`a"b`}},
	} {
		if _, err := Rules(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseDest(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8:5432": "10.0.0.0/8:5432", "10.1.2.3:22": "10.1.2.3/32:22", "[fd00::/8]:443": "fd00::/8:443",
		"10.0.0.0/8": "", "host:80": "", "10.0.0.1:0": "", "10.0.0.1:70000": "",
	} {
		d, err := ParseDest(in)
		got := ""
		if err == nil {
			got = d.Net.String() + ":" + strconv.Itoa(int(d.Port))
		}
		if got != want {
			t.Errorf("ParseDest(%q) = %q (%v); want %q", in, got, err, want)
		}
	}
}
