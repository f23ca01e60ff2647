package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/limit"
	"github.com/agw-dev/agw/store"
)

// Through the real pipeline: a grant at 2/s burst 1 answers the second
// request at once with 429, Retry-After and an audit record naming the
// limit, and sends nothing upstream.
func TestProxyGrantRateLimited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withGrant(func(g *store.Grant) { g.Rate = "2/s"; g.Burst = 1 }))
	res, body := h.get("/v1/a", "Authorization", "Bearer "+h.token)
	if res.StatusCode != 200 {
		t.Fatalf("first: %d %s", res.StatusCode, body)
	}
	h.nextAudit()
	res, body = h.get("/v1/a", "Authorization", "Bearer "+h.token)
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second: %d %s", res.StatusCode, body)
	}
	if e := agwError(t, body); e.Type != deny.RateLimited {
		t.Errorf("type %q", e.Type)
	}
	if ra := res.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1", ra)
	}
	ev := h.nextAudit()
	if ev.Decision != store.Deny || ev.Reason != "grant rate 2/s" || ev.Status != 429 || ev.Agent != "bot" {
		t.Errorf("audit %+v", ev)
	}
	if n := h.seenCount(); n != 1 {
		t.Errorf("backend saw %d requests, want 1", n)
	}
}

func TestProxyMaxConcurrent(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/slow" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	h.st.PutAgent(store.Agent{Name: "bot", MaxConcurrent: 1})
	done := make(chan int)
	go func() {
		res, _ := h.get("/v1/slow", "Authorization", "Bearer "+h.token)
		done <- res.StatusCode
	}()
	<-entered // the stream is open: its slot is held
	res, body := h.get("/v1/fast", "Authorization", "Bearer "+h.token)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("second concurrent request: %d %s", res.StatusCode, body)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("stream: %d", code)
	}
	// The stream's slot is released when its response finished, which is
	// before its audit record.
	for {
		if ev := h.nextAudit(); ev.Path == "/v1/slow" {
			break
		}
	}
	if res, body := h.get("/v1/fast", "Authorization", "Bearer "+h.token); res.StatusCode != 200 {
		t.Fatalf("after the stream ended: %d %s", res.StatusCode, body)
	}
}

func TestProxyAuthFailuresThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	bad := "agw_" + strings.Repeat("x", 40)
	for i := range limit.AuthFailBurst {
		res, body := h.get("/v1/a", "Authorization", "Bearer "+bad)
		if res.StatusCode != 401 {
			t.Fatalf("attempt %d: %d %s", i, res.StatusCode, body)
		}
	}
	// The same bad credential now waits: the check comes before any lookup.
	res, body := h.get("/v1/a", "Authorization", "Bearer "+bad)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d %s", limit.AuthFailBurst, res.StatusCode, body)
	}
	if e := agwError(t, body); e.Type != deny.RateLimited {
		t.Errorf("type %q", e.Type)
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
	// A valid token from the same address (agents behind one NAT) is never
	// throttled by someone else's failures.
	for i := range 3 {
		if res, body := h.get("/v1/a", "Authorization", "Bearer "+h.token); res.StatusCode != 200 {
			t.Fatalf("valid token, request %d after another's failures: %d %s", i, res.StatusCode, body)
		}
	}
}
