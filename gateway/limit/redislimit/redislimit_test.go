package redislimit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agw-dev/agw/gateway/limit"
)

// redisURL is the shared test server (AGW_TEST_REDIS), skipping when it
// does not answer unless AGW_E2E_REQUIRE=1.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("AGW_TEST_REDIS")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("AGW_TEST_REDIS: %v", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("AGW_E2E_REQUIRE") == "1" {
			t.Fatalf("Redis at %s is not reachable (AGW_E2E_REQUIRE=1): %v", opt.Addr, err)
		}
		t.Skipf("Redis at %s is not reachable (set AGW_TEST_REDIS): %v", opt.Addr, err)
	}
	return u
}

// testPrefix keeps each test's keys apart on the shared server.
func testPrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "agwtest:" + t.Name() + ":" + hex.EncodeToString(b[:]) + ":"
}

func newLimiter(t *testing.T, cfg Config) *Limiter {
	t.Helper()
	l, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Two replicas taking from one 10/s grant admit 10/s between them, not 20.
func TestSharedRateAcrossReplicas(t *testing.T) {
	u, p := redisURL(t), testPrefix(t)
	a := newLimiter(t, Config{URL: u, Prefix: p})
	b := newLimiter(t, Config{URL: u, Prefix: p})
	bk := limit.Bucket{Key: "grant/bot/api", Rate: limit.Rate{PerSecond: 10, Burst: 10}}
	admitted := map[*Limiter]int{}
	// Both replicas offer 100 requests a second each for 10 s of the
	// callers' clock.
	for i := range 2000 {
		now := t0.Add(time.Duration(i) * 5 * time.Millisecond)
		l := a
		if i%2 == 1 {
			l = b
		}
		refused, _, err := l.Take(context.Background(), now, bk)
		if err != nil {
			t.Fatal(err)
		}
		if refused < 0 {
			admitted[l]++
		}
	}
	total := admitted[a] + admitted[b]
	t.Logf("offered 2000 in 10 s through two replicas; admitted %d (a %d, b %d)", total, admitted[a], admitted[b])
	// burst 10 + 10/s × 10 s = 110.
	if total < 105 || total > 112 {
		t.Fatalf("two replicas admitted %d in 10 s of a 10/s burst-10 grant (a %d, b %d); want about 110", total, admitted[a], admitted[b])
	}
	if admitted[a] == 0 || admitted[b] == 0 {
		t.Fatalf("one replica admitted nothing (a %d, b %d)", admitted[a], admitted[b])
	}
	if a.Fallbacks()+b.Fallbacks() != 0 {
		t.Fatalf("decided locally %d times with Redis up", a.Fallbacks()+b.Fallbacks())
	}
}

// A refusal by one bucket takes nothing from the others, on either replica.
func TestTakeAllOrNone(t *testing.T) {
	u, p := redisURL(t), testPrefix(t)
	a := newLimiter(t, Config{URL: u, Prefix: p})
	b := newLimiter(t, Config{URL: u, Prefix: p})
	ctx := context.Background()
	grant := limit.Bucket{Key: "grant/bot/api", Rate: limit.Rate{PerSecond: 1, Burst: 1}}
	agent := limit.Bucket{Key: "agent/bot", Rate: limit.Rate{PerSecond: 1, Burst: 3}}
	if r, _, err := a.Take(ctx, t0, agent, grant); err != nil || r != -1 {
		t.Fatalf("first take: refused %d, %v", r, err)
	}
	for range 5 {
		r, wait, err := b.Take(ctx, t0, agent, grant)
		if err != nil || r != 1 {
			t.Fatalf("grant empty: refused %d, %v; want the grant (1)", r, err)
		}
		if wait <= 0 || wait > time.Second {
			t.Fatalf("wait %v; want (0, 1s]", wait)
		}
	}
	// The agent bucket gave back every token the refusals took: two left.
	for i := range 2 {
		if r, _, err := a.Take(ctx, t0, agent); err != nil || r != -1 {
			t.Fatalf("agent take %d: refused %d, %v", i, r, err)
		}
	}
	if r, _, _ := b.Take(ctx, t0, agent); r != 0 {
		t.Fatalf("agent bucket should now be empty, got refused=%d", r)
	}
	if w, err := a.Wait(ctx, t0, agent); err != nil || w <= 0 {
		t.Fatalf("Wait on an empty bucket: %v, %v", w, err)
	}
	if w, err := a.Wait(ctx, t0.Add(time.Second), agent); err != nil || w != 0 {
		t.Fatalf("Wait a second later: %v, %v; want 0", w, err)
	}
	// A changed rate starts a fresh bucket.
	agent.Rate.Burst = 4
	if r, _, err := b.Take(ctx, t0, agent); err != nil || r != -1 {
		t.Fatalf("changed rate: refused %d, %v; want a fresh bucket", r, err)
	}
}

// Concurrency slots are shared, released once, and a dead replica's come
// back when their lease runs out.
func TestConcurrencyAcrossReplicas(t *testing.T) {
	u, p := redisURL(t), testPrefix(t)
	ctx := context.Background()
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	a := newLimiter(t, Config{URL: u, Prefix: p, Now: now, Lease: time.Minute})
	b := newLimiter(t, Config{URL: u, Prefix: p, Now: now, Lease: time.Minute})
	relA, ok, err := a.Acquire(ctx, "inflight/bot", 2)
	if err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	_, ok, err = b.Acquire(ctx, "inflight/bot", 2)
	if err != nil || !ok {
		t.Fatalf("b: %v %v", ok, err)
	}
	if _, ok, _ := a.Acquire(ctx, "inflight/bot", 2); ok {
		t.Fatal("a third slot of 2 was granted")
	}
	relA()
	relA() // a second release gives nothing back
	if _, ok, _ := b.Acquire(ctx, "inflight/bot", 2); !ok {
		t.Fatal("a released slot did not come back")
	}
	if _, ok, _ := b.Acquire(ctx, "inflight/bot", 2); ok {
		t.Fatal("a double release freed two slots")
	}
	// b "dies" holding both slots: it is closed, so nothing renews them.
	b.Close()
	mu.Lock()
	clock = clock.Add(30 * time.Second)
	mu.Unlock()
	if _, ok, _ := a.Acquire(ctx, "inflight/bot", 2); ok {
		t.Fatal("a slot came back before its lease ran out")
	}
	mu.Lock()
	clock = clock.Add(31 * time.Second)
	mu.Unlock()
	if _, ok, _ := a.Acquire(ctx, "inflight/bot", 2); !ok {
		t.Fatal("a dead replica's slots did not come back after their lease")
	}
	// A live replica's renewed slot outlives the lease.
	mu.Lock()
	clock = clock.Add(45 * time.Second)
	mu.Unlock()
	a.RenewLeases(ctx)
	mu.Lock()
	clock = clock.Add(45 * time.Second)
	mu.Unlock()
	if _, ok, _ := a.Acquire(ctx, "inflight/bot", 1); ok {
		t.Fatal("a renewed slot expired")
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// With Redis unreachable from the start, each of 2 replicas allows half a
// limit, at once, and says why; the password in the URL is never shown.
func TestFallbackWhenUnreachable(t *testing.T) {
	var logs logBuf
	const canary = "canary-pw-7f3a9"
	u := "redis://agw:" + canary + "@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/0"
	l := newLimiter(t, Config{URL: u, Prefix: testPrefix(t), Replicas: func() int { return 2 },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), ProbeMin: time.Hour})
	st := l.Status()
	if !st.Degraded || st.Reason == "" {
		t.Fatalf("status %+v; want degraded with a reason", st)
	}
	bk := limit.Bucket{Key: "agent/bot", Rate: limit.Rate{PerSecond: 10, Burst: 10}}
	start := time.Now()
	admitted := 0
	for range 20 {
		r, _, err := l.Take(context.Background(), t0, bk)
		if err != nil {
			t.Fatal(err)
		}
		if r < 0 {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("admitted %d of a burst of 10 shared by 2 replicas; want 5", admitted)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("20 decisions took %v with Redis down", el)
	}
	rel, ok, err := l.Acquire(context.Background(), "inflight/bot", 4)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer rel()
	_, ok2, _ := l.Acquire(context.Background(), "inflight/bot", 4)
	if _, ok3, _ := l.Acquire(context.Background(), "inflight/bot", 4); !ok2 || ok3 {
		t.Fatalf("local concurrency of 4 ÷ 2: second %v third %v; want true, false", ok2, ok3)
	}
	if l.Fallbacks() != 23 || l.Outages() != 1 {
		t.Fatalf("fallbacks %d outages %d; want 23 and 1", l.Fallbacks(), l.Outages())
	}
	out := logs.String()
	if strings.Count(out, "Redis unreachable") != 1 {
		t.Fatalf("want the outage logged once:\n%s", out)
	}
	if strings.Contains(out, canary) || strings.Contains(st.Reason, canary) {
		t.Fatal("the Redis password appeared in the log or status")
	}
	if _, err := New(context.Background(), Config{URL: "redis://agw:" + canary + "@127.0.0.1:notaport/0"}); err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("bad URL: %v", err)
	}
}

// startRedis runs a private redis-server on port (0: a free one).
func startRedis(t *testing.T, port int) (*exec.Cmd, int) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("AGW_E2E_REQUIRE") == "1" {
			t.Fatal("redis-server is not on PATH (AGW_E2E_REQUIRE=1)")
		}
		t.Skip("redis-server is not on PATH")
	}
	if port == 0 {
		port = closedPort(t)
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not come up")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition: the server's readiness
	}
	return cmd, port
}

func waitChange(t *testing.T, l *Limiter, ch <-chan struct{}, want bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for l.Degraded() != want {
		select {
		case <-ch:
			ch = l.Changed()
		case <-deadline:
			t.Fatalf("degraded stayed %v", !want)
		}
	}
}

// Redis killed under use: decisions go local at once and come back to
// Redis by themselves when it is restarted on the same port.
func TestOutageAndRecovery(t *testing.T) {
	srv, port := startRedis(t, 0)
	u := "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	var logs logBuf
	l := newLimiter(t, Config{URL: u, Prefix: testPrefix(t), Replicas: func() int { return 2 },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), ProbeMin: 10 * time.Millisecond, ProbeMax: 100 * time.Millisecond})
	bk := limit.Bucket{Key: "backend/api", Rate: limit.Rate{PerSecond: 1, Burst: 4}}
	ctx := context.Background()
	if r, _, err := l.Take(ctx, t0, bk); err != nil || r != -1 || l.Degraded() {
		t.Fatalf("with Redis up: %d %v degraded=%v", r, err, l.Degraded())
	}
	ch := l.Changed()
	_ = srv.Process.Kill()
	_ = srv.Wait()
	start := time.Now()
	r, _, err := l.Take(ctx, t0, bk)
	if err != nil || r != -1 {
		t.Fatalf("first take after the kill: %d %v; want a local admit", r, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("the take that found Redis dead took %v", el)
	}
	waitChange(t, l, ch, true)
	// Local share: burst 4 ÷ 2 = 2, one of which the take above used.
	if r, _, _ := l.Take(ctx, t0, bk); r != -1 {
		t.Fatal("second local take refused")
	}
	if r, _, _ := l.Take(ctx, t0, bk); r != 0 {
		t.Fatal("third local take admitted past limit ÷ replicas")
	}
	ch = l.Changed()
	startRedis(t, port)
	waitChange(t, l, ch, false)
	fb := l.Fallbacks()
	if r, _, err := l.Take(ctx, t0, bk); err != nil || r != -1 {
		t.Fatalf("after recovery: %d %v", r, err)
	}
	if l.Fallbacks() != fb {
		t.Fatal("decided locally after recovery")
	}
	out := logs.String()
	if strings.Count(out, "Redis unreachable") != 1 || strings.Count(out, "reachable again") != 1 {
		t.Fatalf("want one outage and one recovery line:\n%s", out)
	}
}
