package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

func newTestVerifier(clk *fakeClock) *Verifier {
	return New(Config{Now: clk.Now, MinRefresh: 30 * time.Second})
}

func TestVerifyAccepts(t *testing.T) {
	keys := testKeys()
	tests := []struct {
		name    string
		path    string // issuer path; a trailing slash as Entra v1 has it
		claim   string
		omitAlg bool
		claims  func(p *testIdP, now time.Time) map[string]any
		want    Claims
	}{
		{
			name:  "generic sub",
			claim: "sub",
			claims: func(p *testIdP, now time.Time) map[string]any {
				return with(claimsFor(p, now), "jti", "j-1")
			},
			want: Claims{Subject: "agent-1", JTI: "j-1"},
		},
		{
			name:  "okta cid",
			path:  "/oauth2/default",
			claim: "cid",
			claims: func(p *testIdP, now time.Time) map[string]any {
				return with(claimsFor(p, now), "sub", "0oa1agent", "cid", "0oa1agent", "scp", []string{"agw"}, "ver", 1, "jti", "AT.x")
			},
			want: Claims{Subject: "0oa1agent", JTI: "AT.x"},
		},
		{
			name:    "entra v1 appid, issuer with trailing slash, keys without alg",
			path:    "/11111111-2222-3333-4444-555555555555/",
			claim:   "appid",
			omitAlg: true,
			claims: func(p *testIdP, now time.Time) map[string]any {
				return with(claimsFor(p, now), "sub", "oid-1", "appid", "app-1", "tid", "11111111-2222-3333-4444-555555555555", "ver", "1.0", "jti", nil)
			},
			want: Claims{Subject: "app-1", TenantID: "11111111-2222-3333-4444-555555555555"},
		},
		{
			name:    "entra v2 azp",
			path:    "/11111111-2222-3333-4444-555555555555/v2.0",
			claim:   "azp",
			omitAlg: true,
			claims: func(p *testIdP, now time.Time) map[string]any {
				return with(claimsFor(p, now), "azp", "app-2", "tid", "11111111-2222-3333-4444-555555555555", "ver", "2.0", "uti", "u", "jti", nil)
			},
			want: Claims{Subject: "app-2", TenantID: "11111111-2222-3333-4444-555555555555"},
		},
		{
			name:  "audience in a list",
			claim: "sub",
			claims: func(p *testIdP, now time.Time) map[string]any {
				return with(claimsFor(p, now), "aud", []string{"https://other", "api://agw"}, "jti", "j-2")
			},
			want: Claims{Subject: "agent-1", JTI: "j-2"},
		},
		{
			name:  "expired within the leeway",
			claim: "sub",
			claims: func(p *testIdP, now time.Time) map[string]any {
				return with(claimsFor(p, now), "exp", now.Add(-10*time.Second).Unix(), "iat", now.Add(-time.Hour).Unix(), "nbf", nil, "jti", "j-3")
			},
			want: Claims{Subject: "agent-1", JTI: "j-3"},
		},
		{
			name:  "nbf and iat slightly ahead, within the leeway",
			claim: "sub",
			claims: func(p *testIdP, now time.Time) map[string]any {
				return with(claimsFor(p, now), "nbf", now.Add(20*time.Second).Unix(), "iat", now.Add(20*time.Second).Unix(), "jti", "j-4")
			},
			want: Claims{Subject: "agent-1", JTI: "j-4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			p := newTestIdP(t, tt.path)
			p.set(func(p *testIdP) { p.omitAlg = tt.omitAlg })
			p.setKeys(key("k1", keys[0]), key("k2", keys[1]))
			v := newTestVerifier(clk)
			c := tt.claims(p, clk.Now())
			tok := mint(t, keys[1], "k2", c)

			got, err := v.Verify(context.Background(), p.store(tt.claim), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tt.want
			want.Issuer = p.issuer
			want.ExpiresAt = time.Unix(int64(toFloat(c["exp"])), 0)
			if *got != want {
				t.Errorf("claims = %+v, want %+v", *got, want)
			}
		})
	}
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int:
		return float64(n)
	case float64:
		return n
	}
	panic(fmt.Sprintf("%T", v))
}

func TestVerifyRejects(t *testing.T) {
	keys := testKeys()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&keys[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	hs256 := func(secret []byte, hdr, claims map[string]any) string {
		signing := b64json(t, hdr) + "." + b64json(t, claims)
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(signing))
		return signing + "." + b64(m.Sum(nil))
	}
	es256 := func(hdr, claims map[string]any) string {
		signing := b64json(t, hdr) + "." + b64json(t, claims)
		sum := sha256.Sum256([]byte(signing))
		r, s, err := ecdsa.Sign(rand.Reader, ecKey, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return signing + "." + b64(sig)
	}

	type mintFunc func(p *testIdP, now time.Time) string
	tests := []struct {
		name string
		tok  mintFunc
		want string
	}{
		{"alg none", func(p *testIdP, now time.Time) string {
			return b64json(t, map[string]any{"alg": "none", "kid": "k1"}) + "." + b64json(t, claimsFor(p, now)) + "."
		}, ReasonAlgNotAllowed},
		{"alg None (case variant)", func(p *testIdP, now time.Time) string {
			return b64json(t, map[string]any{"alg": "None", "kid": "k1"}) + "." + b64json(t, claimsFor(p, now)) + "."
		}, ReasonAlgNotAllowed},
		{"HS256 keyed with the RSA public key PEM", func(p *testIdP, now time.Time) string {
			return hs256(pubPEM, map[string]any{"alg": "HS256", "kid": "k1"}, claimsFor(p, now))
		}, ReasonAlgNotAllowed},
		{"HS256 keyed with the RSA modulus", func(p *testIdP, now time.Time) string {
			return hs256(keys[0].PublicKey.N.Bytes(), map[string]any{"alg": "HS256", "kid": "k1"}, claimsFor(p, now))
		}, ReasonAlgNotAllowed},
		{"ES256", func(p *testIdP, now time.Time) string {
			return es256(map[string]any{"alg": "ES256", "kid": "k1"}, claimsFor(p, now))
		}, ReasonAlgNotAllowed},
		{"RS512 header", func(p *testIdP, now time.Time) string {
			return mintHeader(t, keys[0], map[string]any{"alg": "RS512", "kid": "k1"}, claimsFor(p, now))
		}, ReasonAlgNotAllowed},
		{"tampered payload", func(p *testIdP, now time.Time) string {
			tok := mint(t, keys[0], "k1", claimsFor(p, now))
			parts := strings.Split(tok, ".")
			parts[1] = b64json(t, with(claimsFor(p, now), "sub", "admin"))
			return strings.Join(parts, ".")
		}, ReasonBadSignature},
		{"signed by another key under a known kid", func(p *testIdP, now time.Time) string {
			return mint(t, keys[2], "k1", claimsFor(p, now))
		}, ReasonBadSignature},
		{"RS256 without signature", func(p *testIdP, now time.Time) string {
			tok := mint(t, keys[0], "k1", claimsFor(p, now))
			return tok[:strings.LastIndex(tok, ".")+1]
		}, ReasonBadSignature},
		{"wrong issuer", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "iss", "https://evil.example"))
		}, ReasonWrongIssuer},
		{"wrong audience: a token minted for the backend", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "aud", "https://api.backend.example"))
		}, ReasonWrongAudience},
		{"wrong audience list", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "aud", []string{"a", "b"}))
		}, ReasonWrongAudience},
		{"expired", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "exp", now.Add(-time.Minute).Unix(), "iat", now.Add(-time.Hour).Unix(), "nbf", nil))
		}, ReasonExpired},
		{"not yet valid", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "nbf", now.Add(5*time.Minute).Unix()))
		}, ReasonNotYetValid},
		{"issued in the future", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "iat", now.Add(5*time.Minute).Unix(), "nbf", nil))
		}, ReasonIssuedInFuture},
		{"no subject claim", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "sub", nil))
		}, ReasonMissingClaim},
		{"empty subject claim", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "sub", ""))
		}, ReasonMissingClaim},
		{"no exp", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "exp", nil))
		}, ReasonMissingClaim},
		{"no iat", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "iat", nil))
		}, ReasonMissingClaim},
		{"no aud", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "aud", nil))
		}, ReasonMissingClaim},
		{"no iss", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "iss", nil))
		}, ReasonMissingClaim},
		{"exp as a string", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "exp", "tomorrow"))
		}, ReasonMalformed},
		{"exp beyond year 9999", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "k1", with(claimsFor(p, now), "exp", 1e300))
		}, ReasonMalformed},
		{"unknown kid", func(p *testIdP, now time.Time) string {
			return mint(t, keys[0], "nobody", claimsFor(p, now))
		}, ReasonUnknownKID},
		{"no kid", func(p *testIdP, now time.Time) string {
			return mintHeader(t, keys[0], map[string]any{"alg": "RS256"}, claimsFor(p, now))
		}, ReasonMalformed},
		{"critical header extension", func(p *testIdP, now time.Time) string {
			return mintHeader(t, keys[0], map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"exp"}, "exp": 1}, claimsFor(p, now))
		}, ReasonMalformed},
		{"two parts", func(*testIdP, time.Time) string { return "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0" }, ReasonMalformed},
		{"four parts", func(*testIdP, time.Time) string { return "a.b.c.d" }, ReasonMalformed},
		{"standard base64 alphabet", func(*testIdP, time.Time) string { return "eyJh+GciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.abc/" }, ReasonMalformed},
		{"header not JSON", func(p *testIdP, now time.Time) string {
			return b64([]byte("not json")) + "." + b64json(t, claimsFor(p, now)) + ".c2ln"
		}, ReasonMalformed},
		{"payload not JSON", func(p *testIdP, now time.Time) string {
			return b64json(t, map[string]any{"alg": "RS256", "kid": "k1"}) + "." + b64([]byte("[1,2")) + ".c2ln"
		}, ReasonMalformed},
		{"oversized", func(*testIdP, time.Time) string {
			return strings.Repeat("a", maxTokenLen) + ".b.c"
		}, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			p := newTestIdP(t, "")
			p.setKeys(key("k1", keys[0]), key("k2", keys[1]))
			v := newTestVerifier(clk)
			tok := tt.tok(p, clk.Now())

			_, err := v.Verify(context.Background(), p.store("sub"), tok)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify error = %v, want *Error %s", err, tt.want)
			}
			if e.Reason != tt.want {
				t.Errorf("Reason = %q, want %q (%v)", e.Reason, tt.want, err)
			}
			if e.Status != http.StatusUnauthorized {
				t.Errorf("Status = %d, want 401", e.Status)
			}
			if errors.Is(err, ErrIdPUnavailable) {
				t.Errorf("a refused token matches ErrIdPUnavailable")
			}
			for _, part := range strings.Split(tok, ".") {
				if len(part) > 16 && (strings.Contains(err.Error(), part) || strings.Contains(e.Public(), part)) {
					t.Errorf("error text contains part of the token: %v", err)
				}
			}
		})
	}
}

// The cases the gateway's audit must tell apart each have their own reason.
func TestReasonsAreDistinct(t *testing.T) {
	reasons := []string{
		ReasonAlgNotAllowed, ReasonBadSignature, ReasonMalformed, ReasonWrongIssuer,
		ReasonWrongAudience, ReasonExpired, ReasonNotYetValid, ReasonIssuedInFuture,
		ReasonMissingClaim, ReasonUnknownKID, ReasonIdPUnavailable,
	}
	seen := map[string]bool{}
	for _, r := range reasons {
		if seen[r] {
			t.Errorf("reason %q used twice", r)
		}
		seen[r] = true
	}
}

// headerWith finds a kid for which the base64url header contains both '-'
// and '_', the characters standard base64 does not have.
func headerWith(t *testing.T) (kid string, hdr map[string]any) {
	t.Helper()
	// In the third byte of a base64 group, '~' (0x7e) encodes to '-' and
	// '?' (0x3f) to '_'; runs of them land there for some prefix length.
	for i := range 1000 {
		kid = fmt.Sprintf("key-%d~~~???", i)
		hdr = map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}
		enc := b64json(t, hdr)
		if strings.Contains(enc, "-") && strings.Contains(enc, "_") {
			return kid, hdr
		}
	}
	t.Fatal("no kid found whose header encodes with '-' and '_'")
	return "", nil
}

func TestVerifyHeaderWithURLSafeCharacters(t *testing.T) {
	keys := testKeys()
	clk := newFakeClock()
	p := newTestIdP(t, "")
	kid, hdr := headerWith(t)
	p.setKeys(key(kid, keys[0]))
	tok := mintHeader(t, keys[0], hdr, claimsFor(p, clk.Now()))
	h := tok[:strings.IndexByte(tok, '.')]
	if !strings.ContainsAny(h, "-_") {
		t.Fatalf("header %q has neither '-' nor '_'", h)
	}

	c, err := newTestVerifier(clk).Verify(context.Background(), p.store("sub"), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "agent-1" {
		t.Errorf("Subject = %q", c.Subject)
	}
	if !LooksLikeJWT(tok) {
		t.Errorf("LooksLikeJWT = false")
	}
}

func TestVerifyCachesVerifiedTokens(t *testing.T) {
	keys := testKeys()
	clk := newFakeClock()
	p := newTestIdP(t, "")
	p.setKeys(key("k1", keys[0]))
	v := newTestVerifier(clk)
	idp := p.store("sub")
	c := with(claimsFor(p, clk.Now()), "exp", clk.Now().Add(3*time.Minute).Unix())
	tok := mint(t, keys[0], "k1", c)
	ctx := context.Background()

	t.Run("repeat verifications do no RSA work", func(t *testing.T) {
		for range 5 {
			if _, err := v.Verify(ctx, idp, tok); err != nil {
				t.Fatal(err)
			}
		}
		if n := v.signatures.Load(); n != 1 {
			t.Errorf("signature checks = %d, want 1", n)
		}
	})
	t.Run("the cache is per IdP setting", func(t *testing.T) {
		other := idp
		other.Audience = "api://other"
		_, err := v.Verify(ctx, other, tok)
		if reason(err) != ReasonWrongAudience {
			t.Errorf("err = %v, want %s", err, ReasonWrongAudience)
		}
	})
	t.Run("entries lapse at the cap", func(t *testing.T) {
		clk.Advance(verifiedTTL)
		before := v.signatures.Load()
		if _, err := v.Verify(ctx, idp, tok); err != nil {
			t.Fatal(err)
		}
		if v.signatures.Load() != before+1 {
			t.Errorf("no signature check after the cache cap")
		}
	})
	t.Run("entries never outlive exp", func(t *testing.T) {
		clk.Advance(time.Minute + 31*time.Second) // past exp and the leeway
		_, err := v.Verify(ctx, idp, tok)
		if reason(err) != ReasonExpired {
			t.Errorf("err = %v, want %s", err, ReasonExpired)
		}
	})
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	c := newVerifiedCache(64)
	now := time.Unix(1_700_000_000, 0)
	idp := &store.IdP{Issuer: "https://idp", Audience: "a", Claim: "sub"}
	for i := range 1000 {
		cl := &Claims{Subject: "s", ExpiresAt: now.Add(time.Hour)}
		c.put(c.key(idp, fmt.Sprint(i)), cl, now)
		if c.len() > 64 {
			t.Fatalf("cache holds %d entries, bound is 64", c.len())
		}
	}
	// Expired entries go first.
	c = newVerifiedCache(4)
	for i := range 4 {
		c.put(c.key(idp, fmt.Sprint(i)), &Claims{ExpiresAt: now.Add(time.Duration(i+1) * time.Second)}, now)
	}
	later := now.Add(10 * time.Second)
	keep := c.key(idp, "new")
	c.put(keep, &Claims{ExpiresAt: later.Add(time.Hour)}, later)
	if c.len() != 1 {
		t.Errorf("after eviction len = %d, want 1 (expired entries dropped)", c.len())
	}
	if _, ok := c.get(keep, later); !ok {
		t.Errorf("new entry missing")
	}
}

func TestKeyRotation(t *testing.T) {
	keys := testKeys()
	clk := newFakeClock()
	p := newTestIdP(t, "")
	p.setKeys(key("old", keys[0]))
	v := newTestVerifier(clk)
	idp := p.store("sub")
	ctx := context.Background()

	oldTok := mint(t, keys[0], "old", claimsFor(p, clk.Now()))
	if _, err := v.Verify(ctx, idp, oldTok); err != nil {
		t.Fatal(err)
	}
	if n := p.jwksFetches.Load(); n != 1 {
		t.Fatalf("JWKS fetches = %d, want 1", n)
	}

	// The IdP rotates: the new key is served, the old one withdrawn.
	p.setKeys(key("new", keys[1]))
	newTok := mint(t, keys[1], "new", claimsFor(p, clk.Now()))

	t.Run("within MinRefresh of the last fetch the new kid waits", func(t *testing.T) {
		_, err := v.Verify(ctx, idp, newTok)
		if reason(err) != ReasonUnknownKID {
			t.Fatalf("err = %v, want %s", err, ReasonUnknownKID)
		}
		if n := p.jwksFetches.Load(); n != 1 {
			t.Errorf("JWKS fetches = %d, want 1 (rate limited)", n)
		}
	})
	t.Run("the unknown kid triggers a refresh", func(t *testing.T) {
		clk.Advance(31 * time.Second)
		c, err := v.Verify(ctx, idp, newTok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.Subject != "agent-1" {
			t.Errorf("Subject = %q", c.Subject)
		}
		if n := p.jwksFetches.Load(); n != 2 {
			t.Errorf("JWKS fetches = %d, want 2", n)
		}
	})
	t.Run("a new token under the withdrawn key is refused", func(t *testing.T) {
		_, err := v.Verify(ctx, idp, mint(t, keys[0], "old", claimsFor(p, clk.Now())))
		if reason(err) != ReasonUnknownKID {
			t.Errorf("err = %v, want %s", err, ReasonUnknownKID)
		}
	})
	t.Run("an already verified token lapses with the cache cap", func(t *testing.T) {
		if _, err := v.Verify(ctx, idp, oldTok); err != nil {
			t.Errorf("cached token: %v", err)
		}
		clk.Advance(verifiedTTL)
		if _, err := v.Verify(ctx, idp, oldTok); reason(err) != ReasonUnknownKID {
			t.Errorf("err = %v, want %s", err, ReasonUnknownKID)
		}
	})
}

func TestUnknownKIDFloodIsRateLimited(t *testing.T) {
	keys := testKeys()
	clk := newFakeClock()
	p := newTestIdP(t, "")
	p.setKeys(key("k1", keys[0]))
	v := newTestVerifier(clk)
	idp := p.store("sub")
	ctx := context.Background()
	good := mint(t, keys[0], "k1", claimsFor(p, clk.Now()))
	if _, err := v.Verify(ctx, idp, good); err != nil {
		t.Fatal(err)
	}
	// Signatures are irrelevant: an unknown kid is refused before any RSA work.
	bogus := make([]string, 200)
	for i := range bogus {
		bogus[i] = mintHeader(t, keys[0], map[string]any{"alg": "RS256", "kid": fmt.Sprintf("bogus-%d", i)}, claimsFor(p, clk.Now()))
		bogus[i] = bogus[i][:strings.LastIndex(bogus[i], ".")] + ".c2ln"
	}
	flood := func() {
		var wg sync.WaitGroup
		for _, tok := range bogus {
			wg.Go(func() {
				if _, err := v.Verify(ctx, idp, tok); reason(err) != ReasonUnknownKID {
					t.Errorf("err = %v, want %s", err, ReasonUnknownKID)
				}
			})
		}
		wg.Go(func() {
			if _, err := v.Verify(ctx, idp, good); err != nil {
				t.Errorf("a good token during the flood: %v", err)
			}
		})
		wg.Wait()
	}

	steps := []struct {
		name    string
		advance time.Duration
		want    int64 // JWKS fetches after the flood
	}{
		{"within MinRefresh of the first fetch: none", 0, 1},
		{"after MinRefresh: exactly one", 31 * time.Second, 2},
		{"still within MinRefresh: none", 29 * time.Second, 2},
		{"after MinRefresh again: exactly one", 2 * time.Second, 3},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clk.Advance(s.advance)
			flood()
			if n := p.jwksFetches.Load(); n != s.want {
				t.Errorf("JWKS fetches = %d, want %d", n, s.want)
			}
		})
	}
}

func TestIdPUnavailable(t *testing.T) {
	keys := testKeys()
	ctx := context.Background()

	t.Run("cached keys keep working after the IdP stops", func(t *testing.T) {
		clk := newFakeClock()
		p := newTestIdP(t, "")
		p.setKeys(key("k1", keys[0]))
		v := newTestVerifier(clk)
		idp := p.store("sub")
		if _, err := v.Verify(ctx, idp, mint(t, keys[0], "k1", claimsFor(p, clk.Now()))); err != nil {
			t.Fatal(err)
		}
		p.srv.Close()

		for _, adv := range []time.Duration{keysTTL + time.Second, discoveryTTL, 24 * time.Hour} {
			clk.Advance(adv)
			if _, err := v.Verify(ctx, idp, mint(t, keys[0], "k1", claimsFor(p, clk.Now()))); err != nil {
				t.Fatalf("after %v without the IdP: %v", adv, err)
			}
		}
		// A kid that might be new cannot be checked: fail closed, 503.
		clk.Advance(time.Minute)
		_, err := v.Verify(ctx, idp, mint(t, keys[1], "k2", claimsFor(p, clk.Now())))
		if !errors.Is(err, ErrIdPUnavailable) {
			t.Errorf("unknown kid with the IdP down: err = %v, want ErrIdPUnavailable", err)
		}
	})

	t.Run("no keys yet: fail closed, and fast", func(t *testing.T) {
		clk := newFakeClock()
		p := newTestIdP(t, "")
		p.setKeys(key("k1", keys[0]))
		idp := p.store("sub")
		tok := mint(t, keys[0], "k1", claimsFor(p, clk.Now()))
		p.srv.Close()
		v := newTestVerifier(clk)
		for i := range 3 {
			_, err := v.Verify(ctx, idp, tok)
			if !errors.Is(err, ErrIdPUnavailable) {
				t.Fatalf("call %d: err = %v, want ErrIdPUnavailable", i, err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Reason != ReasonIdPUnavailable {
				t.Fatalf("call %d: err = %#v, want 503 %s", i, err, ReasonIdPUnavailable)
			}
		}
		ik, _ := v.keysFor(idp.Issuer)
		if n := ik.discovery.fetches.Load(); n != 1 {
			t.Errorf("discovery attempts = %d, want 1 (later calls fail fast)", n)
		}
	})
}

func TestIssuerMisconfiguration(t *testing.T) {
	keys := testKeys()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(p *testIdP)
		kid   string
		key   *rsa.PrivateKey
		want  string
	}{
		{"discovery names another issuer", func(p *testIdP) { p.docIssuer = "https://other.example" }, "k1", keys[0], ReasonIdPUnavailable},
		{"jwks_uri over plain http off loopback", func(p *testIdP) { p.jwksURI = "http://keys.example/jwks" }, "k1", keys[0], ReasonIdPUnavailable},
		{"JWKS answers 500", func(p *testIdP) { p.jwksStatus = http.StatusInternalServerError }, "k1", keys[0], ReasonIdPUnavailable},
		{"JWKS has only a weak key", func(p *testIdP) { p.keys = []servedKey{key("weak", weak)} }, "weak", weak, ReasonIdPUnavailable},
		{"weak key beside a good one is ignored", func(p *testIdP) { p.keys = append(p.keys, key("weak", weak)) }, "weak", weak, ReasonUnknownKID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			p := newTestIdP(t, "")
			p.setKeys(key("k1", keys[0]))
			p.set(tt.setup)
			_, err := newTestVerifier(clk).Verify(context.Background(), p.store("sub"), mint(t, tt.key, tt.kid, claimsFor(p, clk.Now())))
			if reason(err) != tt.want {
				t.Errorf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestVerifyHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(Config{}).Verify(ctx, store.IdP{Issuer: "http://127.0.0.1:1"}, "a.b.c")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
