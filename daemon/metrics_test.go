package daemon

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agw-dev/agw/gateway"
)

func TestMetricsServerHealth(t *testing.T) {
	t.Parallel()
	var readyErr error
	s := &metricsServer{m: gateway.NewMetrics(gateway.MetricSources{}), ready: func(context.Context) error { return readyErr }}
	h := s.handler()
	scrape := func(path string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		body, _ := io.ReadAll(w.Result().Body)
		return w.Code, string(body)
	}
	if code, body := scrape("/metrics"); code != 200 || !strings.Contains(body, "agw_requests_total") && !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics %d", code)
	}
	if code, _ := scrape("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := scrape("/readyz"); code != 200 {
		t.Errorf("/readyz %d", code)
	}
	readyErr = errors.New("store: closed")
	if code, body := scrape("/readyz"); code != 503 || !strings.Contains(body, "store: closed") {
		t.Errorf("/readyz when not ready: %d %q", code, body)
	}
	if code, _ := scrape("/"); code != 404 {
		t.Errorf("/ %d", code)
	}
}
