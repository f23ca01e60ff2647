// Package limit holds the gateway's rate limits, concurrency caps and the
// auth-failure throttle, decided through a Limiter: the in-process buckets
// here (Local) on one node, or a shared implementation in a cluster.
package limit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/store"
)

// Limit kinds, as rate-limit hits are counted in metrics.
const (
	KindGrant       = "grant"
	KindAgent       = "agent"
	KindBackend     = "backend"
	KindConcurrency = "concurrency"
	KindAuthFailure = "auth_failure"
)

// Kinds lists every limit kind, for metrics that pre-create their series.
var Kinds = []string{KindGrant, KindAgent, KindBackend, KindConcurrency, KindAuthFailure}

// Rate is a token bucket's refill rate (tokens a second) and size.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Bucket names one token bucket and its rate. Buckets are keyed by Key; a
// bucket whose Rate changes starts again full at the new rate, so a changed
// limit takes effect at once.
type Bucket struct {
	Key  string
	Rate Rate
}

// Limiter is what the limits are decided through. Implementations are safe
// for concurrent use. An error means the limiter could not decide (a shared
// store is unreachable): callers refuse rather than allow.
type Limiter interface {
	// Take takes one token from every bucket at now, or from none: when a
	// bucket has no token it returns that bucket's index and the wait
	// until it has one, and every token taken for this call is given back.
	// refused is -1 when every bucket had a token.
	Take(ctx context.Context, now time.Time, buckets ...Bucket) (refused int, wait time.Duration, err error)
	// Wait reports how long until key's bucket has a token, without taking
	// one (0: it has one now). A bucket never taken from is full.
	Wait(ctx context.Context, now time.Time, b Bucket) (time.Duration, error)
	// Acquire takes one of max in-flight slots named key; release gives it
	// back (once; extra calls do nothing). ok is false when all max are
	// taken.
	Acquire(ctx context.Context, key string, max int) (release func(), ok bool, err error)
}

// EffectiveBurst is the bucket size for a rate: the configured burst, or by
// default one second's worth of requests and at least one (10/s → 10,
// 60/m → 1, 1000/h → 1). A burst of one keeps slow rates evenly spaced.
func EffectiveBurst(perSecond float64, burst int) int {
	if burst > 0 {
		return burst
	}
	return max(1, int(math.Ceil(perSecond)))
}

// ParseRate turns a stored "N/s|N/m|N/h" and burst into a Rate. A rate that
// does not parse (it was validated on write) must not open the gate wide:
// it allows one request an hour.
func ParseRate(r string, burst int) Rate {
	perSecond, err := store.ParseRate(r)
	if err != nil || perSecond <= 0 {
		perSecond = 1.0 / 3600
	}
	return Rate{PerSecond: perSecond, Burst: EffectiveBurst(perSecond, burst)}
}

// Limited reports whether any limit applies to a request: the common case
// of no limits costs four field reads.
func Limited(a *store.Agent, g *store.Grant, b *store.Backend) bool {
	return g.Rate != "" || a.Rate != "" || b.Rate != "" || a.MaxConcurrent > 0
}

// Admission is what Admit took for a request: the in-flight slot to give
// back when the response is finished.
type Admission struct {
	release func()
}

// Release gives back the in-flight slot, once.
func (ad *Admission) Release() {
	if ad.release != nil {
		ad.release()
		ad.release = nil
	}
}

// Admit applies the agent's concurrency cap and the grant, agent and backend
// rates to a request at now, through lim. A refused request consumes
// nothing; the refusal names the limit, with the wait until it has room, and
// its Limit says which limit it was. A limiter that cannot decide refuses (503).
func Admit(ctx context.Context, lim Limiter, a *store.Agent, g *store.Grant, b *store.Backend, now time.Time) (Admission, *deny.Denial) {
	var ad Admission
	if a.MaxConcurrent > 0 {
		release, ok, err := lim.Acquire(ctx, "inflight/"+a.Name, a.MaxConcurrent)
		if err != nil {
			return ad, unavailable(err)
		}
		if !ok {
			return ad, limitedBy(KindConcurrency, rateLimited(fmt.Sprintf("agent max concurrent %d", a.MaxConcurrent),
				fmt.Sprintf("agent %q already has %d requests in flight", a.Name, a.MaxConcurrent), time.Second))
		}
		ad.release = release
	}
	var buckets [3]Bucket
	var kinds [3]string
	n := 0
	if g.Rate != "" {
		buckets[n], kinds[n] = Bucket{Key: "grant/" + g.Agent + "/" + g.Backend, Rate: ParseRate(g.Rate, g.Burst)}, KindGrant
		n++
	}
	if a.Rate != "" {
		buckets[n], kinds[n] = Bucket{Key: "agent/" + a.Name, Rate: ParseRate(a.Rate, a.Burst)}, KindAgent
		n++
	}
	if b.Rate != "" {
		buckets[n], kinds[n] = Bucket{Key: "backend/" + b.Name, Rate: ParseRate(b.Rate, b.Burst)}, KindBackend
		n++
	}
	if n == 0 {
		return ad, nil
	}
	refused, wait, err := lim.Take(ctx, now, buckets[:n]...)
	if err != nil {
		ad.Release()
		return ad, unavailable(err)
	}
	if refused < 0 {
		return ad, nil
	}
	ad.Release()
	switch kinds[refused] {
	case KindGrant:
		return ad, limitedBy(KindGrant, rateLimited("grant rate "+g.Rate, fmt.Sprintf("agent %q on backend %q", g.Agent, g.Backend), wait))
	case KindAgent:
		return ad, limitedBy(KindAgent, rateLimited("agent rate "+a.Rate, fmt.Sprintf("agent %q across all backends", a.Name), wait))
	default:
		return ad, limitedBy(KindBackend, rateLimited("backend rate "+b.Rate, fmt.Sprintf("backend %q across all agents", b.Name), wait))
	}
}

func limitedBy(kind string, d *deny.Denial) *deny.Denial {
	d.Limit = kind
	return d
}

// rateLimited is a 429 naming the limit (reason, for the audit) and whose
// limit it is (for the agent), with Retry-After in whole seconds rounded up.
func rateLimited(reason, who string, wait time.Duration) *deny.Denial {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &deny.Denial{
		Status:     http.StatusTooManyRequests,
		Type:       deny.RateLimited,
		Reason:     reason,
		Msg:        "rate limited by the agw gateway: " + reason + " for " + who + "; retry after " + strconv.Itoa(secs) + "s (Retry-After).",
		RetryAfter: secs,
	}
}

// unavailable is the refusal when the limiter cannot decide: without a
// decision the gateway does not forward.
func unavailable(err error) *deny.Denial {
	d := deny.New(http.StatusServiceUnavailable, deny.Unavailable, "the rate limiter is unavailable, so the gateway refuses rather than forward unlimited: "+err.Error())
	d.RetryAfter = 1
	return d
}
