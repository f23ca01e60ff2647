// Package redislimit is a limit.Limiter shared by several gateway replicas
// through Redis: grant, agent and backend rates and the auth-failure
// throttle are GCRA buckets updated by one Lua script (all or none over a
// request's buckets), and concurrency caps are leased slots in a sorted set,
// so a crashed replica's slots come back when their lease runs out.
//
// While Redis is unreachable each replica decides locally with limits of
// limit ÷ replicas, says so once in the log, counts it, and probes Redis
// with back-off until it answers again. No call waits on Redis for longer
// than a short per-call timeout.
package redislimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/agw-dev/agw/gateway/limit"
)

// Defaults for Config's zero fields.
const (
	// DefaultPrefix starts every key the limiter writes.
	DefaultPrefix = "agw:rl:"
	// DefaultTimeout bounds one Redis call. Redis answers a nearby replica
	// in well under a millisecond; a call that takes longer than this is
	// an outage, and the request is decided locally instead of waiting.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultLease is how long a concurrency slot lives without renewal:
	// the slots of a replica that died come back after at most this long.
	// Live replicas renew their slots every third of it.
	DefaultLease = 30 * time.Second
	// DefaultProbeMin and DefaultProbeMax bound the back-off between
	// health probes while Redis is unreachable.
	DefaultProbeMin = 250 * time.Millisecond
	DefaultProbeMax = 5 * time.Second
)

// Config configures a Limiter.
type Config struct {
	// URL is the Redis server, redis://[user:password@]host:port/db or
	// rediss:// for TLS. It may carry a password: it is never logged.
	URL string
	// Prefix starts every key (default DefaultPrefix), so several
	// installations, or tests, can share one server.
	Prefix string
	// Replicas reports how many replicas share the limits; while Redis is
	// unreachable each one allows limit ÷ Replicas(). nil or < 1 is 1.
	Replicas func() int
	// Timeout bounds one Redis call (default DefaultTimeout).
	Timeout time.Duration
	// Lease is a concurrency slot's lifetime without renewal (default
	// DefaultLease).
	Lease time.Duration
	// ProbeMin and ProbeMax bound the probe back-off while degraded.
	ProbeMin, ProbeMax time.Duration
	Logger             *slog.Logger
	// Now is the clock for concurrency leases (default time.Now); rates
	// use the now their caller passes.
	Now func() time.Time
}

// Limiter is a limit.Limiter on Redis with a local fallback. Create it with
// New; Close stops its background work.
type Limiter struct {
	rdb      *redis.Client
	prefix   string
	replicas func() int
	timeout  time.Duration
	lease    time.Duration
	probeMin time.Duration
	probeMax time.Duration
	log      *slog.Logger
	now      func() time.Time
	id       string // this instance's slot-member prefix

	local *limit.Local // the fallback

	mu       sync.Mutex
	degraded bool
	reason   string
	since    time.Time
	changed  chan struct{} // closed and replaced on each change of state
	probing  bool

	slotMu sync.Mutex
	slots  map[string]map[string]struct{} // zset key → members held here
	seq    atomic.Uint64

	fallbacks atomic.Uint64
	outages   atomic.Uint64
	errs      atomic.Uint64

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

var _ limit.Limiter = (*Limiter)(nil)

// New connects to cfg.URL. A URL that does not parse is an error; a server
// that does not answer is not: the limiter starts degraded and recovers by
// itself when the server comes up.
func New(ctx context.Context, cfg Config) (*Limiter, error) {
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("the rate-limit Redis URL does not parse (want redis://[user:password@]host:port/db or rediss://...): %w", redactURLErr(err))
	}
	l := &Limiter{
		prefix:   cfg.Prefix,
		replicas: cfg.Replicas,
		timeout:  cfg.Timeout,
		lease:    cfg.Lease,
		probeMin: cfg.ProbeMin,
		probeMax: cfg.ProbeMax,
		log:      cfg.Logger,
		now:      cfg.Now,
		local:    limit.NewLocal(),
		changed:  make(chan struct{}),
		slots:    map[string]map[string]struct{}{},
		stop:     make(chan struct{}),
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	if l.lease <= 0 {
		l.lease = DefaultLease
	}
	if l.probeMin <= 0 {
		l.probeMin = DefaultProbeMin
	}
	if l.probeMax < l.probeMin {
		l.probeMax = max(DefaultProbeMax, l.probeMin)
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	l.id = hex.EncodeToString(idb[:])

	// Never wait on Redis longer than one timeout, never retry inside a
	// call (the fallback is the retry), and keep the pool from queueing.
	opt.DialTimeout = l.timeout
	opt.ReadTimeout = l.timeout
	opt.WriteTimeout = l.timeout
	opt.PoolTimeout = l.timeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	l.rdb = redis.NewClient(opt)

	if err := l.ping(ctx); err != nil {
		if ctx.Err() != nil {
			l.rdb.Close()
			return nil, ctx.Err()
		}
		l.fail(err)
	} else {
		l.log.Info("rate limits shared through Redis", "server", opt.Addr, "db", opt.DB)
	}
	l.wg.Add(1)
	go l.renew()
	return l, nil
}

// redactURLErr drops the URL that url.Parse quotes in its errors (it may
// carry a password) and keeps what was wrong with it.
func redactURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Close stops the probe and lease renewal and closes the connection. Slots
// still held are left to their lease.
func (l *Limiter) Close() error {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.rdb.Close()
}

// Status is the limiter's state, for `agw status`.
type Status struct {
	Degraded bool
	Reason   string    // why Redis is not used ("" when it is)
	Since    time.Time // when the current state began
}

// Status reports whether limits are decided locally and why.
func (l *Limiter) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{Degraded: l.degraded, Reason: l.reason, Since: l.since}
}

// Degraded reports whether limits are decided locally because Redis is
// unreachable.
func (l *Limiter) Degraded() bool { return l.Status().Degraded }

// Fallbacks is the number of decisions taken locally since start.
func (l *Limiter) Fallbacks() uint64 { return l.fallbacks.Load() }

// Outages is the number of times Redis became unreachable since start.
func (l *Limiter) Outages() uint64 { return l.outages.Load() }

// Errors is the number of failed Redis calls since start.
func (l *Limiter) Errors() uint64 { return l.errs.Load() }

// Changed returns a channel closed at the next change between shared and
// local decisions.
func (l *Limiter) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *Limiter) isDegraded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.degraded
}

// fail records a failed Redis call: the first one of an outage switches to
// local decisions, logs it and starts the probe.
func (l *Limiter) fail(err error) {
	l.errs.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.degraded {
		return
	}
	l.degraded, l.reason, l.since = true, "redis "+l.rdb.Options().Addr+": "+err.Error(), l.now()
	l.outages.Add(1)
	close(l.changed)
	l.changed = make(chan struct{})
	l.log.Warn("rate-limit Redis unreachable: deciding limits locally at limit ÷ replicas until it answers",
		"replicas", l.replicaCount(), "err", l.reason)
	if !l.probing {
		l.probing = true
		l.wg.Add(1)
		go l.probe()
	}
}

func (l *Limiter) recovered(down time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.degraded, l.reason, l.since, l.probing = false, "", l.now(), false
	close(l.changed)
	l.changed = make(chan struct{})
	l.log.Info("rate-limit Redis reachable again: limits are shared across replicas", "outage", down.Round(time.Millisecond))
}

// probe pings Redis with back-off until it answers.
func (l *Limiter) probe() {
	defer l.wg.Done()
	start := l.now()
	wait := l.probeMin
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			l.mu.Lock()
			l.probing = false
			l.mu.Unlock()
			return
		case <-t.C:
		}
		if err := l.ping(context.Background()); err == nil {
			l.recovered(l.now().Sub(start))
			return
		}
		l.errs.Add(1)
		wait = min(wait*2, l.probeMax)
		t.Reset(wait)
	}
}

func (l *Limiter) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return l.rdb.Ping(ctx).Err()
}

func (l *Limiter) replicaCount() int {
	if l.replicas == nil {
		return 1
	}
	return max(1, l.replicas())
}

// share is one replica's part of a rate while limits are local.
func (l *Limiter) share(r limit.Rate) limit.Rate {
	n := l.replicaCount()
	if n == 1 {
		return r
	}
	return limit.Rate{PerSecond: r.PerSecond / float64(n), Burst: max(1, r.Burst/n)}
}

// callErr sorts a failed call: the caller's own cancellation is returned
// as is; anything else is Redis failing, and the call falls back.
func (l *Limiter) callErr(ctx context.Context, err error) (fallback bool, _ error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	l.fail(err)
	return true, nil
}

// gcra takes one emission from each bucket or from none. Each key holds
// its bucket's theoretical arrival time (TAT) in microseconds; a request
// is allowed when TAT - now <= tolerance, where tolerance is (burst-1)
// intervals, and then moves TAT one interval on. A bucket is full again
// when TAT <= now, so each key expires then, plus a second.
var gcra = redis.NewScript(`
local now = tonumber(ARGV[1])
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2*i])
  local tolerance = tonumber(ARGV[2*i+1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait > 0 then return {i - 1, wait} end
  tats[i] = tat + interval
end
for i = 1, #KEYS do
  local ttl = math.ceil((tats[i] - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', ttl)
end
return {-1, 0}
`)

// bucketKey carries the rate, so a changed limit starts a new, full bucket
// and the old key expires by itself.
func (l *Limiter) bucketKey(b limit.Bucket) string {
	return l.prefix + "tb:" + b.Key + "@" + strconv.FormatFloat(b.Rate.PerSecond, 'g', -1, 64) + "x" + strconv.Itoa(b.Rate.Burst)
}

// interval is a rate's emission interval in microseconds, at least one.
func interval(r limit.Rate) int64 {
	if r.PerSecond <= 0 {
		return int64(time.Hour / time.Microsecond)
	}
	return max(1, int64(math.Round(1e6/r.PerSecond)))
}

// Take implements limit.Limiter.
func (l *Limiter) Take(ctx context.Context, now time.Time, buckets ...limit.Bucket) (int, time.Duration, error) {
	if len(buckets) == 0 {
		return -1, 0, nil
	}
	if !l.isDegraded() {
		keys := make([]string, len(buckets))
		args := make([]any, 1, 1+2*len(buckets))
		args[0] = now.UnixMicro()
		for i, b := range buckets {
			keys[i] = l.bucketKey(b)
			iv := interval(b.Rate)
			args = append(args, iv, iv*int64(max(1, b.Rate.Burst)-1))
		}
		cctx, cancel := context.WithTimeout(ctx, l.timeout)
		res, err := gcra.Run(cctx, l.rdb, keys, args...).Int64Slice()
		cancel()
		if err == nil && len(res) == 2 {
			if res[0] < 0 {
				return -1, 0, nil
			}
			return int(res[0]), max(time.Duration(res[1])*time.Microsecond, time.Nanosecond), nil
		}
		if err == nil {
			err = fmt.Errorf("the rate-limit script answered %v", res)
		}
		if fb, err := l.callErr(ctx, err); !fb {
			return 0, 0, err
		}
	}
	l.fallbacks.Add(1)
	local := make([]limit.Bucket, len(buckets))
	for i, b := range buckets {
		local[i] = limit.Bucket{Key: b.Key, Rate: l.share(b.Rate)}
	}
	return l.local.Take(ctx, now, local...)
}

// Wait implements limit.Limiter.
func (l *Limiter) Wait(ctx context.Context, now time.Time, b limit.Bucket) (time.Duration, error) {
	if !l.isDegraded() {
		cctx, cancel := context.WithTimeout(ctx, l.timeout)
		v, err := l.rdb.Get(cctx, l.bucketKey(b)).Int64()
		cancel()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		if err == nil {
			iv := interval(b.Rate)
			wait := v - iv*int64(max(1, b.Rate.Burst)-1) - now.UnixMicro()
			return max(0, time.Duration(wait)*time.Microsecond), nil
		}
		if fb, err := l.callErr(ctx, err); !fb {
			return 0, err
		}
	}
	l.fallbacks.Add(1)
	return l.local.Wait(ctx, now, limit.Bucket{Key: b.Key, Rate: l.share(b.Rate)})
}

// acquire drops expired leases, then adds a slot when fewer than max are
// held. Members are "replica-id/sequence"; scores are lease expiries in
// milliseconds.
var acquire = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

// Acquire implements limit.Limiter.
func (l *Limiter) Acquire(ctx context.Context, key string, maxSlots int) (func(), bool, error) {
	if !l.isDegraded() {
		zkey := l.prefix + "cc:" + key
		member := l.id + "/" + strconv.FormatUint(l.seq.Add(1), 10)
		now := l.now()
		cctx, cancel := context.WithTimeout(ctx, l.timeout)
		ok, err := acquire.Run(cctx, l.rdb, []string{zkey},
			now.UnixMilli(), now.Add(l.lease).UnixMilli(), maxSlots, member, l.lease.Milliseconds()).Int()
		cancel()
		if err == nil {
			if ok != 1 {
				return nil, false, nil
			}
			l.hold(zkey, member)
			var once sync.Once
			return func() { once.Do(func() { l.release(zkey, member) }) }, true, nil
		}
		if fb, err := l.callErr(ctx, err); !fb {
			return nil, false, err
		}
	}
	l.fallbacks.Add(1)
	return l.local.Acquire(ctx, key, max(1, maxSlots/l.replicaCount()))
}

func (l *Limiter) hold(zkey, member string) {
	l.slotMu.Lock()
	defer l.slotMu.Unlock()
	m := l.slots[zkey]
	if m == nil {
		m = map[string]struct{}{}
		l.slots[zkey] = m
	}
	m[member] = struct{}{}
}

// release gives a slot back. When Redis cannot be told, the slot is left
// to its lease (it is no longer renewed).
func (l *Limiter) release(zkey, member string) {
	l.slotMu.Lock()
	if m := l.slots[zkey]; m != nil {
		delete(m, member)
		if len(m) == 0 {
			delete(l.slots, zkey)
		}
	}
	l.slotMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := l.rdb.ZRem(ctx, zkey, member).Err(); err != nil {
		l.fail(err)
	}
}

// renew extends the leases of the slots this replica holds, every third of
// a lease, so only a replica that stopped loses its slots.
func (l *Limiter) renew() {
	defer l.wg.Done()
	t := time.NewTicker(l.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.RenewLeases(context.Background())
	}
}

// RenewLeases extends the lease of every slot held here to a full lease
// from now. It runs by itself every third of a lease.
func (l *Limiter) RenewLeases(ctx context.Context) {
	if l.isDegraded() {
		return
	}
	l.slotMu.Lock()
	if len(l.slots) == 0 {
		l.slotMu.Unlock()
		return
	}
	now := l.now()
	score := float64(now.Add(l.lease).UnixMilli())
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	pipe := l.rdb.Pipeline()
	for zkey, m := range l.slots {
		zs := make([]redis.Z, 0, len(m))
		for member := range m {
			zs = append(zs, redis.Z{Score: score, Member: member})
		}
		pipe.ZAddXX(cctx, zkey, zs...)
		pipe.PExpire(cctx, zkey, l.lease)
	}
	l.slotMu.Unlock()
	if _, err := pipe.Exec(cctx); err != nil && ctx.Err() == nil {
		l.fail(err)
	}
}
