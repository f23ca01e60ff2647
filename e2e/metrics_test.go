package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsEndpoint: `agw serve --metrics-listen` serves Prometheus
// metrics that count the traffic, and health and readiness probes.
func TestMetricsEndpoint(t *testing.T) {
	e, _, c, url, tok := limitsSetup(t, "--metrics-listen", "127.0.0.1:0")
	addr := e.status.Listeners.Metrics
	if addr == "" {
		t.Fatal("status lists no metrics listener")
	}
	if !strings.Contains(e.ok("", "status"), addr) {
		t.Error("agw status does not show the metrics listener")
	}
	e.ok("", "grant", "add", "bot", "llm", "--any-method", "--path", "/v1/**")
	for range 3 {
		if st, _, body := getWithToken(t, c, url, tok); st != 200 {
			t.Fatalf("%d %s", st, body)
		}
	}
	if st, _, _ := getWithToken(t, c, strings.Replace(url, "/v1/models", "/admin", 1), tok); st != 403 {
		t.Fatalf("outside the grant: %d", st)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		res, err := hc.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if st, body := get(p); st != 200 {
			t.Errorf("%s: %d %s", p, st, body)
		}
	}
	want := []string{
		`agw_requests_total{agent="bot",backend="llm",decision="allow",status="200"} 3`,
		`agw_requests_total{agent="bot",backend="llm",decision="deny",status="403"} 1`,
		`agw_request_duration_seconds_count{backend="llm"} 4`,
		`agw_upstream_duration_seconds_count{backend="llm"} 3`,
		`agw_rate_limited_total{limit="grant"} 0`,
		`agw_audit_queue_depth`,
		`agw_dns_queries_total`,
		`agw_jwt_verified_total 0`,
		`agw_oauth2_token_fetches_total 0`,
		`process_resident_memory_bytes`,
		`go_goroutines`,
	}
	var body string
	eventually(t, 5*time.Second, func() bool {
		_, body = get("/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	if strings.Contains(body, canary) || strings.Contains(body, tok) {
		t.Error("/metrics contains a credential")
	}
}
