package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/okta/okta-jwt-verifier-golang/v2/adaptors"
	"github.com/okta/okta-jwt-verifier-golang/v2/adaptors/lestrratGoJwx"
	"github.com/okta/okta-jwt-verifier-golang/v2/discovery/oidc"
	"github.com/okta/okta-jwt-verifier-golang/v2/utils"
)

const (
	// keysTTL is how long fetched keys are used before they are fetched
	// again (the library's own default). A key the IdP removes stops
	// verifying new tokens at most this long after removal; a key it adds
	// is picked up at once through the unknown-kid refresh.
	keysTTL = 5 * time.Minute
	// discoveryTTL is how long the discovery document (the jwks_uri) is kept.
	discoveryTTL = time.Hour
	// minRSABits refuses weak keys an IdP might still publish.
	minRSABits = 2048
)

// wellKnownPath is where agw reads an issuer's metadata: the library's OIDC
// discovery (issuer + "/.well-known/openid-configuration"). Okta custom
// authorization servers serve it as well as the OAuth one
// (/.well-known/oauth-authorization-server), Entra ID and every OIDC
// provider serve it, so agw requires it and nothing else.
var wellKnownPath = oidc.Oidc{}.New().GetWellKnownUrl()

// fetchError is a failure to obtain an issuer's metadata or keys, as opposed
// to a token that does not verify.
type fetchError struct {
	what string
	err  error
}

func (e *fetchError) Error() string { return "fetch " + e.what + ": " + e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// keyCache is the library's utils.Cacher (the hook it offers for how
// metadata and key sets are cached), replaced because its default
// (go-cache with a fixed expiry) forgets keys when they expire and then
// fails every token while the IdP is unreachable, holds a lock across the
// fetch, and cannot be asked to refresh early when a token names an unknown
// kid. This one:
//   - keeps the last good value and serves it while a refresh fails
//     (keys already fetched keep working when the IdP is down);
//   - fetches at most once per minRefresh per key, whatever the trigger
//     (expiry, unknown kid, or retry after a failure), so neither a flood of
//     made-up kids nor a dead IdP causes a fetch storm;
//   - runs one fetch at a time; while it runs, callers with a usable value
//     do not wait for it.
type keyCache struct {
	what       string
	lookup     func(string) (any, error)
	check      func(any) (any, error) // validates a fetched value; nil accepts it
	ttl        time.Duration
	minRefresh time.Duration
	now        func() time.Time
	log        *slog.Logger
	fetches    atomic.Uint64

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	value     any
	fetchedAt time.Time     // of value
	attemptAt time.Time     // of the last fetch, successful or not
	err       error         // of the last fetch; nil after a success
	inflight  chan struct{} // non-nil while a fetch runs; closed when it ends
}

var _ utils.Cacher = (*keyCache)(nil)

// Get implements utils.Cacher for the library: it returns the cached value
// when it has one, stale or not, so a verification the caller has already
// prepared never fails on a refresh.
func (c *keyCache) Get(key string) (any, error) {
	v, _, err := c.get(context.Background(), key, false)
	if v != nil {
		return v, nil
	}
	return nil, err
}

// get returns the value for key, fetching it when absent, past its TTL, or
// when force is set, subject to the rate limit. fetched reports whether the
// value comes from a fetch made during (or awaited by) this call. err is the
// failure of the latest fetch (this call's, or the last one when rate
// limited), if it failed; v may be a usable stale value even when err is set.
func (c *keyCache) get(ctx context.Context, key string, force bool) (v any, fetched bool, err error) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		e = &cacheEntry{}
		c.entries[key] = e
	}
	if ch := e.inflight; ch != nil {
		if e.value != nil && !force {
			v := e.value
			c.mu.Unlock()
			return v, false, nil
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return e.value, e.err == nil, e.err
	}
	now := c.now()
	if e.value != nil && !force && now.Sub(e.fetchedAt) < c.ttl {
		v := e.value
		c.mu.Unlock()
		return v, false, nil
	}
	if !e.attemptAt.IsZero() && now.Sub(e.attemptAt) < c.minRefresh {
		// Rate limited: what the last attempt left, including its failure,
		// so a forced refresh after a failed one still reports the IdP down.
		v, err := e.value, e.err
		c.mu.Unlock()
		return v, false, err
	}
	ch := make(chan struct{})
	e.inflight, e.attemptAt = ch, now
	c.mu.Unlock()

	nv, ferr := c.fetch(key)

	c.mu.Lock()
	defer c.mu.Unlock()
	e.inflight = nil
	close(ch)
	if ferr != nil {
		e.err = ferr
		c.log.Warn("jwt: fetch failed; keeping the last good copy if any",
			"what", c.what, "url", key, "have_copy", e.value != nil, "err", ferr)
		return e.value, false, ferr
	}
	e.value, e.fetchedAt, e.err = nv, now, nil
	return nv, true, nil
}

func (c *keyCache) fetch(key string) (any, error) {
	c.fetches.Add(1)
	v, err := c.lookup(key)
	if err == nil && c.check != nil {
		v, err = c.check(v)
	}
	if err != nil {
		return nil, &fetchError{what: c.what, err: err}
	}
	return v, nil
}

// issuerKeys is everything agw holds for one issuer: its discovery document
// (for jwks_uri), its keys, and the library adaptor that verifies
// signatures with them.
type issuerKeys struct {
	issuer       string
	discoveryURL string
	discovery    *keyCache // discoveryURL → jwks_uri (string)
	jwks         *keyCache // jwks_uri → jwk.Set (usable keys only)
	adaptor      adaptors.Adaptor
}

func (v *Verifier) newIssuerKeys(issuer string) (*issuerKeys, error) {
	ik := &issuerKeys{issuer: issuer, discoveryURL: issuer + wellKnownPath}
	ik.discovery = v.newKeyCache("discovery document", discoveryTTL, func(u string) (any, error) {
		return v.fetchDiscovery(u, issuer)
	})
	// The library's adaptor fetches the JWKS (jwk.Fetch with our client)
	// and verifies signatures (jws.Verify with the key set); its Cache hook
	// is how agw gets to keep, refresh and vet the keys.
	lgj := &lestrratGoJwx.LestrratGoJwx{
		Client: v.client,
		Cache: func(lookup func(string) (any, error), _, _ time.Duration) (utils.Cacher, error) {
			c := v.newKeyCache("JWKS", keysTTL, lookup)
			c.check = v.usableKeys
			ik.jwks = c
			return c, nil
		},
	}
	a, err := lgj.New()
	if err != nil {
		return nil, err
	}
	if ik.jwks == nil {
		return nil, errors.New("jwt: the verifier library did not take agw's key cache")
	}
	ik.adaptor = a
	return ik, nil
}

func (v *Verifier) newKeyCache(what string, ttl time.Duration, lookup func(string) (any, error)) *keyCache {
	return &keyCache{
		what:       what,
		lookup:     lookup,
		ttl:        ttl,
		minRefresh: v.minRefresh,
		now:        v.now,
		log:        v.log,
		entries:    map[string]*cacheEntry{},
	}
}

// jwksURI returns the issuer's jwks_uri from its discovery document.
func (ik *issuerKeys) jwksURI(ctx context.Context) (string, error) {
	v, _, err := ik.discovery.get(ctx, ik.discoveryURL, false)
	if s, ok := v.(string); ok {
		return s, nil
	}
	if err == nil {
		err = errors.New("no discovery document")
	}
	return "", err
}

// fetchDiscovery reads an OIDC discovery document. Beyond the library, which
// only reads jwks_uri, agw requires the document's issuer to be the one it
// asked about (OIDC Discovery §4.3: a document that names another issuer
// must not be used) and the jwks_uri to be https (or loopback http).
func (v *Verifier) fetchDiscovery(u, issuer string) (any, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: not a JSON discovery document: %w", u, err)
	}
	if !sameIssuer(doc.Issuer, issuer) {
		return nil, fmt.Errorf("%s names issuer %q, not %q; check the IdP's issuer URL", u, doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return nil, fmt.Errorf("%s has no jwks_uri", u)
	}
	if !allowedKeyURL(doc.JWKSURI) {
		return nil, fmt.Errorf("%s: jwks_uri %q must be https", u, doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// usableKeys keeps the keys agw can verify RS256 signatures with: RSA public
// keys with a kid, for signing, of at least 2048 bits, whose alg is RS256 or
// absent. An absent alg is set to RS256 because the library's key-set
// verification (jwx, without algorithm inference) silently skips keys
// without one, and Entra ID publishes its keys without alg. A set with no
// usable key is a failed fetch, so the last good keys stay in use.
func (v *Verifier) usableKeys(val any) (any, error) {
	set, ok := val.(jwk.Set)
	if !ok {
		return nil, fmt.Errorf("unexpected key set type %T", val)
	}
	out := jwk.NewSet()
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		pk, ok := k.(jwk.RSAPublicKey)
		if !ok || k.KeyID() == "" {
			continue
		}
		if use := k.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
			continue
		}
		switch alg := k.Algorithm().String(); alg {
		case "":
			if err := k.Set(jwk.AlgorithmKey, jwa.RS256); err != nil {
				continue
			}
		case onlyAlg:
		default:
			continue
		}
		if new(big.Int).SetBytes(pk.N()).BitLen() < minRSABits {
			v.log.Warn("jwt: ignoring an RSA key shorter than 2048 bits", "kid", k.KeyID())
			continue
		}
		if err := out.AddKey(k); err != nil {
			continue
		}
	}
	if out.Len() == 0 {
		return nil, errors.New("the JWKS has no usable RS256 signing key")
	}
	return out, nil
}

func hasKID(set any, kid string) bool {
	s, ok := set.(jwk.Set)
	if !ok {
		return false
	}
	_, ok = s.LookupKeyID(kid)
	return ok
}
