package main

import (
	"log/slog"
	"net/netip"
	"reflect"
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
	if cfg.HTTPSListen != "" || cfg.DNSListen != "" || cfg.AdvertiseIPs != nil || cfg.UpstreamDNS != nil || cfg.AuditRetention != 0 {
		t.Errorf("defaults should be left to the daemon: %+v", cfg)
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
