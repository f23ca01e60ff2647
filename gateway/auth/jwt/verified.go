package jwt

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/agw-dev/agw/store"
)

const (
	// verifiedTTL caps how long a verified token is trusted without
	// checking its signature again, so a key the IdP withdraws stops
	// working for tokens already seen within this time plus keysTTL.
	verifiedTTL = 2 * time.Minute
	// verifiedMax bounds the cache's memory (~200 bytes an entry).
	verifiedMax = 10000
)

// verifiedCache remembers tokens that verified, by a SHA-256 of the token and
// the IdP settings it verified against, so the hot path does one hash
// instead of an RSA verification and a JSON decode. The token itself is not
// kept.
type verifiedCache struct {
	max int // 0 disables the cache

	mu sync.RWMutex
	m  map[[sha256.Size]byte]verifiedEntry
}

type verifiedEntry struct {
	claims Claims
	until  time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, m: make(map[[sha256.Size]byte]verifiedEntry)}
}

// key binds the token to the issuer, audience and claim it was checked
// against: a token verified for one IdP entry proves nothing for another.
func (c *verifiedCache) key(idp *store.IdP, token string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(idp.Issuer))
	h.Write([]byte{0})
	h.Write([]byte(idp.Audience))
	h.Write([]byte{0})
	h.Write([]byte(idp.Claim))
	h.Write([]byte{0})
	h.Write([]byte(token))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (c *verifiedCache) get(k [sha256.Size]byte, now time.Time) (Claims, bool) {
	if c.max == 0 {
		return Claims{}, false
	}
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return Claims{}, false
	}
	return e.claims, true
}

// put keeps claims until min(exp, now+verifiedTTL). When full it drops
// expired entries, then arbitrary ones, down to 7/8 of the bound, so
// inserts stay cheap on average.
func (c *verifiedCache) put(k [sha256.Size]byte, cl *Claims, now time.Time) {
	if c.max == 0 {
		return
	}
	until := now.Add(verifiedTTL)
	if cl.ExpiresAt.Before(until) {
		until = cl.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for key, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, key)
			}
		}
		for key := range c.m {
			if len(c.m) < c.max*7/8 {
				break
			}
			delete(c.m, key)
		}
	}
	c.m[k] = verifiedEntry{claims: *cl, until: until}
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
