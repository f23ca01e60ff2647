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
	DataDir      string
	Socket       string
	HTTPSListen  string       // "" → default; "off" disables
	DNSListen    string       // "" → default; "off" disables
	AdvertiseIPs []netip.Addr // DNS answers; default from HTTPSListen
	// DNSAllow lists the client networks the DNS server answers (others
	// get REFUSED); loopback is always in it. nil takes dns.DefaultAllow of
	// the DNS listener: loopback plus the networks it listens on.
	DNSAllow      []netip.Prefix
	UpstreamDNS   []string // "ip:port"; default the system resolvers
	MetricsListen string   // "" disables
	// ProxyListen is the proxy listener's address (HTTP CONNECT and
	// SOCKS5); "" or "off" disables it.
	ProxyListen string
	// ProxyAllow is the client networks the proxy listener serves; empty
	// means loopback and the networks of the addresses agw listens on.
	ProxyAllow     []netip.Prefix
	AdminGroup     string        // group whose members may use the admin socket
	AuditRetention time.Duration // 0 takes DefaultAuditRetention; negative keeps everything
	// MaxConns and MaxConnsPerClient cap open agent connections; 0 takes
	// the defaults, negative turns a cap off.
	MaxConns, MaxConnsPerClient int
	// MaxStaleness is how long the in-memory view may go unconfirmed by
	// the store's change feed before agent requests are refused; 0 takes
	// DefaultMaxStaleness, negative turns the check off.
	MaxStaleness time.Duration
	// FollowMaxLag is how far an audit follow stream may fall behind before
	// it is skipped ahead; 0 takes the default.
	FollowMaxLag uint64
	// AuditOTLP, when set, also ships every audit record to this OTLP/HTTP
	// logs endpoint (http://collector:4318/v1/logs).
	AuditOTLP string
	// RateLimitRedis, when set, shares rate limits and concurrency caps
	// with the other replicas through this Redis URL (it may carry a
	// password; it is never logged).
	RateLimitRedis string
	// StoreURL, when set (postgres://...), runs this daemon as one replica
	// of a cluster sharing that database; empty is the single node on
	// Badger in the data directory.
	StoreURL string
	// ClusterIdentity is the cluster identity file (agw cluster init);
	// empty reads $CREDENTIALS_DIRECTORY/cluster-identity.
	ClusterIdentity string
	// ReplicaID names this replica (its audit chain, its membership);
	// empty takes the host name.
	ReplicaID string
	// Replicas is how many replicas share the limits, for the fallback of
	// limit ÷ replicas while Redis is unreachable; nil or < 1 is 1.
	Replicas func() int
	Version  string
	Logger   *slog.Logger
	// Ready, when set, is called once every listener is bound.
	Ready func(Listeners)
}

// DefaultAuditRetention keeps a quarter of a year of audit records: long
// enough for the usual incident review, and bounded, so that what a flood
// of refusals still writes cannot fill the disk for good.
const DefaultAuditRetention = 90 * 24 * time.Hour

// DefaultMaxStaleness: the change feed confirms the view at least every
// second (store.HeartbeatInterval), so five seconds tolerates a few missed
// heartbeats (a busy disk, a database failover in progress) while a
// revocation still cannot be ignored for longer than that.
const DefaultMaxStaleness = 5 * time.Second

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
