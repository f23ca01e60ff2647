package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/daemon"
)

type serveFlags struct {
	httpsListen    string
	dnsListen      string
	advertiseIPs   []string
	upstreamDNS    []string
	metricsListen  string
	adminGroup     string
	auditRetention time.Duration
	followMaxLag   uint64
	logFormat      string
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
An empty data directory is initialised first. Logs go to stderr.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.serveConfig(cmd, &f)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.serve(ctx, cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.httpsListen, "https-listen", "", "HTTPS `ADDR` agents connect to (default :443 for root, else 127.0.0.1:8443; \"off\" disables)")
	fl.StringVar(&f.dnsListen, "dns-listen", "", "DNS `ADDR` answering for registered hosts (default :53 for root, else 127.0.0.1:8053; \"off\" disables)")
	fl.StringArrayVar(&f.advertiseIPs, "advertise-ip", nil, "`IP` that DNS answers point agents at; repeat for several (default from --https-listen)")
	fl.StringArrayVar(&f.upstreamDNS, "upstream-dns", nil, "resolver `ADDR` (ip or ip:port, port 53 by default) for everything else; repeat for several (default the system's)")
	fl.StringVar(&f.proxyListen, "proxy-listen", "", "`ADDR` of the proxy listener for HTTPS_PROXY clients (HTTP CONNECT and SOCKS5 on one port; default off)")
	fl.StringArrayVar(&f.proxyAllow, "proxy-allow", nil, "client `CIDR` the proxy listener serves; repeat for several (default loopback and the networks of agw's listen addresses)")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "`ADDR` serving Prometheus metrics (default off)")
	fl.StringVar(&f.adminGroup, "admin-group", "", "`GROUP` whose members may use the admin socket (default the daemon's user only)")
	fl.Var(durationValue{&f.auditRetention}, "audit-retention", "drop audit records older than `DUR`, like 90d or 720h (default keep all)")
	fl.Uint64Var(&f.followMaxLag, "audit-follow-max-lag", 0, "`N` records an `audit tail -f` reader may fall behind before it is skipped ahead and told what it missed (default 10000)")
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
	cfg := daemon.Config{
		DataDir:        a.dataDirPath(),
		Socket:         a.socketPath(),
		HTTPSListen:    f.httpsListen,
		DNSListen:      f.dnsListen,
		MetricsListen:  f.metricsListen,
		ProxyListen:    f.proxyListen,
		AdminGroup:     f.adminGroup,
		AuditRetention: f.auditRetention,
		FollowMaxLag:   f.followMaxLag,
		Version:        version,
		Logger:         newLogger(cmd.ErrOrStderr(), level, f.logFormat),
	}
	for _, s := range f.advertiseIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return cfg, usagef(cmd, "invalid --advertise-ip %q: give an IP address like 10.0.0.5 or fd00::5", s)
		}
		cfg.AdvertiseIPs = append(cfg.AdvertiseIPs, ip.Unmap())
	}
	for _, s := range f.proxyAllow {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ip, ierr := netip.ParseAddr(s)
			if ierr != nil {
				return cfg, usagef(cmd, "invalid --proxy-allow %q: give a network like 10.0.0.0/8 or an address like 10.0.0.5", s)
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		cfg.ProxyAllow = append(cfg.ProxyAllow, p.Masked())
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
	cfg.Ready = func(l daemon.Listeners) {
		logger.Info("agw ready", "admin", l.Admin, "https", l.HTTPS, "dns", l.DNS, "metrics", l.Metrics, "proxy", l.Proxy)
	}
	return cfg, nil
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
