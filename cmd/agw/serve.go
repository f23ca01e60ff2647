package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/daemon"
	"github.com/agw-dev/agw/dns"
)

type serveFlags struct {
	httpsListen    string
	dnsListen      string
	advertiseIPs   []string
	dnsAllow       []string
	upstreamDNS    []string
	metricsListen  string
	adminGroup     string
	auditRetention time.Duration
	followMaxLag   uint64
	maxStaleness   time.Duration
	maxConns       int
	maxConnsClient int
	logFormat      string
	auditOTLP      string
	rlRedis        string
	rlRedisFile    string
	storeURL       string
	storeFile      string
	clusterID      string
	replicaID      string
	replicas       int
	proxyListen    string
	proxyAllow     []string
}

func (a *app) newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway daemon: DNS, TLS proxy, admin API and metrics",
		Long: `Run the agw daemon in the foreground until SIGINT or SIGTERM, then shut down
gracefully (in-flight requests finish, the audit trail is flushed).
An empty data directory is initialised first. Logs go to stderr.

SIGHUP does not stop the daemon: there is nothing to reload (configuration
changes through the admin API take effect at once, and logs go to stderr,
which needs no reopening), so it is logged and otherwise ignored.`,
		Args:        exactArgs(),
		Annotations: map[string]string{noJSON: "it prints logs, not data; use --log-format json"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.serveConfig(cmd, &f)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			defer ignoreHangups(cfg.Logger)()
			return a.serve(ctx, cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.httpsListen, "https-listen", "", "HTTPS `ADDR` agents connect to (default :443 for root, else 127.0.0.1:8443; \"off\" disables)")
	fl.StringVar(&f.dnsListen, "dns-listen", "", "DNS `ADDR` answering for registered hosts (default: the advertised address, port 53 for root or with HTTPS on 443, else 8053; \"off\" disables)")
	fl.StringArrayVar(&f.advertiseIPs, "advertise-ip", nil, "`IP` that DNS answers point agents at; repeat for several (default the --https-listen address or, when that is a wildcard, the address of the interface holding the default route)")
	fl.StringArrayVar(&f.dnsAllow, "dns-allow", nil, "`CIDR` (or IP) of clients the DNS server answers; repeat for several; loopback always may; others get REFUSED (default loopback plus the networks of the --dns-listen address, every interface's for a wildcard)")
	fl.StringArrayVar(&f.upstreamDNS, "upstream-dns", nil, "resolver `ADDR` (ip or ip:port, port 53 by default) for everything else; repeat for several (default the system's)")
	fl.StringVar(&f.proxyListen, "proxy-listen", "", "`ADDR` of the proxy listener for HTTPS_PROXY clients (HTTP CONNECT and SOCKS5 on one port; default off)")
	fl.StringArrayVar(&f.proxyAllow, "proxy-allow", nil, "client `CIDR` the proxy listener serves; repeat for several (default loopback and the networks of agw's listen addresses)")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "`ADDR` serving Prometheus metrics (default off)")
	fl.StringVar(&f.adminGroup, "admin-group", "", "`GROUP` whose members may use the admin socket (default the daemon's user only)")
	fl.Var(durationValue{&f.auditRetention}, "audit-retention", "drop audit records older than `DUR`, like 90d or 720h; 0 keeps everything (default 90d)")
	fl.Var(durationValue{&f.maxStaleness}, "max-staleness", "refuse agent requests (503) when the store has not confirmed the gateway's configuration current for `DUR` (default 5s)")
	fl.IntVar(&f.maxConns, "max-conns", 0, "close at once agent connections beyond `N` open (default 20000; -1 no cap)")
	fl.IntVar(&f.maxConnsClient, "max-conns-per-client", 0, "close at once connections beyond `N` open from one client address, an IPv4 address or IPv6 /64 (default 512; -1 no cap)")
	fl.Uint64Var(&f.followMaxLag, "audit-follow-max-lag", 0, "`N` records an `audit tail -f` reader may fall behind before it is skipped ahead and told what it missed (default 10000)")
	fl.StringVar(&f.auditOTLP, "audit-otlp", "", "also ship every audit record as an OpenTelemetry log record to the OTLP/HTTP logs endpoint `URL` (http://collector:4318/v1/logs)")
	fl.StringVar(&f.rlRedis, "ratelimit-redis", "", "share rate limits with other replicas through Redis at `URL` (redis://host:port/db; one with a password belongs in --ratelimit-redis-file or $AGW_RATELIMIT_REDIS)")
	fl.StringVar(&f.storeURL, "store", "", "run as one replica of a cluster on the PostgreSQL database at `URL` (postgres://...; default the single-node store in the data directory). A URL with a password belongs in --store-file or $AGW_STORE")
	fl.StringVar(&f.storeFile, "store-file", "", "read the cluster database URL from `FILE` (first line)")
	fl.StringVar(&f.clusterID, "cluster-identity", "", "the cluster identity `FILE` from agw cluster init (default $CREDENTIALS_DIRECTORY/cluster-identity)")
	fl.StringVar(&f.replicaID, "replica-id", "", "this replica's `NAME` in the cluster (default the host name)")
	fl.StringVar(&f.rlRedisFile, "ratelimit-redis-file", "", "read the rate-limit Redis URL from `FILE` (first line), for URLs that carry a password")
	fl.IntVar(&f.replicas, "replicas", 1, "`N` replicas share the rate limits: while Redis is unreachable each allows limit ÷ N")
	fl.Var(newEnumValue(&f.logFormat, "auto", "auto", "text", "json"), "log-format", "log format: text, json, or auto (text on a terminal, json otherwise)")
	_ = cmd.RegisterFlagCompletionFunc("log-format", fixedCompletion("auto", "text", "json"))
	return cmd
}

// serveConfig turns the flags into the daemon's configuration.
func (a *app) serveConfig(cmd *cobra.Command, f *serveFlags) (daemon.Config, error) {
	level, err := parseLogLevel(a.logLevel)
	if err != nil {
		return daemon.Config{}, usagef(cmd, "invalid --log-level %q: %v", a.logLevel, err)
	}
	// The daemon serves its own socket, never the system daemon's that
	// socketPath may fall back to.
	serveSocket, _ := a.ownSocket()
	cfg := daemon.Config{
		DataDir:        a.dataDirPath(),
		Socket:         serveSocket,
		HTTPSListen:    f.httpsListen,
		DNSListen:      f.dnsListen,
		MetricsListen:  f.metricsListen,
		ProxyListen:    f.proxyListen,
		AdminGroup:     f.adminGroup,
		AuditRetention: f.auditRetention,
		// An explicit 0 keeps everything; unset takes the daemon's default.
		FollowMaxLag: f.followMaxLag,
		AuditOTLP:    f.auditOTLP,
		MaxStaleness: f.maxStaleness,
		MaxConns:     f.maxConns,

		MaxConnsPerClient: f.maxConnsClient,
		Version:           version,
		Logger:            newLogger(cmd.ErrOrStderr(), level, f.logFormat),
	}
	if cmd.Flags().Changed("audit-retention") && f.auditRetention == 0 {
		cfg.AuditRetention = -1
	}
	if cfg.StoreURL, err = secretURL("store", f.storeURL, f.storeFile, "AGW_STORE", "postgres://"); err != nil {
		return cfg, usagef(cmd, "%v", err)
	}
	if cfg.StoreURL != "" && !strings.HasPrefix(cfg.StoreURL, "postgres://") && !strings.HasPrefix(cfg.StoreURL, "postgresql://") {
		return cfg, usagef(cmd, "--store: only postgres:// URLs are supported (leave it out for the single-node store)")
	}
	if cfg.StoreURL == "" && (f.clusterID != "" || f.replicaID != "") {
		return cfg, usagef(cmd, "--cluster-identity and --replica-id need --store postgres://...")
	}
	cfg.ClusterIdentity, cfg.ReplicaID = f.clusterID, f.replicaID
	if cfg.RateLimitRedis, err = rateLimitRedisURL(f); err != nil {
		return cfg, usagef(cmd, "%v", err)
	}
	if f.replicas < 1 {
		return cfg, usagef(cmd, "invalid --replicas %d: give 1 or more", f.replicas)
	}
	if cfg.StoreURL == "" || cmd.Flags().Changed("replicas") {
		// In cluster mode the daemon counts the live replicas itself.
		replicas := f.replicas
		cfg.Replicas = func() int { return replicas }
	}
	for _, s := range f.advertiseIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return cfg, usagef(cmd, "invalid --advertise-ip %q: give an IP address like 10.0.0.5 or fd00::5", s)
		}
		cfg.AdvertiseIPs = append(cfg.AdvertiseIPs, ip.Unmap())
	}
	if len(f.dnsAllow) > 0 {
		allow, err := dns.ParseAllow(f.dnsAllow)
		if err != nil {
			return cfg, usagef(cmd, "%v", err)
		}
		cfg.DNSAllow = allow
	}
	if len(f.proxyAllow) > 0 {
		allow, err := dns.ParseAllow(f.proxyAllow)
		if err != nil {
			return cfg, usagef(cmd, "--proxy-allow: %v", err)
		}
		cfg.ProxyAllow = allow
	}
	if len(f.proxyAllow) > 0 && f.proxyListen == "" {
		return cfg, usagef(cmd, "--proxy-allow needs --proxy-listen ADDR")
	}
	for _, s := range f.upstreamDNS {
		ap, err := parseResolver(s)
		if err != nil {
			return cfg, usagef(cmd, "invalid --upstream-dns %q: %v", s, err)
		}
		cfg.UpstreamDNS = append(cfg.UpstreamDNS, ap.String())
	}
	logger := cfg.Logger
	if f.dnsListen == "" {
		https := f.httpsListen
		if https == "" {
			https, _ = daemon.DefaultListeners()
		}
		route := a.defaultRoute
		if route == nil {
			route = routeAddr
		}
		d := chooseDNSListen(https, cfg.AdvertiseIPs, os.Geteuid() == 0, route)
		cfg.DNSListen = d.listen
		if d.advertise != nil {
			cfg.AdvertiseIPs = d.advertise
		}
		logger.Info("DNS listens on "+d.listen+": "+d.why, "dns", d.listen)
	}
	cfg.Ready = func(l daemon.Listeners) {
		logger.Info("agw ready", "admin", l.Admin, "https", l.HTTPS, "dns", l.DNS, "metrics", l.Metrics, "proxy", l.Proxy)
	}
	return cfg, nil
}

// rateLimitRedisURL is the Redis URL from --ratelimit-redis, else
// --ratelimit-redis-file, else $AGW_RATELIMIT_REDIS; "" when none is set.
func rateLimitRedisURL(f *serveFlags) (string, error) {
	return secretURL("ratelimit-redis", f.rlRedis, f.rlRedisFile, "AGW_RATELIMIT_REDIS", "redis://")
}

// secretURL reads a URL that may carry a password: from --NAME (visible to
// every process, so for URLs without one), else the first line of
// --NAME-file, else the environment variable env; "" when none is set.
func secretURL(name, flag, file, env, scheme string) (string, error) {
	switch {
	case flag != "" && file != "":
		return "", fmt.Errorf("give --%s or --%s-file, not both", name, name)
	case flag != "":
		return flag, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read --%s-file: %w", name, err)
		}
		u, _, _ := strings.Cut(string(b), "\n")
		if u = strings.TrimSpace(u); u == "" {
			return "", fmt.Errorf("--%s-file %s is empty: put the %s URL on its first line", name, file, scheme)
		}
		return u, nil
	}
	return os.Getenv(env), nil
}

// ignoreHangups logs and otherwise ignores SIGHUP, which would end the
// process without the graceful shutdown (a closed terminal, a reflexive
// `kill -HUP` meant to reload). It returns the function that stops it.
func ignoreHangups(log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP received: nothing to reload, so the daemon keeps running (configuration changes apply at once; logs go to stderr); stop it with SIGTERM")
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// parseResolver reads "ip" or "ip:port" ("[v6]:port"), port 53 by default.
func parseResolver(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return ap, fmt.Errorf("the port must be 1-65535")
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), 53), nil
	}
	return netip.AddrPort{}, fmt.Errorf("give an IP address, optionally with a port: 9.9.9.9, 9.9.9.9:53 or [2620:fe::fe]:53")
}

func parseLogLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("use debug, info, warn or error")
}

// newLogger logs to w as text on a terminal and JSON otherwise, unless format
// says which.
func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
