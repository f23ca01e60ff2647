package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/agw-dev/agw/gateway/limit/redislimit"
	"github.com/agw-dev/agw/store"
)

// sharedLimiter is a Redis-backed limiter for one replica; replicas made
// with the same prefix share their limits. It skips without a Redis unless
// AGW_E2E_REQUIRE=1.
func sharedLimiter(t *testing.T, url, prefix string) *redislimit.Limiter {
	t.Helper()
	l, err := redislimit.New(context.Background(), redislimit.Config{URL: url, Prefix: prefix, Replicas: func() int { return 2 }, ProbeMin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func testRedisURL(t *testing.T) string {
	u := os.Getenv("AGW_TEST_REDIS")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	l := sharedLimiter(t, u, "agwtest:probe:")
	if l.Degraded() {
		if os.Getenv("AGW_E2E_REQUIRE") == "1" {
			t.Fatalf("Redis at %s is not reachable (AGW_E2E_REQUIRE=1): %s", u, l.Status().Reason)
		}
		t.Skipf("Redis is not reachable (set AGW_TEST_REDIS): %s", l.Status().Reason)
	}
	return u
}

func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "agwtest:gw:" + hex.EncodeToString(b[:]) + ":"
}

// Two gateway replicas limiting through one Redis: a grant of burst 2 lets
// two requests through the pair, not two through each.
func TestSharedGrantLimitAcrossReplicas(t *testing.T) {
	u, p := testRedisURL(t), uniquePrefix()
	grant := withGrant(func(g *store.Grant) { g.Rate = "1/m"; g.Burst = 2 })
	a := newHarness(t, grant, withLimiter(sharedLimiter(t, u, p)))
	b := newHarness(t, grant, withLimiter(sharedLimiter(t, u, p)))
	var codes []int
	for _, h := range []*harness{a, b, a, b} {
		res, _ := h.get("/v1/a", "Authorization", "Bearer "+h.token)
		codes = append(codes, res.StatusCode)
		h.nextAudit()
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("statuses through replicas a, b, a, b: %v; want 200 200 429 429", codes)
	}
}

// With Redis unreachable a replica keeps serving, at its share of the
// limit (burst 2 ÷ 2 replicas = 1), rather than refusing everything.
func TestRedisDownFallsBackToLocalShare(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "redis://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/0"
	ln.Close()
	l := sharedLimiter(t, u, uniquePrefix())
	h := newHarness(t, withGrant(func(g *store.Grant) { g.Rate = "1/m"; g.Burst = 2 }), withLimiter(l))
	var codes []int
	for range 2 {
		res, _ := h.get("/v1/a", "Authorization", "Bearer "+h.token)
		codes = append(codes, res.StatusCode)
		h.nextAudit()
	}
	if codes[0] != 200 || codes[1] != http.StatusTooManyRequests {
		t.Fatalf("statuses with Redis down: %v; want 200 then 429", codes)
	}
	if !l.Degraded() || l.Fallbacks() == 0 {
		t.Fatalf("degraded %v fallbacks %d", l.Degraded(), l.Fallbacks())
	}
}
