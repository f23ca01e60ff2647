package dns

import (
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	cacheMaxEntries = 10000
	maxPositiveTTL  = time.Hour       // upstream TTLs above this are cut, so a changed record shows within the hour
	maxNegativeTTL  = 5 * time.Minute // RFC 2308 suggests 1–3 hours; a new backend host must not stay NXDOMAIN that long
)

// cacheKey names one cached upstream answer. Names are canonical (lower
// case, no root dot); the DO and CD bits change what upstreams return, so
// they are part of the key.
type cacheKey struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

type cacheEntry struct {
	msg     *mdns.Msg // never modified once stored
	stored  time.Time
	expires time.Time
}

// cache holds upstream answers for as long as their TTLs allow. It is bounded:
// when full, expired entries go first, then arbitrary ones.
type cache struct {
	mu  sync.Mutex
	m   map[cacheKey]cacheEntry
	max int
	now func() time.Time // injectable so tests move time instead of sleeping
}

func newCache(max int) *cache {
	return &cache{m: make(map[cacheKey]cacheEntry), max: max, now: time.Now}
}

// get returns a private copy of the cached answer with TTLs reduced by the
// time it has spent in the cache, or false when there is none or it expired.
func (c *cache) get(k cacheKey) (*mdns.Msg, bool) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[k]
	if ok && !now.Before(e.expires) {
		delete(c.m, k)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, section := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			h := rr.Header()
			if h.Rrtype == mdns.TypeOPT {
				continue // its "TTL" holds flags
			}
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m, true
}

// put stores m under k for as long as cacheTTL allows; m must not be
// modified afterwards.
func (c *cache) put(k cacheKey, m *mdns.Msg) {
	ttl := cacheTTL(m)
	if ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		c.evictLocked(now)
	}
	c.m[k] = cacheEntry{msg: m, stored: now, expires: now.Add(ttl)}
}

// evictLocked makes room: every expired entry, and if that freed nothing, a
// tenth of the cache picked by map order (effectively at random).
func (c *cache) evictLocked(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < c.max-c.max/10 {
			break
		}
		delete(c.m, k)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// cacheTTL says how long an upstream answer may be reused: the smallest TTL
// in it for positive answers, the SOA's negative TTL (RFC 2308) for NXDOMAIN
// and NODATA, capped; zero (not cached) for failures, truncated answers and
// negative answers without a SOA.
func cacheTTL(m *mdns.Msg) time.Duration {
	if m.Truncated {
		return 0
	}
	switch {
	case m.Rcode == mdns.RcodeSuccess && len(m.Answer) > 0:
		min := uint32(maxPositiveTTL / time.Second)
		for _, section := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range section {
				if h := rr.Header(); h.Rrtype != mdns.TypeOPT && h.Ttl < min {
					min = h.Ttl
				}
			}
		}
		return time.Duration(min) * time.Second
	case m.Rcode == mdns.RcodeSuccess || m.Rcode == mdns.RcodeNameError:
		for _, rr := range m.Ns {
			if soa, ok := rr.(*mdns.SOA); ok {
				ttl := min(soa.Hdr.Ttl, soa.Minttl)
				return min(time.Duration(ttl)*time.Second, maxNegativeTTL)
			}
		}
	}
	return 0
}
