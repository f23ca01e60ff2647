package limit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Local is the in-process Limiter: token buckets and in-flight counters in
// this process's memory.
//
// The maps are bounded without knowing which objects still exist: a bucket
// that has refilled holds no information (a new one would be full too), and
// a counter at zero none either, so sweeps drop them. A sweep runs when the
// maps have doubled since the last one and from Sweep (once a minute), so
// they hold about twice the buckets in use at most.
type Local struct {
	mu        sync.Mutex
	buckets   map[string]*bucket
	inflight  map[string]*atomic.Int64
	sweptSize int
	maxKeys   int // a hard cap on buckets and counters (a spray of keys)
	now       func() time.Time
}

// DefaultMaxKeys caps a Local's buckets and counters: past it a sweep also
// forgets arbitrary buckets (a forgotten bucket starts again full), so a
// spray of keys costs bounded memory.
const DefaultMaxKeys = 1 << 17

var _ Limiter = (*Local)(nil)

type bucket struct {
	rate Rate
	lim  *rate.Limiter
}

// NewLocal returns an empty in-process limiter.
func NewLocal() *Local {
	return &Local{buckets: map[string]*bucket{}, inflight: map[string]*atomic.Int64{}, maxKeys: DefaultMaxKeys, now: time.Now}
}

// Take implements Limiter.
func (l *Local) Take(_ context.Context, now time.Time, buckets ...Bucket) (int, time.Duration, error) {
	var held [4]*rate.Reservation
	hold := held[:0]
	for i, b := range buckets {
		r := l.bucket(b).ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 || !r.OK() {
			r.CancelAt(now)
			for _, h := range hold {
				h.CancelAt(now)
			}
			return i, max(d, time.Nanosecond), nil
		}
		hold = append(hold, r)
	}
	return -1, 0, nil
}

// Wait implements Limiter.
func (l *Local) Wait(_ context.Context, now time.Time, b Bucket) (time.Duration, error) {
	l.mu.Lock()
	bk := l.buckets[b.Key]
	l.mu.Unlock()
	if bk == nil || bk.rate != b.Rate {
		return 0, nil
	}
	tokens := bk.lim.TokensAt(now)
	if tokens >= 1 {
		return 0, nil
	}
	return time.Duration((1 - tokens) / b.Rate.PerSecond * float64(time.Second)), nil
}

// Acquire implements Limiter.
func (l *Local) Acquire(_ context.Context, key string, limit int) (func(), bool, error) {
	l.mu.Lock()
	c := l.inflight[key]
	if c == nil {
		c = new(atomic.Int64)
		l.inflight[key] = c
		l.grewLocked()
	}
	l.mu.Unlock()
	if c.Add(1) > int64(limit) {
		c.Add(-1)
		return nil, false, nil
	}
	var once sync.Once
	return func() { once.Do(func() { c.Add(-1) }) }, true, nil
}

func (l *Local) bucket(b Bucket) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	bk := l.buckets[b.Key]
	if bk == nil || bk.rate != b.Rate {
		bk = &bucket{rate: b.Rate, lim: rate.NewLimiter(rate.Limit(b.Rate.PerSecond), b.Rate.Burst)}
		l.buckets[b.Key] = bk
		l.grewLocked()
	}
	return bk.lim
}

func (l *Local) sizeLocked() int { return len(l.buckets) + len(l.inflight) }

// grewLocked sweeps when the maps have doubled since the last sweep, which
// keeps the cost of sweeping constant per insertion.
func (l *Local) grewLocked() {
	if n := l.sizeLocked(); n > 2*l.sweptSize+64 || n > l.maxKeys {
		l.sweepLocked(l.now())
	}
}

// Sweep drops the buckets that have refilled and the counters at zero.
func (l *Local) Sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
}

func (l *Local) sweepLocked(now time.Time) {
	for k, bk := range l.buckets {
		if bk.lim.TokensAt(now) >= float64(bk.rate.Burst) {
			delete(l.buckets, k)
		}
	}
	for k, c := range l.inflight {
		if c.Load() == 0 {
			delete(l.inflight, k)
		}
	}
	for k := range l.buckets {
		if l.sizeLocked() <= l.maxKeys*3/4 {
			break
		}
		delete(l.buckets, k)
	}
	l.sweptSize = l.sizeLocked()
}

// Size is the number of buckets and counters held.
func (l *Local) Size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sizeLocked()
}
