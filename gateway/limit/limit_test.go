package limit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/store"
)

var t0 = time.Unix(1700000000, 0)

func TestEffectiveBurst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate  string
		burst int
		want  int
	}{
		{"10/s", 0, 10},
		{"10/s", 20, 20},
		{"1/s", 0, 1},
		{"60/m", 0, 1},
		{"600/m", 0, 10},
		{"1000/h", 0, 1},
		{"5/m", 3, 3},
	} {
		t.Run(fmt.Sprintf("%s,%d", tc.rate, tc.burst), func(t *testing.T) {
			if got := ParseRate(tc.rate, tc.burst).Burst; got != tc.want {
				t.Errorf("burst = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestAdmitRates(t *testing.T) {
	t.Parallel()
	agent := &store.Agent{Name: "bot"}
	backend := &store.Backend{Name: "api"}
	for _, tc := range []struct {
		name   string
		grant  string
		agent  string
		back   string
		reason string
		kind   string
	}{
		{"grant", "2/s", "", "", "grant rate 2/s", KindGrant},
		{"agent", "", "2/s", "", "agent rate 2/s", KindAgent},
		{"backend", "", "", "2/s", "backend rate 2/s", KindBackend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := NewLocal()
			g := &store.Grant{Agent: "bot", Backend: "api", Rate: tc.grant, Burst: 1}
			a, b := *agent, *backend
			a.Rate, b.Rate = tc.agent, tc.back
			a.Burst, b.Burst = 1, 1
			if !Limited(&a, g, &b) {
				t.Fatal("Limited() = false")
			}
			if _, d, _ := admit(l, &a, g, &b, t0); d != nil {
				t.Fatalf("first request refused: %s", d.Reason)
			}
			_, d, kind := admit(l, &a, g, &b, t0)
			if d == nil {
				t.Fatal("second request at once admitted over 2/s burst 1")
			}
			if d.Status != http.StatusTooManyRequests || d.Type != deny.RateLimited || d.Reason != tc.reason || d.RetryAfter != 1 || kind != tc.kind {
				t.Errorf("denial = %d %s %q retry %d kind %s", d.Status, d.Type, d.Reason, d.RetryAfter, kind)
			}
			// The refusal consumed nothing: half a second later (one token
			// at 2/s) exactly one request passes.
			if _, d, _ := admit(l, &a, g, &b, t0.Add(500*time.Millisecond)); d != nil {
				t.Fatalf("after 500ms refused: %s (the refused request consumed a token)", d.Reason)
			}
			if _, d, _ := admit(l, &a, g, &b, t0.Add(500*time.Millisecond)); d == nil {
				t.Fatal("two requests admitted in 500ms at 2/s")
			}
		})
	}
}

func TestAdmitRetryAfterRoundsUp(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	a := &store.Agent{Name: "bot", Rate: "2/m"} // a token every 30s
	g, b := &store.Grant{}, &store.Backend{}
	admit(l, a, g, b, t0)
	_, d, _ := admit(l, a, g, b, t0.Add(100*time.Millisecond))
	if d == nil || d.RetryAfter != 30 {
		t.Fatalf("denial %+v, want Retry-After 30 (29.9s rounded up)", d)
	}
	if !strings.Contains(d.Message(), "retry after 30s") || !strings.Contains(d.Message(), `agent "bot"`) {
		t.Errorf("message %q", d.Message())
	}
}

// A request refused by a later limit gives back the tokens the earlier
// limits reserved for it.
func TestAdmitCancelsEarlierReservations(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	g := &store.Grant{Agent: "bot", Backend: "api", Rate: "10/s"}
	a := &store.Agent{Name: "bot"}
	b := &store.Backend{Name: "api", Rate: "1/h"}
	if _, d, _ := admit(l, a, g, b, t0); d != nil {
		t.Fatal(d.Reason)
	}
	for range 5 {
		if _, d, kind := admit(l, a, g, b, t0); d == nil || kind != KindBackend {
			t.Fatalf("want a backend refusal, got %v %s", d, kind)
		}
	}
	if got := l.bucket(Bucket{Key: "grant/bot/api", Rate: ParseRate(g.Rate, g.Burst)}).TokensAt(t0); got != 9 {
		t.Errorf("grant tokens = %v, want 9: refused requests kept their grant reservation", got)
	}
}

func TestAdmitLimitChangeTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	g, b := &store.Grant{Agent: "bot", Backend: "api"}, &store.Backend{Name: "api"}
	a := &store.Agent{Name: "bot", Rate: "1/h"}
	admit(l, a, g, b, t0)
	if _, d, _ := admit(l, a, g, b, t0); d == nil {
		t.Fatal("1/h admitted two")
	}
	// An admin write publishes a new agent entry.
	a = &store.Agent{Name: "bot", Rate: "100/s", Burst: 3}
	for i := range 3 {
		if _, d, _ := admit(l, a, g, b, t0); d != nil {
			t.Fatalf("request %d after raising the limit refused: %s", i, d.Reason)
		}
	}
	if _, d, _ := admit(l, a, g, b, t0); d == nil {
		t.Fatal("burst 3 admitted a fourth")
	}
	// Removing the limit: nothing is consulted.
	a = &store.Agent{Name: "bot"}
	if Limited(a, g, b) {
		t.Fatal("Limited() with no limits")
	}
}

func TestAdmitMaxConcurrent(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	a := &store.Agent{Name: "bot", MaxConcurrent: 2}
	g, b := &store.Grant{}, &store.Backend{}
	ad1, d1, _ := admit(l, a, g, b, t0)
	ad2, d2, _ := admit(l, a, g, b, t0)
	if d1 != nil || d2 != nil {
		t.Fatal("refused under the cap")
	}
	_, d, kind := admit(l, a, g, b, t0)
	if d == nil || d.Reason != "agent max concurrent 2" || d.RetryAfter != 1 || kind != KindConcurrency {
		t.Fatalf("third: %+v %s", d, kind)
	}
	ad1.Release()
	ad1.Release() // idempotent
	ad3, d, _ := admit(l, a, g, b, t0)
	if d != nil {
		t.Fatalf("after a release: %s", d.Reason)
	}
	if _, d, _ := admit(l, a, g, b, t0); d == nil {
		t.Fatal("a double release freed two slots")
	}
	ad2.Release()
	ad3.Release()
	if n := inflight(l, "bot"); n != 0 {
		t.Errorf("in flight = %d after every release", n)
	}
}

// A request refused by a rate does not keep its concurrency slot.
func TestAdmitRateRefusalReleasesSlot(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	a := &store.Agent{Name: "bot", MaxConcurrent: 5, Rate: "1/h"}
	g, b := &store.Grant{}, &store.Backend{}
	ad, _, _ := admit(l, a, g, b, t0)
	for range 10 {
		admit(l, a, g, b, t0)
	}
	if n := inflight(l, "bot"); n != 1 {
		t.Fatalf("in flight = %d, want 1", n)
	}
	ad.Release()
}

func TestAdmitConcurrentCallers(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	a := &store.Agent{Name: "bot", Rate: "100/s", Burst: 50}
	g, b := &store.Grant{}, &store.Backend{}
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, d, _ := admit(l, a, g, b, t0); d == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted != 50 {
		t.Errorf("admitted %d at once, want the burst of 50", admitted)
	}
}

// admit is Admit through l, with the refusing limit's kind.
func admit(l *Local, a *store.Agent, g *store.Grant, b *store.Backend, now time.Time) (Admission, *deny.Denial, string) {
	ad, d := Admit(context.Background(), l, a, g, b, now)
	if d == nil {
		return ad, nil, ""
	}
	return ad, d, d.Limit
}

func inflight(l *Local, agent string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.inflight["inflight/"+agent]; c != nil {
		return c.Load()
	}
	return 0
}

// A sweep keeps buckets that still hold information (not refilled) and
// counters in use, and drops the rest.
func TestLocalSweep(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	a := &store.Agent{Name: "bot", Rate: "5/s", MaxConcurrent: 3}
	g := &store.Grant{Agent: "bot", Backend: "api", Rate: "5/s"}
	b := &store.Backend{Name: "api", Rate: "5/s"}
	ad, d, _ := admit(l, a, g, b, t0)
	if d != nil {
		t.Fatal(d.Reason)
	}
	if n := l.Size(); n != 4 {
		t.Fatalf("size = %d, want 4 (grant, agent, backend, counter)", n)
	}
	l.Sweep(t0)
	if n := l.Size(); n != 4 {
		t.Fatalf("sweep dropped live limiters: size %d", n)
	}
	ad.Release()
	l.Sweep(t0.Add(time.Hour))
	if n := l.Size(); n != 0 {
		t.Errorf("size = %d after every bucket refilled and the slot was released, want 0", n)
	}
}

// Without timed sweeps, the maps stay within about twice the buckets in
// use however many keys come and go, and never above the hard cap.
func TestLocalBoundedWithoutTimedSweep(t *testing.T) {
	t.Parallel()
	l := NewLocal()
	now := t0
	l.now = func() time.Time { return now }
	b := &store.Backend{Name: "api"}
	for i := range 5000 {
		now = t0.Add(time.Duration(i) * time.Second)
		a := store.Agent{Name: fmt.Sprintf("agent-%d", i), Rate: "1/s"}
		admit(l, &a, &store.Grant{}, b, now)
	}
	if n := l.Size(); n > 65 {
		t.Errorf("size = %d after 5000 agents one second apart, want ≤ 65", n)
	}
	l2 := NewLocal()
	l2.maxKeys = 100
	l2.now = func() time.Time { return t0 }
	for i := range 10000 {
		l2.Take(context.Background(), t0, Bucket{Key: fmt.Sprint(i), Rate: Rate{PerSecond: 1, Burst: 10}})
	}
	if n := l2.Size(); n > 100 {
		t.Errorf("%d buckets held, want ≤ the cap of 100", n)
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7:4431", "192.0.2.7"},
		{"192.0.2.7:1", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:4431", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::"},
		{"[fe80::1%eth0]:443", "fe80::"},
		{"garbage", "invalid IP"},
	} {
		if got := ClientAddr(tc.in).String(); got != tc.want {
			t.Errorf("ClientAddr(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAuthThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	th := NewAuthThrottle(NewLocal())
	bad, other := CredentialKey("agw_bad"), CredentialKey("agw_other")
	for i := range AuthFailBurst {
		if d := th.Blocked(ctx, bad, t0); d != nil {
			t.Fatalf("blocked after %d failures", i)
		}
		th.Fail(ctx, bad, t0)
	}
	d := th.Blocked(ctx, bad, t0)
	if d == nil || d.Status != http.StatusTooManyRequests || d.Type != deny.RateLimited || d.RetryAfter != 6 || d.Limit != KindAuthFailure {
		t.Fatalf("after %d failures: %+v, want a 429 with Retry-After 6", AuthFailBurst, d)
	}
	if !strings.Contains(d.Message(), "this credential") {
		t.Errorf("message %q does not say what is throttled", d.Message())
	}
	if d := th.Blocked(ctx, other, t0); d != nil {
		t.Error("another credential is blocked")
	}
	if d := th.Blocked(ctx, bad, t0.Add(6*time.Second)); d != nil {
		t.Error("still blocked once a token refilled")
	}
	th.Fail(ctx, bad, t0.Add(6*time.Second))
	if d := th.Blocked(ctx, bad, t0.Add(6*time.Second)); d == nil {
		t.Error("one more failure did not block again")
	}
	addr := AddressKey("192.0.2.7:5000")
	for range AuthFailBurst {
		th.Fail(ctx, addr, t0)
	}
	if d := th.Blocked(ctx, AddressKey("192.0.2.7:6000"), t0); d == nil || !strings.Contains(d.Message(), "without a credential") {
		t.Errorf("requests without a credential from one address: %+v", d)
	}
}

// A limiter that cannot decide refuses: nothing is forwarded unlimited.
func TestAdmitFailsClosed(t *testing.T) {
	t.Parallel()
	a := &store.Agent{Name: "bot", Rate: "5/s"}
	_, d := Admit(context.Background(), brokenLimiter{}, a, &store.Grant{}, &store.Backend{}, t0)
	if d == nil || d.Status != http.StatusServiceUnavailable || d.Type != deny.Unavailable {
		t.Fatalf("Admit with a broken limiter: %+v, want 503 agw_unavailable", d)
	}
	a = &store.Agent{Name: "bot", MaxConcurrent: 1}
	if _, d := Admit(context.Background(), brokenLimiter{}, a, &store.Grant{}, &store.Backend{}, t0); d == nil || d.Status != http.StatusServiceUnavailable {
		t.Fatalf("concurrency with a broken limiter: %+v", d)
	}
	if d := NewAuthThrottle(brokenLimiter{}).Blocked(context.Background(), CredentialKey("x"), t0); d == nil || d.Status != http.StatusServiceUnavailable {
		t.Fatalf("throttle with a broken limiter: %+v", d)
	}
}

type brokenLimiter struct{}

var errBroken = errors.New("limiter unreachable")

func (brokenLimiter) Take(context.Context, time.Time, ...Bucket) (int, time.Duration, error) {
	return 0, 0, errBroken
}
func (brokenLimiter) Wait(context.Context, time.Time, Bucket) (time.Duration, error) {
	return 0, errBroken
}
func (brokenLimiter) Acquire(context.Context, string, int) (func(), bool, error) {
	return nil, false, errBroken
}
