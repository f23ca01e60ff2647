package gateway

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agw-dev/agw/gateway/auth"
	"github.com/agw-dev/agw/store"
)

// The local OIDC issuer and OAuth2 token endpoint the IdP and oauth2 tests
// run against (the shape of jwt's test issuer, copied: test code is not
// imported across packages).

// oidcKeys are generated once: 2048-bit generation is slow.
var oidcKeys = sync.OnceValue(func() []*rsa.PrivateKey {
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

// oidcIssuer is an OIDC issuer on 127.0.0.1: a discovery document and a
// JWKS (kid and alg on every key) under the issuer's path, keys that can be
// rotated, and counters of what was fetched.
type oidcIssuer struct {
	srv    *httptest.Server
	issuer string

	mu      sync.Mutex
	keys    map[string]*rsa.PrivateKey // kid → key, served in the JWKS
	omitAlg bool                       // Entra ID publishes keys without alg

	discoveryFetches, jwksFetches atomic.Int64
}

func newOIDCIssuer(t testing.TB, path string) *oidcIssuer {
	t.Helper()
	p := &oidcIssuer{keys: map[string]*rsa.PrivateKey{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL + path
	return p
}

func (p *oidcIssuer) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	base := strings.TrimPrefix(strings.TrimSuffix(p.issuer, "/"), p.srv.URL)
	switch r.URL.Path {
	case base + "/.well-known/openid-configuration":
		p.discoveryFetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.issuer, "jwks_uri": strings.TrimSuffix(p.issuer, "/") + "/keys"})
	case base + "/keys":
		p.jwksFetches.Add(1)
		var keys []map[string]string
		for kid, k := range p.keys {
			jk := map[string]string{
				"kty": "RSA", "use": "sig", "kid": kid,
				"n": b64url(k.PublicKey.N.Bytes()),
				"e": b64url(big.NewInt(int64(k.PublicKey.E)).Bytes()),
			}
			if !p.omitAlg {
				jk["alg"] = "RS256"
			}
			keys = append(keys, jk)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	default:
		http.NotFound(w, r)
	}
}

// publish replaces the served keys: kid, key, kid, key...
func (p *oidcIssuer) publish(kv ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = map[string]*rsa.PrivateKey{}
	for i := 0; i+1 < len(kv); i += 2 {
		p.keys[kv[i].(string)] = kv[i+1].(*rsa.PrivateKey)
	}
}

// idp is the store.IdP an operator registers for p.
func (p *oidcIssuer) idp(name, audience, claim string) store.IdP {
	i := store.IdP{Name: name, Issuer: p.issuer, Audience: audience, Claim: claim}
	i.Normalize()
	return i
}

// claims is a valid claim set from p for audience at now.
func (p *oidcIssuer) claims(audience string, now time.Time, kv ...any) map[string]any {
	c := map[string]any{
		"iss": p.issuer,
		"aud": audience,
		"sub": "agent-sub",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
		"jti": "jti-" + strconv.FormatInt(jwtSeq.Add(1), 10),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

var jwtSeq atomic.Int64

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64urlJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64url(b)
}

// mintJWT signs claims with RS256 under kid.
func mintJWT(t testing.TB, k *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	return mintJWTHeader(t, k, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
}

// mintJWTHeader signs claims with RS256 whatever the header says.
func mintJWTHeader(t testing.TB, k *rsa.PrivateKey, hdr, claims map[string]any) string {
	t.Helper()
	signing := b64urlJSON(t, hdr) + "." + b64urlJSON(t, claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64url(sig)
}

// testClock is an injectable clock that moves only when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// newTestClock starts at the real time in whole seconds, so tokens minted
// at it are valid for code that reads time.Now.
func newTestClock() *testClock { return &testClock{t: time.Now().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tokenEndpoint is an OAuth2 token endpoint on 127.0.0.1 that issues
// "at-1", "at-2", ... and counts its calls.
type tokenEndpoint struct {
	srv   *httptest.Server
	calls atomic.Int64

	mu        sync.Mutex
	status    int // non-zero: answer every request with this status
	expiresIn int // seconds; 0 means 3600
	forms     []url.Values
	secrets   []string // client secrets presented (Basic or form)
}

func newTokenEndpoint(t testing.TB) *tokenEndpoint {
	t.Helper()
	te := &tokenEndpoint{}
	te.srv = httptest.NewServer(http.HandlerFunc(te.serve))
	t.Cleanup(te.srv.Close)
	return te
}

func (te *tokenEndpoint) url() string { return te.srv.URL + "/oauth2/token" }

func (te *tokenEndpoint) set(f func(te *tokenEndpoint)) {
	te.mu.Lock()
	defer te.mu.Unlock()
	f(te)
}

func (te *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	n := te.calls.Add(1)
	_ = r.ParseForm()
	te.mu.Lock()
	defer te.mu.Unlock()
	te.forms = append(te.forms, r.PostForm)
	secret := r.PostForm.Get("client_secret")
	if _, p, ok := r.BasicAuth(); ok {
		secret, _ = url.QueryUnescape(p)
	}
	te.secrets = append(te.secrets, secret)
	if te.status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(te.status)
		_, _ = fmt.Fprintf(w, `{"error":"temporarily_unavailable"}`)
		return
	}
	exp := te.expiresIn
	if exp == 0 {
		exp = 3600
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + strconv.FormatInt(n, 10), "token_type": "Bearer", "expires_in": exp})
}

func (te *tokenEndpoint) lastSecret() string {
	te.mu.Lock()
	defer te.mu.Unlock()
	if len(te.secrets) == 0 {
		return ""
	}
	return te.secrets[len(te.secrets)-1]
}

func (te *tokenEndpoint) lastForm() url.Values {
	te.mu.Lock()
	defer te.mu.Unlock()
	if len(te.forms) == 0 {
		return nil
	}
	return te.forms[len(te.forms)-1]
}

// reserve starts another proxy built from the harness's state, CA, audit
// and log with the changes mod makes (an IdP verifier, a clock), and points
// the harness's clients at it. The first proxy (h.p) serves nobody from
// then on.
func (h *harness) reserve(mod func(cfg *Config)) *Gateway {
	h.t.Helper()
	cfg := Config{
		State: h.st,
		CA:    h.ca,
		Audit: func(ev store.AuditEvent) {
			h.mu.Lock()
			h.audits = append(h.audits, ev)
			h.mu.Unlock()
			h.auditc <- ev
		},
		Logger: slog.New(slog.NewTextHandler(&h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	mod(&cfg)
	p := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Serve: %v", err)
		}
	})
	return p
}

// assertNotLeaked fails if any of secrets appears in an audit record or a
// log line.
func (h *harness) assertNotLeaked(secrets ...string) {
	h.t.Helper()
	h.mu.Lock()
	js, err := json.Marshal(h.audits)
	h.mu.Unlock()
	if err != nil {
		h.t.Fatal(err)
	}
	logs := h.logs.String()
	for _, s := range secrets {
		if strings.Contains(string(js), s) {
			h.t.Errorf("an audit record contains %.12s...", s)
		}
		if strings.Contains(logs, s) {
			h.t.Errorf("the log contains %.12s...", s)
		}
	}
}

// idpStats returns the JWT verification counters of p's verifier.
func (p *Gateway) idpStats() auth.IdPStats {
	iv, _ := p.idp.(*auth.JWTVerifier)
	return iv.Stats()
}
