// Package gateway is the agw daemon: the TLS-terminating credential-swapping
// proxy, the DNS server wiring, the admin API server on the Unix socket, the
// audit writer and their lifecycle. It serves requests from an in-memory view
// of the store that admin writes update after they reach disk.
package gateway

import (
	"log/slog"
	"net/netip"
	"os"
	"time"
)

// Config is what `agw serve` passes to Run. Zero fields take the defaults in
// DESIGN.md (see Defaults).
type Config struct {
	DataDir        string
	Socket         string
	HTTPSListen    string        // "" → default; "off" disables
	DNSListen      string        // "" → default; "off" disables
	AdvertiseIPs   []netip.Addr  // DNS answers; default from HTTPSListen
	UpstreamDNS    []string      // "ip:port"; default the system resolvers
	MetricsListen  string        // "" disables
	AdminGroup     string        // group whose members may use the admin socket
	AuditRetention time.Duration // 0 keeps everything
	Version        string
	Logger         *slog.Logger
	// Ready, when set, is called once every listener is bound.
	Ready func(Listeners)
}

// Listeners are the addresses the daemon bound.
type Listeners struct {
	Admin, HTTPS, DNS, Metrics string
}

// DefaultListeners returns the default HTTPS and DNS listen addresses: the
// privileged ports for root, high loopback ports otherwise.
func DefaultListeners() (https, dns string) {
	if os.Geteuid() == 0 {
		return ":443", ":53"
	}
	return "127.0.0.1:8443", "127.0.0.1:8053"
}
