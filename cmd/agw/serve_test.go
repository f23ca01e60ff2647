package main

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestServeConfig(t *testing.T) {
	cl := newCLI(t, "/run/test/admin.sock")
	r := cl.run("", "--data-dir", "/var/lib/agw-test", "--log-level", "debug", "serve",
		"--https-listen", "127.0.0.1:0", "--dns-listen", "off",
		"--advertise-ip", "10.0.0.5", "--advertise-ip", "fd00::5",
		"--upstream-dns", "9.9.9.9", "--upstream-dns", "1.1.1.1:5353", "--upstream-dns", "2620:fe::fe", "--upstream-dns", "[2620:fe::9]:53",
		"--metrics-listen", "127.0.0.1:9090", "--admin-group", "agw-admins", "--audit-retention", "90d")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	cfg := cl.served
	if cfg == nil {
		t.Fatal("serve did not call the daemon")
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"DataDir", cfg.DataDir, "/var/lib/agw-test"},
		{"Socket", cfg.Socket, "/run/test/admin.sock"},
		{"HTTPSListen", cfg.HTTPSListen, "127.0.0.1:0"},
		{"DNSListen", cfg.DNSListen, "off"},
		{"AdvertiseIPs", cfg.AdvertiseIPs, []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")}},
		{"UpstreamDNS", cfg.UpstreamDNS, []string{"9.9.9.9:53", "1.1.1.1:5353", "[2620:fe::fe]:53", "[2620:fe::9]:53"}},
		{"MetricsListen", cfg.MetricsListen, "127.0.0.1:9090"},
		{"AdminGroup", cfg.AdminGroup, "agw-admins"},
		{"AuditRetention", cfg.AuditRetention, 90 * 24 * time.Hour},
		{"Version", cfg.Version, version},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if cfg.Logger == nil || cfg.Ready == nil {
		t.Errorf("Logger or Ready not set")
	}
	if !cfg.Logger.Enabled(t.Context(), slog.LevelDebug) {
		t.Errorf("--log-level debug did not enable debug logging")
	}
}

func TestServeDefaults(t *testing.T) {
	cl := newCLI(t, "/run/test/admin.sock")
	if r := cl.run("", "serve"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	cfg := cl.served
	if cfg.HTTPSListen != "" || cfg.UpstreamDNS != nil || cfg.AuditRetention != 0 {
		t.Errorf("defaults should be left to the daemon: %+v", cfg)
	}
	// The DNS listener is never every address: it follows the advertised one.
	if host, _, err := net.SplitHostPort(cfg.DNSListen); err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		t.Errorf("default DNS listener %q is not one address", cfg.DNSListen)
	}
	if cfg.Logger.Enabled(t.Context(), slog.LevelDebug) {
		t.Errorf("debug logging on by default")
	}
}

func TestServeBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"advertise hostname", []string{"--advertise-ip", "gw.example.com"}, "invalid --advertise-ip"},
		{"upstream dns name", []string{"--upstream-dns", "dns.google"}, "invalid --upstream-dns"},
		{"upstream dns port zero", []string{"--upstream-dns", "9.9.9.9:0"}, "1-65535"},
		{"retention words", []string{"--audit-retention", "forever"}, "90d"},
		{"retention negative", []string{"--audit-retention", "-1h"}, "negative"},
		{"log level", []string{"--log-level", "chatty"}, "invalid --log-level"},
		{"log format", []string{"--log-format", "xml"}, "auto, text, json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newCLI(t, "/run/test/admin.sock")
			r := cl.run("", append([]string{"serve"}, c.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 mentioning %q", r.code, r.stderr, c.want)
			}
			if cl.served != nil {
				t.Errorf("the daemon was started")
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"720h", 720 * time.Hour, true},
		{"30s", 30 * time.Second, true},
		{"0", 0, true},
		{"d", 0, false},
		{"-3d", 0, false},
		{"3days", 0, false},
		{"soon", 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseDuration(c.in)
			if (err == nil) != c.ok || got != c.want {
				t.Errorf("parseDuration(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
			}
		})
	}
}

// TestChooseDNSListen: with no --dns-listen, DNS listens on the one address
// its answers advertise, never on every address (which collides with
// systemd-resolved's 127.0.0.53:53 and answers on every interface).
func TestChooseDNSListen(t *testing.T) {
	ip := netip.MustParseAddr
	route := func() (string, netip.Addr, error) { return "eth0", ip("10.1.2.3"), nil }
	noRoute := func() (string, netip.Addr, error) { return "", netip.Addr{}, errors.New("no default route") }
	cases := []struct {
		name          string
		https         string
		advertise     []netip.Addr
		root          bool
		route         defaultRouteFunc
		want          string
		wantAdvertise []netip.Addr
	}{
		{"packaged unit: wildcard 443, not root", ":443", nil, false, route, "10.1.2.3:53", []netip.Addr{ip("10.1.2.3")}},
		{"root defaults", ":443", nil, true, route, "10.1.2.3:53", []netip.Addr{ip("10.1.2.3")}},
		{"v6 wildcard", "[::]:443", nil, false, route, "10.1.2.3:53", []netip.Addr{ip("10.1.2.3")}},
		{"advertised address wins", ":443", []netip.Addr{ip("192.0.2.7"), ip("192.0.2.8")}, false, route, "192.0.2.7:53", nil},
		{"advertised v6", ":443", []netip.Addr{ip("fd00::5")}, false, route, "[fd00::5]:53", nil},
		{"user defaults", "127.0.0.1:8443", nil, false, route, "127.0.0.1:8053", nil},
		{"specific HTTPS address", "10.9.9.9:8443", nil, false, route, "10.9.9.9:8053", nil},
		{"HTTPS off, root", "off", nil, true, route, "10.1.2.3:53", []netip.Addr{ip("10.1.2.3")}},
		{"no default route", ":443", nil, true, noRoute, "127.0.0.1:53", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := chooseDNSListen(c.https, c.advertise, c.root, c.route)
			if got.listen != c.want || !slices.Equal(got.advertise, c.wantAdvertise) || got.why == "" {
				t.Errorf("got %+v; want listen %s, advertise %v", got, c.want, c.wantAdvertise)
			}
		})
	}
}

// TestServeDNSDefaultLogged: the chosen DNS listener and the reason are in
// the log, for an operator wondering why DNS is where it is.
func TestServeDNSDefaultLogged(t *testing.T) {
	cl := newCLI(t, "/run/test/admin.sock")
	cl.route = func() (string, netip.Addr, error) { return "eth0", netip.MustParseAddr("10.1.2.3"), nil }
	r := cl.run("", "serve", "--https-listen", ":443", "--log-format", "text")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if cl.served.DNSListen != "10.1.2.3:53" || !slices.Equal(cl.served.AdvertiseIPs, []netip.Addr{netip.MustParseAddr("10.1.2.3")}) {
		t.Errorf("DNS %q, advertise %v", cl.served.DNSListen, cl.served.AdvertiseIPs)
	}
	if !strings.Contains(r.stderr, "DNS listens on 10.1.2.3:53") || !strings.Contains(r.stderr, "eth0") {
		t.Errorf("log lacks the DNS listener and why:\n%s", r.stderr)
	}
}
