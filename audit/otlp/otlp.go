// Package otlp ships audit records to an OpenTelemetry collector as log
// records over OTLP/HTTP, with the official OTel log exporter. Each record's
// attributes are the fields `agw audit export` prints (store.AuditEvent's
// JSON). It is an audit.Sink, run as a secondary sink of audit.Log, which
// bounds its queue and counts what it drops.
package otlp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/agw-dev/agw/audit"
	"github.com/agw-dev/agw/store"
)

// Sink exports audit records to one collector. Append is called from one
// goroutine at a time (audit.Log's secondary writer).
type Sink struct {
	exp      *otlploghttp.Exporter
	provider *log.LoggerProvider
	logger   otellog.Logger

	mu      sync.Mutex // guards pending
	pending []log.Record
}

var _ audit.Sink = (*Sink)(nil)

// Config configures a Sink.
type Config struct {
	// URL is the collector's OTLP/HTTP logs endpoint, such as
	// http://collector:4318/v1/logs (a URL without a path gets /v1/logs).
	URL string
	// Version is the agw version, reported as service.version.
	Version string
	// Timeout bounds one export (default 10s).
	Timeout time.Duration
}

// New returns a Sink for cfg.URL, or an error naming what is wrong with it.
// It does not contact the collector.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the OTLP URL must be http(s)://host:port[/v1/logs], like http://127.0.0.1:4318/v1/logs")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/logs"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	exp, err := otlploghttp.New(ctx,
		otlploghttp.WithEndpointURL(u.String()),
		otlploghttp.WithTimeout(cfg.Timeout),
		// audit.Log retries a bounded number of times and counts drops;
		// the exporter's own retry would hide failures for minutes.
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
	)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	s := &Sink{exp: exp}
	res := resource.NewSchemaless(semconv.ServiceName("agw"), semconv.ServiceVersion(cfg.Version))
	s.provider = log.NewLoggerProvider(log.WithResource(res), log.WithProcessor(collector{s}))
	s.logger = s.provider.Logger("github.com/agw-dev/agw/audit")
	return s, nil
}

// Name names the sink in logs.
func (s *Sink) Name() string { return "otlp" }

// collector is the provider's processor: it keeps the emitted records for
// Append to export itself, so an export's error reaches Append (the SDK's
// processors would hand it to a global handler and drop the record).
type collector struct{ s *Sink }

func (c collector) OnEmit(_ context.Context, r *log.Record) error {
	c.s.mu.Lock()
	c.s.pending = append(c.s.pending, r.Clone())
	c.s.mu.Unlock()
	return nil
}
func (collector) Enabled(context.Context, log.EnabledParameters) bool { return true }
func (collector) Shutdown(context.Context) error                      { return nil }
func (collector) ForceFlush(context.Context) error                    { return nil }

// Append implements audit.Sink: it exports evs as one OTLP request, or
// returns the collector's error.
func (s *Sink) Append(ctx context.Context, evs []store.AuditEvent) error {
	for i := range evs {
		r, err := Record(&evs[i])
		if err != nil {
			return err
		}
		s.logger.Emit(ctx, r)
	}
	s.mu.Lock()
	recs := s.pending
	s.pending = nil
	s.mu.Unlock()
	if err := s.exp.Export(ctx, recs); err != nil {
		return fmt.Errorf("OTLP export of %d records: %w", len(recs), err)
	}
	return nil
}

// Close shuts the exporter down.
func (s *Sink) Close(ctx context.Context) error {
	_ = s.provider.Shutdown(ctx)
	return s.exp.Shutdown(ctx)
}

// Record is ev as an OTel log record: its time, the body "agw audit
// <kind>", and one attribute per field of its export JSON.
func Record(ev *store.AuditEvent) (otellog.Record, error) {
	var r otellog.Record
	b, err := json.Marshal(ev)
	if err != nil {
		return r, fmt.Errorf("encode audit record: %w", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return r, fmt.Errorf("encode audit record: %w", err)
	}
	r.SetTimestamp(ev.Time)
	r.SetObservedTimestamp(time.Now())
	r.SetEventName("agw.audit." + ev.Kind)
	r.SetBody(otellog.StringValue("agw audit " + ev.Kind))
	sev := otellog.SeverityInfo
	if ev.Decision == "deny" {
		sev = otellog.SeverityWarn
	}
	r.SetSeverity(sev)
	attrs := make([]otellog.KeyValue, 0, len(fields))
	for k, v := range fields {
		attrs = append(attrs, otellog.KeyValue{Key: k, Value: value(v)})
	}
	r.AddAttributes(attrs...)
	return r, nil
}

// value turns a decoded JSON value into an attribute value; whole numbers
// stay integers.
func value(v any) otellog.Value {
	switch v := v.(type) {
	case string:
		return otellog.StringValue(v)
	case bool:
		return otellog.BoolValue(v)
	case float64:
		if v == float64(int64(v)) {
			return otellog.Int64Value(int64(v))
		}
		return otellog.Float64Value(v)
	case nil:
		return otellog.Value{}
	default:
		b, _ := json.Marshal(v)
		return otellog.StringValue(string(b))
	}
}
