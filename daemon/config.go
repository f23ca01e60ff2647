// Package daemon is `agw serve`: it initialises the data directory, opens
// the store, builds the in-memory state, and runs the HTTPS gateway, the
// DNS server, the admin API, the metrics and health endpoints and audit
// retention until it is told to stop, then drains and flushes.
package daemon

import (
	"log/slog"
	"net/netip"
	"os"
	"time"
)

// Config is what `agw serve` passes to Run. Zero fields take the defaults in
// DESIGN.md (see Defaults).
type Config struct {
	DataDir       string
	Socket        string
	HTTPSListen   string       // "" → default; "off" disables
	DNSListen     string       // "" → default; "off" disables
	AdvertiseIPs  []netip.Addr // DNS answers; default from HTTPSListen
	UpstreamDNS   []string     // "ip:port"; default the system resolvers
	MetricsListen string       // "" disables
	// ProxyListen is the proxy listener's address (HTTP CONNECT and
	// SOCKS5); "" or "off" disables it.
	ProxyListen string
	// ProxyAllow is the client networks the proxy listener serves; empty
	// means loopback and the networks of the addresses agw listens on.
	ProxyAllow     []netip.Prefix
	AdminGroup     string        // group whose members may use the admin socket
	AuditRetention time.Duration // 0 keeps everything
	// FollowMaxLag is how far an audit follow stream may fall behind before
	// it is skipped ahead; 0 takes the default.
	FollowMaxLag uint64
	Version      string
	Logger       *slog.Logger
	// Ready, when set, is called once every listener is bound.
	Ready func(Listeners)
}

// Listeners are the addresses the daemon bound.
type Listeners struct {
	Admin, HTTPS, DNS, Metrics, Proxy string
}

// DefaultListeners returns the default HTTPS and DNS listen addresses: the
// privileged ports for root, high loopback ports otherwise.
func DefaultListeners() (https, dns string) {
	if os.Geteuid() == 0 {
		return ":443", ":53"
	}
	return "127.0.0.1:8443", "127.0.0.1:8053"
}
