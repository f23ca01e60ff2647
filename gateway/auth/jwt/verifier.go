// Package jwt verifies the IdP access tokens agents present to the
// gateway: RS256 signature against the issuer's published keys, iss, aud
// (the gateway's own audience, so a token minted for the backend itself is
// refused), exp, nbf and iat. A refusal is an *Error with a stable Reason
// for the audit record and an HTTP status hint.
//
// Signatures are verified by okta-jwt-verifier-golang/v2 (v2.1.1): its OIDC
// discovery path, its lestrrat-go/jwx adaptor for fetching the JWKS and
// verifying the signature, and its cache hook. Its VerifyAccessToken is not
// called, because agw must cover what it gets wrong or leaves out:
//   - its header pre-check decodes with standard base64, so valid tokens
//     whose header's base64url form contains '-' or '_' are refused
//     (parseHeader decodes base64url and applies the same rules);
//   - its exp and iat checks read time.Now with a whole-second leeway and
//     it does not check nbf; agw checks all three with one clock;
//   - its errors are plain strings, where the audit needs stable reasons;
//   - with its default cache, keys are forgotten on expiry (a down IdP then
//     fails every token), an unknown kid waits for the cache to expire, and
//     the HTTP client is http.DefaultClient with no timeout;
//   - keys without "alg" (Entra ID publishes them so) are silently unusable.
//
// What agw requires of an issuer: it serves an OIDC discovery document at
// issuer + "/.well-known/openid-configuration" whose "issuer" equals the
// configured issuer (a trailing slash aside) and whose "jwks_uri" is https
// (http only on loopback); the JWKS holds RSA keys of at least 2048 bits
// with a kid; tokens are RS256 with a kid, and carry iss, aud, exp, iat and
// the IdP's identifying claim.
package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/store"
)

// Config configures a Verifier. The zero value is usable.
type Config struct {
	// HTTPClient fetches discovery documents and keys. Nil means one with a
	// 5s overall and 3s dial timeout. Either way responses of HTTP 400 and
	// above, and bodies over 1 MiB, are refused.
	HTTPClient *http.Client
	// Dial, when set and HTTPClient is nil, is the default client's dialer:
	// the daemon passes its upstream resolver so IdP hosts are never
	// resolved through agw's own DNS answers.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives fetch failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, nbf and iat; 0 means 30s.
	Leeway time.Duration
	// MinRefresh is the least time between two fetches of an issuer's keys
	// (or discovery document), however they are triggered: expiry, a token
	// naming an unknown kid, or a retry after a failure. 0 means 30s.
	MinRefresh time.Duration
}

// Verifier verifies access tokens against IdPs. It is safe for concurrent
// use and keeps, per issuer, the discovery document and keys it fetched.
type Verifier struct {
	client     *http.Client
	log        *slog.Logger
	now        func() time.Time
	leeway     time.Duration
	minRefresh time.Duration
	verified   *verifiedCache
	signatures atomic.Uint64 // signature verifications done, for tests

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

// New returns a Verifier. It fetches nothing until the first Verify.
func New(cfg Config) *Verifier {
	v := &Verifier{
		log:        cfg.Logger,
		now:        cfg.Now,
		leeway:     cfg.Leeway,
		minRefresh: cfg.MinRefresh,
		verified:   newVerifiedCache(verifiedMax),
		issuers:    map[string]*issuerKeys{},
	}
	client := cfg.HTTPClient
	if client == nil {
		client = defaultHTTPClient(cfg.Dial)
	}
	v.client = guardClient(client)
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.leeway <= 0 {
		v.leeway = 30 * time.Second
	}
	if v.minRefresh <= 0 {
		v.minRefresh = 30 * time.Second
	}
	return v
}

// Verify checks token against idp and returns what it establishes. A
// refused token is an *Error (Status 401, or 503 with ErrIdPUnavailable
// when the issuer's keys cannot be obtained and none are cached); a
// cancelled ctx returns ctx's error. Errors never contain the token.
func (v *Verifier) Verify(ctx context.Context, idp store.IdP, token string) (*Claims, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := v.now()
	ck := v.verified.key(&idp, token)
	if c, ok := v.verified.get(ck, now); ok {
		return &c, nil
	}

	kid, unverified, perr := parseHeader(token)
	if perr != nil {
		return nil, perr
	}
	// Refuse another issuer's token before looking up keys, so foreign
	// tokens cannot trigger key refreshes. iss is checked again once the
	// signature holds.
	var peek struct {
		Iss any `json:"iss"`
	}
	if json.Unmarshal(unverified, &peek) != nil {
		return nil, newError(ReasonMalformed, "the token payload is not a JSON object", nil)
	}
	if iss, ok := peek.Iss.(string); ok && !sameIssuer(iss, idp.Issuer) {
		return nil, wrongIssuer(iss, idp.Issuer)
	}

	ik, err := v.keysFor(idp.Issuer)
	if err != nil {
		return nil, newError(ReasonIdPUnavailable, "the gateway could not set up verification for this IdP", err)
	}
	jwksURI, err := ik.jwksURI(ctx)
	if err != nil {
		return nil, v.unavailable(ctx, err)
	}
	set, _, err := ik.jwks.get(ctx, jwksURI, false)
	if set == nil {
		return nil, v.unavailable(ctx, err)
	}
	if !hasKID(set, kid) {
		// A kid we do not know may be a key the IdP just added: refresh,
		// at most once per MinRefresh for the issuer.
		set, fetched, err := ik.jwks.get(ctx, jwksURI, true)
		switch {
		case err != nil:
			return nil, v.unavailable(ctx, err)
		case !hasKID(set, kid):
			msg := "the token's signing key (kid " + quoteShort(kid) + ") is not among the IdP's keys"
			if !fetched {
				msg += " (the keys were refreshed recently; retry in a while if the IdP just rotated them)"
			}
			return nil, newError(ReasonUnknownKID, msg, nil)
		}
	}

	v.signatures.Add(1)
	payload, err := ik.adaptor.Decode(token, jwksURI)
	if err != nil {
		var fe *fetchError
		if errors.As(err, &fe) {
			return nil, v.unavailable(ctx, err)
		}
		return nil, newError(ReasonBadSignature, "the token's signature does not verify", err)
	}
	claims, ok := payload.(map[string]any)
	if !ok {
		return nil, newError(ReasonMalformed, "the token payload is not a JSON object", nil)
	}
	c, cerr := checkClaims(&idp, claims, now, v.leeway)
	if cerr != nil {
		return nil, cerr
	}
	v.verified.put(ck, c, now)
	return c, nil
}

func (v *Verifier) unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return newError(ReasonIdPUnavailable, "the gateway cannot reach the IdP to get its signing keys; retry later", err)
}

// keysFor returns the state kept for issuer, creating it on first use.
// Callers pass only configured IdPs, so the map is bounded by configuration.
func (v *Verifier) keysFor(issuer string) (*issuerKeys, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	v.mu.Lock()
	defer v.mu.Unlock()
	if ik := v.issuers[issuer]; ik != nil {
		return ik, nil
	}
	ik, err := v.newIssuerKeys(issuer)
	if err != nil {
		return nil, fmt.Errorf("set up issuer %s: %w", issuer, err)
	}
	v.issuers[issuer] = ik
	return ik, nil
}
