package jwt

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// testKeys are generated once: 2048-bit generation is slow enough to matter
// when every test wants a few.
var testKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// testIdP is a minimal OIDC issuer on 127.0.0.1: a discovery document and a
// JWKS under the issuer's path, with keys that can be rotated and a counter
// of fetches.
type testIdP struct {
	srv    *httptest.Server
	issuer string // as in discovery and iss; may end in "/" (Entra v1)

	mu         sync.Mutex
	keys       []servedKey
	omitAlg    bool   // Entra ID publishes keys without "alg"
	jwksStatus int    // non-zero: answer the JWKS with this status
	docIssuer  string // non-empty: the discovery document names this issuer
	jwksURI    string // non-empty: the discovery document points here

	jwksFetches      atomic.Int64
	discoveryFetches atomic.Int64
}

type servedKey struct {
	kid string
	pub *rsa.PublicKey
}

// newTestIdP starts an issuer at http://127.0.0.1:port + path.
func newTestIdP(t testing.TB, path string) *testIdP {
	t.Helper()
	p := &testIdP{}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL + path
	return p
}

func (p *testIdP) base() string { return strings.TrimSuffix(p.issuer, "/") }

// store returns the store.IdP an operator would configure for p.
func (p *testIdP) store(claim string) store.IdP {
	idp := store.IdP{Name: "test", Issuer: p.issuer, Audience: "api://agw", Claim: claim}
	idp.Normalize()
	return idp
}

func (p *testIdP) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r.URL.Path {
	case strings.TrimPrefix(p.base(), p.srv.URL) + "/.well-known/openid-configuration":
		p.discoveryFetches.Add(1)
		doc := map[string]string{"issuer": p.issuer, "jwks_uri": p.base() + "/keys"}
		if p.docIssuer != "" {
			doc["issuer"] = p.docIssuer
		}
		if p.jwksURI != "" {
			doc["jwks_uri"] = p.jwksURI
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	case strings.TrimPrefix(p.base(), p.srv.URL) + "/keys":
		p.jwksFetches.Add(1)
		if p.jwksStatus != 0 {
			http.Error(w, `{"keys":[]}`, p.jwksStatus)
			return
		}
		var keys []map[string]string
		for _, k := range p.keys {
			jk := map[string]string{
				"kty": "RSA", "use": "sig", "kid": k.kid,
				"n": b64(k.pub.N.Bytes()),
				"e": b64(big.NewInt(int64(k.pub.E)).Bytes()),
			}
			if !p.omitAlg {
				jk["alg"] = "RS256"
			}
			keys = append(keys, jk)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	default:
		http.NotFound(w, r)
	}
}

// setKeys replaces the served keys (a rotation when the kids differ).
func (p *testIdP) setKeys(keys ...servedKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = keys
}

func (p *testIdP) set(f func(p *testIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func key(kid string, k *rsa.PrivateKey) servedKey { return servedKey{kid: kid, pub: &k.PublicKey} }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// mint signs claims with RS256 under kid.
func mint(t testing.TB, k *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	return mintHeader(t, k, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
}

// mintHeader signs claims with RS256 under an arbitrary header (whatever
// its alg says).
func mintHeader(t testing.TB, k *rsa.PrivateKey, hdr, claims map[string]any) string {
	t.Helper()
	signing := b64json(t, hdr) + "." + b64json(t, claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

var jtiSeq atomic.Int64

// claimsFor is a valid claim set for p at now, minted for the gateway.
func claimsFor(p *testIdP, now time.Time) map[string]any {
	return map[string]any{
		"iss": p.issuer,
		"aud": "api://agw",
		"sub": "agent-1",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
		"jti": fmt.Sprintf("jti-%d", jtiSeq.Add(1)),
	}
}

// with returns a copy of c with the changes applied; a nil value deletes.
func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	// Real time, whole seconds: tokens minted here are also valid for code
	// that reads time.Now (the library's own checks, in one test).
	return &fakeClock{t: time.Now().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
