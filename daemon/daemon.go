package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/audit"
	"github.com/agw-dev/agw/audit/otlp"
	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/daemon/adminserver"
	"github.com/agw-dev/agw/dns"
	"github.com/agw-dev/agw/gateway"
	"github.com/agw-dev/agw/gateway/auth"
	"github.com/agw-dev/agw/gateway/auth/jwt"
	"github.com/agw-dev/agw/gateway/front/tunnel"
	"github.com/agw-dev/agw/gateway/limit"
	"github.com/agw-dev/agw/gateway/limit/redislimit"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
	"github.com/agw-dev/agw/store/pgstore"
)

// Files and folders inside the data directory.
const (
	IdentityFile = "identity.txt" // the age identity credentials are sealed to
	DBDir        = "db"           // the Badger store
)

// Init creates whatever the data directory lacks: the age identity, the CA
// and the store. created reports whether anything was created. It refuses to
// create a new identity beside data sealed to an old one.
func Init(dataDir string) (created bool, err error) {
	_, _, created, err = initDataDir(dataDir, time.Now())
	if err != nil {
		return false, err
	}
	st, err := badgerstore.Open(filepath.Join(dataDir, DBDir), badgerstore.Options{})
	if err != nil {
		return created, err
	}
	return created, st.Close()
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// initDataDir loads or creates the identity and CA.
func initDataDir(dir string, now time.Time) (*crypto.Keyring, *crypto.CA, bool, error) {
	if dir == "" {
		return nil, nil, false, errors.New("no data directory given")
	}
	created := false
	if !exists(dir) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, false, fmt.Errorf("create data directory: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, nil, false, err
	} else if fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, false, fmt.Errorf("data directory %s is accessible to other users (mode %v): run chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	idPath := filepath.Join(dir, IdentityFile)
	var keys *crypto.Keyring
	if exists(idPath) {
		k, err := crypto.LoadKeyring(idPath)
		if err != nil {
			return nil, nil, false, err
		}
		keys = k
	} else {
		for _, sealed := range []string{crypto.CAKeyFile, DBDir} {
			if exists(filepath.Join(dir, sealed)) {
				return nil, nil, false, fmt.Errorf("%s has %s but no %s: the data sealed there cannot be opened without it; restore %s from backup, or start over with an empty directory", dir, sealed, IdentityFile, IdentityFile)
			}
		}
		k, err := crypto.NewKeyring()
		if err != nil {
			return nil, nil, false, err
		}
		if err := k.Save(idPath); err != nil {
			return nil, nil, false, err
		}
		keys, created = k, true
	}
	var ca *crypto.CA
	var err error
	if exists(filepath.Join(dir, crypto.CACertFile)) || exists(filepath.Join(dir, crypto.CAKeyFile)) {
		ca, err = crypto.LoadCAFiles(dir, keys)
	} else {
		ca, err = crypto.InitCA(dir, keys, now)
		created = true
	}
	if err != nil {
		return nil, nil, false, err
	}
	if !exists(filepath.Join(dir, DBDir)) {
		created = true
	}
	return keys, ca, created, nil
}

// daemon is one running `agw serve`.
type daemon struct {
	cfg       Config
	log       *slog.Logger
	keys      *crypto.Keyring
	ca        *crypto.CA
	st        store.Store
	state     *state.State
	audit     *audit.Log
	proxy     *gateway.Gateway
	jwt       *auth.JWTVerifier
	dns       *dns.Server
	rl        *redislimit.Limiter // nil: limits are this process's own
	advertise []netip.Addr
	started   time.Time
	listeners Listeners
	stopping  chan struct{}
	health    health

	checkpoints *audit.Checkpointer
	closeOnce   sync.Once

	pg        *pgstore.Store // cluster mode; nil for the single node
	membersMu sync.Mutex
	members   []pgstore.Member
}

func (d *daemon) now() time.Time { return time.Now() }

func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = admin.DefaultDataDir()
	}
	if cfg.Socket == "" {
		cfg.Socket = admin.DefaultSocket(cfg.DataDir)
	}
	https, dnsAddr := DefaultListeners()
	if cfg.HTTPSListen == "" {
		cfg.HTTPSListen = https
	}
	if cfg.DNSListen == "" {
		cfg.DNSListen = dnsAddr
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	return cfg
}

// Run initialises the data directory if needed, opens the store and serves
// the admin API, the HTTPS gateway and DNS until ctx is done. Then it stops
// accepting, lets in-flight requests finish, flushes the audit trail and
// closes the store.
func Run(ctx context.Context, cfg Config) error {
	// Everything the daemon creates (Badger's files, the socket, certs) is
	// for its own user only; the admin group is granted explicitly.
	syscall.Umask(0o077)
	cfg = cfg.withDefaults()
	log := cfg.Logger
	var (
		keys *crypto.Keyring
		ca   *crypto.CA
		st   store.Store
		pg   *pgstore.Store
		err  error
	)
	if cfg.StoreURL == "" {
		var created bool
		if keys, ca, created, err = initDataDir(cfg.DataDir, time.Now()); err != nil {
			return err
		}
		if created {
			log.Info("initialised data directory", "dir", cfg.DataDir, "ca", filepath.Join(cfg.DataDir, crypto.CACertFile))
		}
		bs, err := badgerstore.Open(filepath.Join(cfg.DataDir, DBDir), badgerstore.Options{Logger: log})
		if err != nil {
			if errors.Is(err, store.ErrLocked) {
				return fmt.Errorf("another agw serve is using %s (stop it first, or pass a different --data-dir): %w", cfg.DataDir, store.ErrLocked)
			}
			return err
		}
		st = bs
	} else {
		// Cluster mode: the data directory keeps only this replica's own
		// files (audit signing key and checkpoints, last-seen times, the
		// socket) and a copy of the cluster CA's certificate.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		if keys, err = loadClusterIdentity(cfg.ClusterIdentity); err != nil {
			return err
		}
		if pg, ca, err = openCluster(ctx, cfg, keys, log); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(cfg.DataDir, crypto.CACertFile), ca.CertPEM, 0o644); err != nil {
			pg.Close()
			return fmt.Errorf("write the cluster CA certificate: %w", err)
		}
		log.Info("cluster mode", "replica", pg.Replica(), "identity", keys.Recipient())
		st = pg
	}
	defer closeStore(st, log)
	snap, err := st.Load(ctx)
	if err != nil {
		return fmt.Errorf("load store: %w", err)
	}
	sv, err := state.Load(snap, keys)
	if err != nil {
		return err
	}
	d := &daemon{
		cfg:      cfg,
		log:      log,
		keys:     keys,
		ca:       ca,
		st:       st,
		state:    sv,
		started:  time.Now(),
		stopping: make(chan struct{}),
		pg:       pg,
	}
	if pg != nil && d.cfg.Replicas == nil {
		d.cfg.Replicas = d.liveReplicas
	}
	signer, err := audit.LoadOrCreateSigner(filepath.Join(cfg.DataDir, audit.KeyFile))
	if err != nil {
		return err
	}
	d.checkpoints = &audit.Checkpointer{Store: st, Signer: signer, Path: filepath.Join(cfg.DataDir, audit.CheckpointFile), Logger: log}
	var secondary []audit.Sink
	if cfg.AuditOTLP != "" {
		sink, err := otlp.New(ctx, otlp.Config{URL: cfg.AuditOTLP, Version: cfg.Version})
		if err != nil {
			return fmt.Errorf("--audit-otlp: %w", err)
		}
		defer sink.Close(context.WithoutCancel(ctx))
		secondary = append(secondary, sink)
		log.Info("shipping audit records over OTLP", "endpoint", redactedURL(cfg.AuditOTLP))
	}
	d.audit = audit.New(audit.Config{Sink: audit.StoreSink{Store: st}, Logger: log, FollowMaxLag: cfg.FollowMaxLag, Secondary: secondary})
	defer d.closeAudit()
	return d.serve(ctx)
}

// Shutdown bounds: whatever the store does, `agw serve` exits within the
// HTTPS drain (front.DrainTimeout), plus auditCloseWait to write the
// records still queued, plus storeCloseWait for the store to close.
const (
	auditCloseWait = 10 * time.Second
	storeCloseWait = 5 * time.Second
)

// closeAudit writes what is queued, giving up after auditCloseWait when
// the store fails, and says what it could not write; then it checkpoints
// the final head, so that records removed while the daemon is stopped are
// detected too.
func (d *daemon) closeAudit() {
	d.closeOnce.Do(d.closeAuditOnce)
}

func (d *daemon) closeAuditOnce() {
	lost := d.audit.CloseWithin(auditCloseWait)
	if lost > 0 {
		d.log.Error("stopped with audit records unwritten: the store could not take them", "records", lost)
		return
	}
	if d.health.get() == "" {
		if _, err := d.checkpoints.Checkpoint(context.Background(), true); err != nil {
			d.log.Error("final audit checkpoint", "err", err)
		}
	}
}

// closeStore closes st, or gives up after storeCloseWait (a store whose
// storage is gone may retry its flush forever).
func closeStore(st store.Store, log *slog.Logger) {
	done := make(chan error, 1)
	go func() { done <- st.Close() }()
	select {
	case err := <-done:
		if err != nil {
			log.Error("close store", "err", err)
		}
	case <-time.After(storeCloseWait):
		log.Error("the store did not close in time; exiting without it (it recovers from its log at the next start)", "waited", storeCloseWait)
	}
}

func (d *daemon) serve(ctx context.Context) error {
	cfg := d.cfg
	adminAPI, err := adminserver.New(adminserver.Config{
		Store: d.st, State: d.state, Keys: d.keys, CA: d.ca, Audit: d.audit,
		Status: d.status, ExportDNS: d.exportDNS, Stopping: d.stopping,
		AdminGroup: cfg.AdminGroup, Logger: d.log, Checkpoints: d.checkpoints,
	})
	if err != nil {
		return err
	}
	adminLn, err := adminserver.Listen(cfg.Socket, adminAPI.GroupGID())
	if err != nil {
		return err
	}
	defer adminLn.Close()
	d.listeners.Admin = cfg.Socket

	var httpsLn net.Listener
	if cfg.HTTPSListen != "off" {
		if httpsLn, err = net.Listen("tcp", cfg.HTTPSListen); err != nil {
			return fmt.Errorf("listen for HTTPS on %s: %w (pick another address with --https-listen)", cfg.HTTPSListen, err)
		}
		defer httpsLn.Close()
		d.listeners.HTTPS = httpsLn.Addr().String()
	}
	d.advertise = cfg.AdvertiseIPs
	advertiseReason := "--advertise-ip"
	if len(d.advertise) == 0 && httpsLn != nil {
		d.advertise, advertiseReason = dns.DefaultAdvertise(listenIP(httpsLn.Addr()))
	}

	var udp net.PacketConn
	var tcp net.Listener
	if cfg.DNSListen != "off" {
		if udp, tcp, err = listenDNS(cfg.DNSListen, net.ListenPacket); err != nil {
			return err
		}
		defer udp.Close()
		defer tcp.Close()
		d.listeners.DNS = udp.LocalAddr().String()
	}

	var proxyLn net.Listener
	if cfg.ProxyListen != "" && cfg.ProxyListen != "off" {
		if proxyLn, err = net.Listen("tcp", cfg.ProxyListen); err != nil {
			return fmt.Errorf("listen for the proxy listener on %s: %w (pick another address with --proxy-listen)", cfg.ProxyListen, err)
		}
		defer proxyLn.Close()
		d.listeners.Proxy = proxyLn.Addr().String()
	}

	var metricsLn net.Listener
	var m *gateway.Metrics
	if cfg.MetricsListen != "" && cfg.MetricsListen != "off" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("listen for metrics on %s: %w (pick another address with --metrics-listen)", cfg.MetricsListen, err)
		}
		defer metricsLn.Close()
		d.listeners.Metrics = metricsLn.Addr().String()
		m = gateway.NewMetrics(d.metricSources())
	}

	upstreams, err := d.upstreamResolvers()
	if err != nil {
		return err
	}
	resolver := dns.NewResolver(upstreams, d.selfAddrs(), 0)
	// One verifier for the daemon's lifetime: it keeps the IdPs' keys
	// (serving them while an IdP is down) and the verified tokens.
	d.jwt = auth.NewJWTVerifier(d.state, jwt.New(jwt.Config{Logger: d.log, Dial: resolver.DialContext}))
	var limiter limit.Limiter
	if cfg.RateLimitRedis != "" {
		if d.rl, err = redislimit.New(ctx, redislimit.Config{URL: cfg.RateLimitRedis, Replicas: cfg.Replicas, Logger: d.log}); err != nil {
			return fmt.Errorf("--ratelimit-redis: %w", err)
		}
		defer d.rl.Close()
		limiter = d.rl
	}
	d.proxy = gateway.New(gateway.Config{
		Limiter: limiter,
		State:   d.state,
		CA:      d.ca,
		Dial:    resolver.DialContext,
		Audit:   d.audit.Record,
		Logger:  d.log,
		IdP:     d.jwt,
		Metrics: m,

		MaxStaleness:      maxStaleness(cfg.MaxStaleness),
		Unhealthy:         d.health.get,
		MaxConns:          cfg.MaxConns,
		MaxConnsPerClient: cfg.MaxConnsPerClient,
	})
	if udp != nil {
		allow := cfg.DNSAllow
		if allow == nil {
			if allow, err = dns.DefaultAllow(listenIP(udp.LocalAddr())); err != nil {
				d.log.Warn("dns: only loopback may query", "err", err)
			}
		}
		d.log.Info("dns: clients allowed to query", "allow", allow, "from_flag", cfg.DNSAllow != nil)
		if d.dns, err = dns.New(dns.Config{
			Intercept: d.state,
			Advertise: d.advertise,
			Upstreams: upstreams,
			Allow:     allow,
			Logger:    d.log,
		}); err != nil {
			return err
		}
	}

	errc := make(chan error, 4)
	var wg sync.WaitGroup
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	// The view follows the store's change feed until the admin API (whose
	// writes wait for it) has stopped.
	projCtx, stopProjection := context.WithCancel(context.WithoutCancel(ctx))
	projDone := make(chan struct{})
	go func() {
		defer close(projDone)
		_ = (&state.Projector{Store: d.st, Keys: d.keys, State: d.state, Logger: d.log}).Run(projCtx)
	}()
	defer func() { stopProjection(); <-projDone }()
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	start("admin API", func() error { return adminAPI.Serve(adminCtx, adminLn) })
	if httpsLn != nil {
		start("HTTPS gateway", func() error { return d.proxy.Serve(runCtx, httpsLn) })
	}
	if proxyLn != nil {
		allow := tunnel.Allow(cfg.ProxyAllow)
		if len(allow) == 0 {
			allow = defaultProxyAllow(httpsLn, proxyLn, udp)
		}
		d.log.Info("proxy listener on", "addr", d.listeners.Proxy, "allow", allow)
		start("proxy listener", func() error { return d.proxy.ServeProxy(runCtx, proxyLn, allow) })
	}
	if d.dns != nil {
		start("DNS", func() error { return d.dns.Serve(runCtx, udp, tcp) })
	}
	if metricsLn != nil {
		ms := &metricsServer{m: m, ready: d.ready, logger: d.log}
		start("metrics", func() error { return ms.Serve(runCtx, metricsLn) })
	}
	if d.pg != nil {
		go d.watchHealth(runCtx, func(ctx context.Context) error {
			if err := d.pg.Ping(ctx); err != nil {
				return fmt.Errorf("the cluster database does not answer: %w", err)
			}
			return nil
		})
		start("cluster membership", func() error { return d.runMembership(runCtx, d.pg) })
	} else {
		dir := filepath.Join(cfg.DataDir, DBDir)
		go d.watchHealth(runCtx, func(context.Context) error {
			if err := probeDir(dir); err != nil {
				return fmt.Errorf("the storage under the store does not take writes: %w", err)
			}
			return nil
		})
	}
	seen := newLastSeen(cfg.DataDir, d.state, d.log)
	seen.load()
	go seen.run(runCtx)
	keep := cfg.AuditRetention
	if keep == 0 {
		keep = DefaultAuditRetention
	}
	retention := &audit.Retention{Store: d.st, Log: d.audit, Keep: keep, Logger: d.log}
	start("audit retention", func() error { return retention.Run(runCtx) })
	start("audit checkpoints", func() error { return d.checkpoints.Run(runCtx) })

	d.log.Info("agw serving", "version", cfg.Version, "data_dir", cfg.DataDir, "admin", d.listeners.Admin,
		"https", d.listeners.HTTPS, "dns", d.listeners.DNS, "proxy", d.listeners.Proxy, "metrics", d.listeners.Metrics, "advertise", d.advertise, "advertise_reason", advertiseReason, "upstream_dns", upstreams)
	if cfg.Ready != nil {
		cfg.Ready(d.listeners)
	}

	<-runCtx.Done()
	d.log.Info("shutting down: finishing in-flight requests and flushing the audit trail")
	close(d.stopping)
	stopAdmin()
	wg.Wait()
	if err := seen.flush(); err != nil {
		d.log.Warn("last-seen times not saved", "err", err)
	}
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	d.closeAudit()
	d.log.Info("stopped")
	return errors.Join(errs...)
}

// listenIP is the IP a listener is bound to (unspecified for a wildcard).
func listenIP(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// selfAddrs are the gateway's own addresses: an upstream answer pointing at
// one of them would loop back into agw.
func (d *daemon) selfAddrs() []netip.Addr {
	return slices.Clone(d.advertise)
}

// upstreamResolvers returns the configured upstream resolvers, or the
// system's, minus agw's own DNS listener (which would loop).
func (d *daemon) upstreamResolvers() ([]string, error) {
	if len(d.cfg.UpstreamDNS) > 0 {
		return d.cfg.UpstreamDNS, nil
	}
	sys, err := dns.SystemResolvers("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("read system resolvers: %w (pass --upstream-dns)", err)
	}
	var out []string
	for _, u := range sys {
		if u == d.listeners.DNS {
			d.log.Warn("skipping upstream resolver that is agw's own DNS listener", "resolver", u)
			continue
		}
		out = append(out, u)
	}
	if len(out) == 0 && d.listeners.DNS != "" {
		d.log.Warn("no upstream DNS resolvers: forwarded names will fail (pass --upstream-dns)")
	}
	return out, nil
}

func maxStaleness(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultMaxStaleness
	case d < 0:
		return 0
	}
	return d
}

func (d *daemon) status() admin.Status {
	b, a, g, t, p := d.state.Counts(d.now())
	st := admin.Status{
		Version:   d.cfg.Version,
		PID:       os.Getpid(),
		StartedAt: d.started,
		DataDir:   d.cfg.DataDir,
		Listeners: admin.Listeners{
			Admin: d.listeners.Admin, HTTPS: d.listeners.HTTPS,
			DNS: d.listeners.DNS, Metrics: d.listeners.Metrics, Proxy: d.listeners.Proxy,
		},
		Counts:     admin.Counts{Backends: b, Agents: a, Grants: g, Tokens: t, IdPs: p},
		AuditQueue: d.audit.Depth(),
	}
	if d.proxy != nil {
		st.Gateway = d.proxy.Stats()
		st.Stale = d.proxy.Stale()
		if why := d.health.get(); why != "" {
			st.Stale = why
		}
	}
	if d.pg != nil {
		st.Replicas = d.replicaStatus()
	}
	st.Revision = uint64(d.state.Revision())
	st.ConfirmedAt = d.state.ConfirmedAt()
	st.RateLimit.Backend = "local"
	if d.rl != nil {
		rs := d.rl.Status()
		st.RateLimit = admin.RateLimitStatus{Backend: "redis", Degraded: rs.Degraded, Reason: rs.Reason, Fallbacks: d.rl.Fallbacks()}
	}
	if d.dns != nil {
		s := d.dns.Stats()
		st.DNS = admin.DNSStats{Queries: s.Queries, Intercepted: s.Intercepted, Forwarded: s.Forwarded, Failures: s.Failures}
	}
	return st
}

func (d *daemon) exportDNS(w io.Writer, format string) error {
	if len(d.advertise) == 0 {
		return fmt.Errorf("%w: the daemon has no address to advertise (start it with --advertise-ip)", store.ErrConflict)
	}
	if err := dns.Export(w, format, d.state.HostList(), d.advertise, 30); err != nil {
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	return nil
}

// listenDNS opens the DNS server's UDP socket and a TCP listener on the same
// port. With port 0 the system picks the UDP port, and the same TCP port may
// already be taken by someone else; then it tries again with another port,
// a few times, rather than fail. listenPacket is net.ListenPacket.
func listenDNS(addr string, listenPacket func(network, addr string) (net.PacketConn, error)) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for DNS on %s: %w (give host:port to --dns-listen, or 'off')", addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = 10
	}
	for i := 1; ; i++ {
		udp, err := listenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen for DNS on udp %s: %w (pick another address with --dns-listen, or 'off')", addr, err)
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if i == attempts || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen for DNS on tcp %s: %w (pick another address with --dns-listen, or 'off')", udp.LocalAddr(), err)
		}
	}
}

// redactedURL is u with any password replaced, for logs.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
