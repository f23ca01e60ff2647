package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

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
			if got := newBucket(tc.rate, tc.burst).lim.Burst(); got != tc.want {
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
		{"grant", "2/s", "", "", "grant rate 2/s", limitGrant},
		{"agent", "", "2/s", "", "agent rate 2/s", limitAgent},
		{"backend", "", "", "2/s", "backend rate 2/s", limitBackend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLimits(nil)
			g := &store.Grant{Agent: "bot", Backend: "api", Rate: tc.grant, Burst: 1}
			a, b := *agent, *backend
			a.Rate, b.Rate = tc.agent, tc.back
			a.Burst, b.Burst = 1, 1
			if !limited(&a, g, &b) {
				t.Fatal("limited() = false")
			}
			if _, d, _ := l.admit(&a, g, &b, t0); d != nil {
				t.Fatalf("first request refused: %s", d.reason)
			}
			_, d, kind := l.admit(&a, g, &b, t0)
			if d == nil {
				t.Fatal("second request at once admitted over 2/s burst 1")
			}
			if d.status != http.StatusTooManyRequests || d.typ != errRateLimited || d.reason != tc.reason || d.retryAfter != 1 || kind != tc.kind {
				t.Errorf("denial = %d %s %q retry %d kind %s", d.status, d.typ, d.reason, d.retryAfter, kind)
			}
			// The refusal consumed nothing: half a second later (one token
			// at 2/s) exactly one request passes.
			if _, d, _ := l.admit(&a, g, &b, t0.Add(500*time.Millisecond)); d != nil {
				t.Fatalf("after 500ms refused: %s (the refused request consumed a token)", d.reason)
			}
			if _, d, _ := l.admit(&a, g, &b, t0.Add(500*time.Millisecond)); d == nil {
				t.Fatal("two requests admitted in 500ms at 2/s")
			}
		})
	}
}

func TestAdmitRetryAfterRoundsUp(t *testing.T) {
	t.Parallel()
	l := newLimits(nil)
	a := &store.Agent{Name: "bot", Rate: "2/m"} // a token every 30s
	g, b := &store.Grant{}, &store.Backend{}
	l.admit(a, g, b, t0)
	_, d, _ := l.admit(a, g, b, t0.Add(100*time.Millisecond))
	if d == nil || d.retryAfter != 30 {
		t.Fatalf("denial %+v, want Retry-After 30 (29.9s rounded up)", d)
	}
	if !strings.Contains(d.message(), "retry after 30s") || !strings.Contains(d.message(), `agent "bot"`) {
		t.Errorf("message %q", d.message())
	}
}

// A request refused by a later limit gives back the tokens the earlier
// limits reserved for it.
func TestAdmitCancelsEarlierReservations(t *testing.T) {
	t.Parallel()
	l := newLimits(nil)
	g := &store.Grant{Agent: "bot", Backend: "api", Rate: "10/s"}
	a := &store.Agent{Name: "bot"}
	b := &store.Backend{Name: "api", Rate: "1/h"}
	if _, d, _ := l.admit(a, g, b, t0); d != nil {
		t.Fatal(d.reason)
	}
	for range 5 {
		if _, d, kind := l.admit(a, g, b, t0); d == nil || kind != limitBackend {
			t.Fatalf("want a backend refusal, got %v %s", d, kind)
		}
	}
	if got := l.grantBucket(g).lim.TokensAt(t0); got != 9 {
		t.Errorf("grant tokens = %v, want 9: refused requests kept their grant reservation", got)
	}
}

func TestAdmitLimitChangeTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	l := newLimits(nil)
	g, b := &store.Grant{Agent: "bot", Backend: "api"}, &store.Backend{Name: "api"}
	a := &store.Agent{Name: "bot", Rate: "1/h"}
	l.admit(a, g, b, t0)
	if _, d, _ := l.admit(a, g, b, t0); d == nil {
		t.Fatal("1/h admitted two")
	}
	// An admin write publishes a new agent entry.
	a = &store.Agent{Name: "bot", Rate: "100/s", Burst: 3}
	for i := range 3 {
		if _, d, _ := l.admit(a, g, b, t0); d != nil {
			t.Fatalf("request %d after raising the limit refused: %s", i, d.reason)
		}
	}
	if _, d, _ := l.admit(a, g, b, t0); d == nil {
		t.Fatal("burst 3 admitted a fourth")
	}
	// Removing the limit: nothing is consulted.
	a = &store.Agent{Name: "bot"}
	if limited(a, g, b) {
		t.Fatal("limited() with no limits")
	}
}

func TestAdmitMaxConcurrent(t *testing.T) {
	t.Parallel()
	l := newLimits(nil)
	a := &store.Agent{Name: "bot", MaxConcurrent: 2}
	g, b := &store.Grant{}, &store.Backend{}
	ad1, d1, _ := l.admit(a, g, b, t0)
	ad2, d2, _ := l.admit(a, g, b, t0)
	if d1 != nil || d2 != nil {
		t.Fatal("refused under the cap")
	}
	_, d, kind := l.admit(a, g, b, t0)
	if d == nil || d.reason != "agent max concurrent 2" || d.retryAfter != 1 || kind != limitConcurrency {
		t.Fatalf("third: %+v %s", d, kind)
	}
	ad1.release()
	ad1.release() // idempotent
	ad3, d, _ := l.admit(a, g, b, t0)
	if d != nil {
		t.Fatalf("after a release: %s", d.reason)
	}
	if _, d, _ := l.admit(a, g, b, t0); d == nil {
		t.Fatal("a double release freed two slots")
	}
	ad2.release()
	ad3.release()
	if n := l.counter("bot").Load(); n != 0 {
		t.Errorf("in flight = %d after every release", n)
	}
}

// A request refused by a rate does not keep its concurrency slot.
func TestAdmitRateRefusalReleasesSlot(t *testing.T) {
	t.Parallel()
	l := newLimits(nil)
	a := &store.Agent{Name: "bot", MaxConcurrent: 5, Rate: "1/h"}
	g, b := &store.Grant{}, &store.Backend{}
	ad, _, _ := l.admit(a, g, b, t0)
	for range 10 {
		l.admit(a, g, b, t0)
	}
	if n := l.counter("bot").Load(); n != 1 {
		t.Fatalf("in flight = %d, want 1", n)
	}
	ad.release()
}

func TestAdmitConcurrentCallers(t *testing.T) {
	t.Parallel()
	l := newLimits(nil)
	a := &store.Agent{Name: "bot", Rate: "100/s", Burst: 50}
	g, b := &store.Grant{}, &store.Backend{}
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, d, _ := l.admit(a, g, b, t0); d == nil {
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

func TestLimitsSweepDropsRemovedObjects(t *testing.T) {
	t.Parallel()
	st := newState()
	st.putAgent(store.Agent{Name: "bot", Rate: "5/s", MaxConcurrent: 3})
	st.putGrant(store.Grant{Agent: "bot", Backend: "api", Rate: "5/s"})
	st.mu.Lock()
	st.backends["api"] = &route{backend: store.Backend{Name: "api", Rate: "5/s"}}
	st.mu.Unlock()
	l := newLimits(st)
	ad, d, _ := l.admit(st.agent("bot"), st.grant("bot", "api"), &st.backend("api").backend, t0)
	if d != nil {
		t.Fatal(d.reason)
	}
	ad.release()
	if n := l.size(); n != 4 {
		t.Fatalf("size = %d, want 4 (grant, agent, backend, counter)", n)
	}
	l.sweep()
	if n := l.size(); n != 4 {
		t.Fatalf("sweep dropped live limiters: size %d", n)
	}
	st.removeGrant("bot", "api")
	st.removeAgent("bot")
	st.removeBackend("api")
	l.sweep()
	if n := l.size(); n != 0 {
		t.Errorf("size = %d after removing everything, want 0", n)
	}
}

// Without timed sweeps, the maps stay within about twice the live limited
// objects however many come and go.
func TestLimitsBoundedWithoutTimedSweep(t *testing.T) {
	t.Parallel()
	st := newState()
	l := newLimits(st)
	b := &store.Backend{Name: "api"}
	for i := range 5000 {
		name := fmt.Sprintf("agent-%d", i)
		a := store.Agent{Name: name, Rate: "1/s"}
		st.putAgent(a)
		l.admit(&a, &store.Grant{}, b, t0)
		st.removeAgent(name)
	}
	if n := l.size(); n > 65 {
		t.Errorf("size = %d after 5000 removed agents, want ≤ 65", n)
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7:4431", "192.0.2.7"},
		{"192.0.2.7:1", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:4431", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::"},
		{"[fe80::1%eth0]:443", "fe80::"},
		{"garbage", "invalid IP"},
	} {
		if got := clientKey(tc.in).String(); got != tc.want {
			t.Errorf("clientKey(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAuthThrottle(t *testing.T) {
	t.Parallel()
	th := newAuthThrottle(0)
	ip := netip.MustParseAddr("192.0.2.7")
	other := netip.MustParseAddr("192.0.2.8")
	for i := range authFailBurst {
		if _, blocked := th.blocked(ip, t0); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		th.fail(ip, t0)
	}
	wait, blocked := th.blocked(ip, t0)
	if !blocked || wait != 6*time.Second {
		t.Fatalf("after %d failures: blocked %v wait %v, want 6s", authFailBurst, blocked, wait)
	}
	if d := authThrottled(wait); d.status != http.StatusTooManyRequests || d.typ != errRateLimited || d.retryAfter != 6 {
		t.Errorf("denial %+v", d)
	}
	if _, blocked := th.blocked(other, t0); blocked {
		t.Error("another address is blocked")
	}
	if _, blocked := th.blocked(ip, t0.Add(6*time.Second)); blocked {
		t.Error("still blocked once a token refilled")
	}
	th.fail(ip, t0.Add(6*time.Second))
	if _, blocked := th.blocked(ip, t0.Add(6*time.Second)); !blocked {
		t.Error("one more failure did not block again")
	}
	th.sweep(t0.Add(time.Hour))
	if n := th.n.Load(); n != 0 {
		t.Errorf("%d entries after a sweep of refilled buckets", n)
	}
}

func TestAuthThrottleBounded(t *testing.T) {
	t.Parallel()
	th := newAuthThrottle(100)
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		th.fail(a, t0.Add(time.Duration(i)*time.Millisecond))
	}
	th.mu.Lock()
	n := len(th.m)
	th.mu.Unlock()
	if n > 100 {
		t.Errorf("%d addresses held, want ≤ 100", n)
	}
}

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
	if e := agwError(t, body); e.Type != errRateLimited {
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
	h.st.putAgent(store.Agent{Name: "bot", MaxConcurrent: 1})
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
	for i := range authFailBurst {
		res, body := h.get("/v1/a", "Authorization", "Bearer "+bad)
		if res.StatusCode != 401 {
			t.Fatalf("attempt %d: %d %s", i, res.StatusCode, body)
		}
	}
	// Now even the right token waits: the check comes before any lookup.
	res, body := h.get("/v1/a", "Authorization", "Bearer "+h.token)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d %s", authFailBurst, res.StatusCode, body)
	}
	if e := agwError(t, body); e.Type != errRateLimited {
		t.Errorf("type %q", e.Type)
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
}
