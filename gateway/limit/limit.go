package gateway

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/agw-dev/agw/store"
)

// Limit kinds, as rate-limit hits are counted in metrics.
const (
	limitGrant       = "grant"
	limitAgent       = "agent"
	limitBackend     = "backend"
	limitConcurrency = "concurrency"
	limitAuthFailure = "auth_failure"
)

// limits holds the token buckets of grants, agents and backends and the
// in-flight counters of agents with a concurrency cap.
//
// A bucket is keyed by its object's name and remembers the Rate and Burst it
// was built from: when an admin write changes them, the next request builds
// a new bucket, so a changed limit takes effect at once (and starts with a
// full bucket). Buckets of removed objects, or of objects whose limit was
// removed, are dropped by sweep, which runs when the maps have doubled since
// the last sweep and once a minute (see run); the maps therefore hold at most
// about twice the live limited objects.
//
// Objects without a limit never reach the maps: the request path checks the
// fields first and allocates nothing for them.
type limits struct {
	mu        sync.Mutex
	grants    map[grantKey]*bucket
	agents    map[string]*bucket
	backends  map[string]*bucket
	inflight  map[string]*atomic.Int64
	sweptSize int // entries left by the last sweep
	sweeps    atomic.Uint64
	state     *state
}

// bucket is one object's token bucket and the limit it was built from.
type bucket struct {
	rate  string
	burst int
	lim   *rate.Limiter
}

func newLimits(st *state) *limits {
	return &limits{
		grants:   map[grantKey]*bucket{},
		agents:   map[string]*bucket{},
		backends: map[string]*bucket{},
		inflight: map[string]*atomic.Int64{},
		state:    st,
	}
}

// effectiveBurst is the bucket size for a rate: the configured burst, or by
// default one second's worth of requests and at least one (10/s → 10,
// 60/m → 1, 1000/h → 1). A burst of one keeps slow rates evenly spaced.
func effectiveBurst(perSecond float64, burst int) int {
	if burst > 0 {
		return burst
	}
	return max(1, int(math.Ceil(perSecond)))
}

func newBucket(r string, burst int) *bucket {
	perSecond, err := store.ParseRate(r)
	if err != nil || perSecond <= 0 {
		// Validated on write; an unparsable stored rate must not open the
		// gate wide, so it allows one request an hour.
		perSecond = 1.0 / 3600
	}
	return &bucket{rate: r, burst: burst, lim: rate.NewLimiter(rate.Limit(perSecond), effectiveBurst(perSecond, burst))}
}

// limited reports whether any limit applies to a request: the common case
// of no limits costs four field reads.
func limited(a *store.Agent, g *store.Grant, b *store.Backend) bool {
	return g.Rate != "" || a.Rate != "" || b.Rate != "" || a.MaxConcurrent > 0
}

// admission is what admit took for a request: the in-flight slot to give
// back when the response is finished (nil: none).
type admission struct {
	slot *atomic.Int64
}

// release gives back the in-flight slot, once.
func (ad *admission) release() {
	if ad.slot != nil {
		ad.slot.Add(-1)
		ad.slot = nil
	}
}

// admit applies the agent's concurrency cap and the grant, agent and backend
// rates to a request at now. Each bucket is asked for a reservation; when one
// of them has no token, every reservation made for this request is
// cancelled, so a refused request consumes nothing, and the refusal names
// the limit with the wait until it has room.
func (l *limits) admit(a *store.Agent, g *store.Grant, b *store.Backend, now time.Time) (admission, *denial, string) {
	var ad admission
	if a.MaxConcurrent > 0 {
		c := l.counter(a.Name)
		if c.Add(1) > int64(a.MaxConcurrent) {
			c.Add(-1)
			return ad, rateLimited(fmt.Sprintf("agent max concurrent %d", a.MaxConcurrent),
				fmt.Sprintf("agent %q already has %d requests in flight", a.Name, a.MaxConcurrent), time.Second), limitConcurrency
		}
		ad.slot = c
	}
	var held [3]*rate.Reservation
	n := 0
	// refused reserves a token; without one it cancels every reservation
	// made for this request and returns the wait.
	refused := func(bk *bucket) time.Duration {
		r := bk.lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 || !r.OK() {
			r.CancelAt(now)
			for _, h := range held[:n] {
				h.CancelAt(now)
			}
			ad.release()
			return max(d, time.Nanosecond)
		}
		held[n] = r
		n++
		return 0
	}
	if g.Rate != "" {
		if d := refused(l.grantBucket(g)); d > 0 {
			return ad, rateLimited("grant rate "+g.Rate, fmt.Sprintf("agent %q on backend %q", g.Agent, g.Backend), d), limitGrant
		}
	}
	if a.Rate != "" {
		if d := refused(l.agentBucket(a)); d > 0 {
			return ad, rateLimited("agent rate "+a.Rate, fmt.Sprintf("agent %q across all backends", a.Name), d), limitAgent
		}
	}
	if b.Rate != "" {
		if d := refused(l.backendBucket(b)); d > 0 {
			return ad, rateLimited("backend rate "+b.Rate, fmt.Sprintf("backend %q across all agents", b.Name), d), limitBackend
		}
	}
	return ad, nil, ""
}

// rateLimited is a 429 naming the limit (reason, for the audit) and whose
// limit it is (for the agent), with Retry-After in whole seconds rounded up.
func rateLimited(reason, who string, wait time.Duration) *denial {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &denial{
		status:     http.StatusTooManyRequests,
		typ:        errRateLimited,
		reason:     reason,
		msg:        "rate limited by the agw gateway: " + reason + " for " + who + "; retry after " + strconv.Itoa(secs) + "s (Retry-After).",
		retryAfter: secs,
	}
}

func (l *limits) grantBucket(g *store.Grant) *bucket {
	k := grantKey{g.Agent, g.Backend}
	l.mu.Lock()
	defer l.mu.Unlock()
	bk := l.grants[k]
	if bk == nil || bk.rate != g.Rate || bk.burst != g.Burst {
		bk = newBucket(g.Rate, g.Burst)
		l.grants[k] = bk
		l.grewLocked()
	}
	return bk
}

func (l *limits) agentBucket(a *store.Agent) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	bk := l.agents[a.Name]
	if bk == nil || bk.rate != a.Rate || bk.burst != a.Burst {
		bk = newBucket(a.Rate, a.Burst)
		l.agents[a.Name] = bk
		l.grewLocked()
	}
	return bk
}

func (l *limits) backendBucket(b *store.Backend) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	bk := l.backends[b.Name]
	if bk == nil || bk.rate != b.Rate || bk.burst != b.Burst {
		bk = newBucket(b.Rate, b.Burst)
		l.backends[b.Name] = bk
		l.grewLocked()
	}
	return bk
}

// counter returns the in-flight counter of an agent. Counters live as long
// as the agent has a cap, so a change of MaxConcurrent keeps the count of
// requests already in flight.
func (l *limits) counter(agent string) *atomic.Int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.inflight[agent]
	if c == nil {
		c = new(atomic.Int64)
		l.inflight[agent] = c
		l.grewLocked()
	}
	return c
}

func (l *limits) sizeLocked() int {
	return len(l.grants) + len(l.agents) + len(l.backends) + len(l.inflight)
}

// grewLocked sweeps when the maps have doubled since the last sweep, which
// bounds them by about twice the live limited objects between the timed
// sweeps, and keeps the cost of sweeping constant per insertion.
func (l *limits) grewLocked() {
	if l.sizeLocked() > 2*l.sweptSize+64 {
		l.sweepLocked()
	}
}

// sweep drops the buckets and counters of objects that were removed or no
// longer have a limit.
func (l *limits) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked()
}

func (l *limits) sweepLocked() {
	l.sweeps.Add(1)
	if l.state == nil {
		l.sweptSize = l.sizeLocked()
		return
	}
	for k := range l.grants {
		if g := l.state.grant(k.agent, k.backend); g == nil || g.Rate == "" {
			delete(l.grants, k)
		}
	}
	for name := range l.agents {
		if a := l.state.agent(name); a == nil || a.Rate == "" {
			delete(l.agents, name)
		}
	}
	for name := range l.backends {
		if r := l.state.backend(name); r == nil || r.backend.Rate == "" {
			delete(l.backends, name)
		}
	}
	for name, c := range l.inflight {
		// A counter still in use stays: dropping it would let the agent
		// exceed its cap if the limit came back before the requests ended.
		if a := l.state.agent(name); (a == nil || a.MaxConcurrent == 0) && c.Load() == 0 {
			delete(l.inflight, name)
		}
	}
	l.sweptSize = l.sizeLocked()
}

// size is the number of buckets and counters held (tests).
func (l *limits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sizeLocked()
}

// Failed authentication is throttled per client address so that guessing
// tokens is slow: after authFailBurst failures, further attempts are
// refused before any token lookup until the bucket refills at
// authFailRate.
const (
	authFailRate    = rate.Limit(10.0 / 60) // 10 a minute
	authFailBurst   = 10
	authFailMaxKeys = 16384
)

// authThrottle counts failed authentications per client address (an IPv4
// address, or an IPv6 /64, which one host usually holds whole). The map is
// bounded: at authFailMaxKeys it forgets addresses whose bucket has refilled
// (they hold no information), and failing that an arbitrary one, so a spray
// of source addresses costs a bounded amount of memory.
type authThrottle struct {
	mu        sync.Mutex
	m         map[netip.Addr]*rate.Limiter
	n         atomic.Int64 // len(m), read without the lock on the hot path
	maxKeys   int
	lastSweep time.Time
}

func newAuthThrottle(maxKeys int) *authThrottle {
	if maxKeys <= 0 {
		maxKeys = authFailMaxKeys
	}
	return &authThrottle{m: map[netip.Addr]*rate.Limiter{}, maxKeys: maxKeys}
}

// clientKey is the throttle key of a request's remote address; the zero
// Addr when it does not parse.
func clientKey(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// blocked reports whether the address has used up its failures, and how
// long until it may try again.
func (t *authThrottle) blocked(addr netip.Addr, now time.Time) (time.Duration, bool) {
	if t.n.Load() == 0 {
		return 0, false
	}
	t.mu.Lock()
	lim := t.m[addr]
	t.mu.Unlock()
	if lim == nil {
		return 0, false
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(authFailRate) * float64(time.Second)), true
}

// fail records a failed authentication from addr at now.
func (t *authThrottle) fail(addr netip.Addr, now time.Time) {
	t.mu.Lock()
	lim := t.m[addr]
	if lim == nil {
		if len(t.m) >= t.maxKeys {
			t.evictLocked(now)
		}
		lim = rate.NewLimiter(authFailRate, authFailBurst)
		t.m[addr] = lim
		t.n.Store(int64(len(t.m)))
	}
	t.mu.Unlock()
	lim.AllowN(now, 1)
}

// evictLocked makes room for one address: at most once a second it drops
// every address whose bucket has refilled; otherwise (or if that freed
// nothing) it drops an arbitrary one.
func (t *authThrottle) evictLocked(now time.Time) {
	if now.Sub(t.lastSweep) >= time.Second {
		t.lastSweep = now
		for a, lim := range t.m {
			if lim.TokensAt(now) >= authFailBurst {
				delete(t.m, a)
			}
		}
	}
	for a := range t.m {
		if len(t.m) < t.maxKeys {
			break
		}
		delete(t.m, a)
	}
	t.n.Store(int64(len(t.m)))
}

// sweep forgets addresses whose bucket has refilled.
func (t *authThrottle) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for a, lim := range t.m {
		if lim.TokensAt(now) >= authFailBurst {
			delete(t.m, a)
		}
	}
	t.n.Store(int64(len(t.m)))
}

// authThrottled is the 429 for an address that failed authentication too
// often.
func authThrottled(wait time.Duration) *denial {
	return rateLimited("client auth failures 10/m", "this client address (too many failed authentications)", wait)
}

// sweepLimits drops, once a minute until ctx is done, the limiter state of
// removed objects, the auth-failure entries that have refilled, and the
// metric series of removed backends and agents.
func (p *proxy) sweepLimits(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.limits.sweep()
			p.authFails.sweep(p.now())
			p.metrics.forget(p.state)
		}
	}
}
