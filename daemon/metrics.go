package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/agw-dev/agw/gateway"
)

// metricsServer serves /metrics, /healthz (the process is alive) and
// /readyz (ready reports nil when the listeners are up and the store
// answers).
type metricsServer struct {
	m      *gateway.Metrics
	ready  func(ctx context.Context) error
	logger *slog.Logger
}

func (s *metricsServer) handler() http.Handler {
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.m.Handler(s.logger))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// Serve serves the metrics endpoints on ln until ctx is done.
func (s *metricsServer) Serve(ctx context.Context, ln net.Listener) error {
	h := s.handler()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// metricSources reads the daemon's counters. The DNS server and the proxy
// are created after the metrics, so the functions look them up per scrape.
func (d *daemon) metricSources() gateway.MetricSources {
	src := gateway.MetricSources{
		AuditDepth:      d.audit.Depth,
		AuditWritten:    d.audit.Written,
		AuditWriteFails: d.audit.WriteFails,
		AuditLost:       d.audit.Lost,
		TLSRefused: func() uint64 {
			if d.proxy == nil {
				return 0
			}
			return d.proxy.Stats().TLSRefused
		},
		UpstreamErrors: func() uint64 {
			if d.proxy == nil {
				return 0
			}
			return d.proxy.Stats().UpstreamErrs
		},
	}
	src.Conns = func() (int64, uint64) {
		if d.proxy == nil {
			return 0, 0
		}
		return d.proxy.Conns()
	}
	src.JWTVerifications = func() (verified, rejected, unavailable uint64) {
		s := d.jwt.Stats()
		return s.Verified, s.Rejected, s.Unavailable
	}
	src.OAuth2 = func() (fetches, failures, refused, retried uint64) {
		if d.proxy == nil {
			return
		}
		s := d.proxy.OAuth2Stats()
		return s.Fetches, s.Failures, s.Refused, s.Retried
	}
	if d.cfg.DNSListen != "off" {
		src.DNS = func() (q, in, fw, fl, ch, rf uint64) {
			if d.dns == nil {
				return
			}
			s := d.dns.Stats()
			return s.Queries, s.Intercepted, s.Forwarded, s.Failures, s.CacheHits, s.Refused
		}
	}
	return src
}

// ready is /readyz: the listeners are bound (serve binds them all before it
// starts serving any), the daemon is not shutting down, and the store
// answers a read.
func (d *daemon) ready(ctx context.Context) error {
	select {
	case <-d.stopping:
		return errors.New("shutting down")
	default:
	}
	if d.cfg.HTTPSListen != "off" && d.listeners.HTTPS == "" || d.cfg.DNSListen != "off" && d.listeners.DNS == "" {
		return errors.New("listeners not bound")
	}
	if _, err := d.st.LastAuditSeq(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if why := d.health.get(); why != "" {
		return errors.New(why)
	}
	if d.proxy != nil {
		if why := d.proxy.Stale(); why != "" {
			return errors.New(why)
		}
	}
	return nil
}
