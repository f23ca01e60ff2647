package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// e2eIssuer is a local OIDC issuer on 127.0.0.1 (plain http, which agw
// allows on loopback): discovery, a JWKS with kid and alg, RS256 keys that
// can be rotated.
type e2eIssuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
	jwks atomic.Int64
}

func newE2EIssuer(t *testing.T) *e2eIssuer {
	t.Helper()
	p := &e2eIssuer{keys: map[string]*rsa.PrivateKey{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth2/default/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.issuer(), "jwks_uri": p.issuer() + "/v1/keys"})
		case "/oauth2/default/v1/keys":
			p.jwks.Add(1)
			var keys []map[string]string
			for kid, k := range p.keys {
				keys = append(keys, map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
					"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *e2eIssuer) issuer() string { return p.srv.URL + "/oauth2/default" }

func (p *e2eIssuer) publish(kid string, k *rsa.PrivateKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = map[string]*rsa.PrivateKey{kid: k}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64uJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64u(b)
}

var e2eJTI atomic.Int64

// oktaClaims is an Okta-style access token for the gateway: cid names the
// client; kv overrides (nil deletes).
func oktaClaims(iss string, kv ...any) map[string]any {
	now := time.Now()
	c := map[string]any{"ver": 1, "iss": iss, "aud": "api://agw", "cid": "0oa-etl", "sub": "0oa-etl",
		"scp": []string{"agw"}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"jti": fmt.Sprintf("AT.e2e-%d", e2eJTI.Add(1))}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func signRS256(k *rsa.PrivateKey, hdr, claims map[string]any) string {
	signing := b64uJSON(hdr) + "." + b64uJSON(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return signing + "." + b64u(sig)
}

func mintRS256(k *rsa.PrivateKey, kid string, claims map[string]any) string {
	return signRS256(k, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
}

// clientFrom is gatewayClient dialing from a loopback address of its own:
// the gateway throttles failed authentications per client address, and the
// rejection cases are many on purpose.
func clientFrom(t *testing.T, e *env, src string) *http.Client {
	t.Helper()
	c := gatewayClient(t, e)
	tr := c.Transport.(*http.Transport)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	addr := e.status.Listeners.HTTPS
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	return c
}

type gwResponse struct {
	status    int
	body      string
	requestID string
}

func send(t *testing.T, c *http.Client, method, url string, hdr map[string]string, body io.Reader) gwResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return gwResponse{status: res.StatusCode, body: string(b), requestID: res.Header.Get("X-Agw-Request-Id")}
}

// auditOf waits for the audit record of a request (records are written in
// batches) and returns it.
func auditOf(t *testing.T, e *env, requestID string) store.AuditEvent {
	t.Helper()
	var found *store.AuditEvent
	eventually(t, 10*time.Second, func() bool {
		for _, ev := range auditEvents(t, e) {
			if ev.RequestID == requestID {
				found = &ev
				return true
			}
		}
		return false
	})
	if found == nil {
		t.Fatalf("no audit record for request %s", requestID)
	}
	return *found
}

// TestIdPAgents: an agent identified by its IdP access token calls a
// backend through the real binary; every kind of bad token is refused with
// its own audited reason; keys the IdP rotates are picked up; with the IdP
// down the keys already fetched keep working and a token no known key
// signed fails closed with 503.
func TestIdPAgents(t *testing.T) {
	e := newEnv(t)
	e.start()
	be := newRecordingBackend(t)
	iss := newE2EIssuer(t)
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	k3, _ := rsa.GenerateKey(rand.Reader, 2048)
	iss.publish("k1", k1)

	const secret = canary + "-idp"
	e.ok(secret+"\n", "backend", "add", "hr", "--host", "hr.corp.net", "--inject", "header", "--header", "x-api-key",
		"--upstream", be.srv.URL, "--upstream-ca", be.caFile, "--secret-stdin")
	e.ok("", "idp", "add", "okta", "--issuer", iss.issuer(), "--audience", "api://agw", "--claim", "cid")
	e.ok("", "agent", "add", "etl", "--idp", "okta", "--subject", "0oa-etl")
	e.ok("", "agent", "add", "off", "--idp", "okta", "--subject", "0oa-off")
	e.ok("", "agent", "disable", "off")
	for _, a := range []string{"etl", "off"} {
		e.ok("", "grant", "add", a, "hr", "--method", "GET", "--path", "/v1/**")
	}
	var idps []store.IdP
	e.jsonOut(&idps, "idp", "list")
	if len(idps) != 1 || idps[0].Name != "okta" || idps[0].Claim != "cid" {
		t.Fatalf("idp list = %+v", idps)
	}
	if _, errOut, code := e.run("", "idp", "remove", "okta"); code == 0 || !strings.Contains(errOut, "agent") {
		t.Errorf("idp remove while agents use it: exit %d: %s", code, errOut)
	}

	port := portOf(e.status.Listeners.HTTPS)
	url := "https://hr.corp.net:" + port + "/v1/employees"
	var tokens []string // every JWT presented, to search for afterwards
	bearer := func(tok string) map[string]string {
		tokens = append(tokens, tok)
		return map[string]string{"Authorization": "Bearer " + tok}
	}

	c := clientFrom(t, e, "127.0.0.2")
	t.Run("agent with a JWT calls the backend", func(t *testing.T) {
		claims := oktaClaims(iss.issuer())
		tok := mintRS256(k1, "k1", claims)
		for range 3 {
			r := send(t, c, "GET", url, bearer(tok), nil)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			seen := be.last(t)
			if got := seen.Header.Get("X-Api-Key"); got != secret {
				t.Errorf("backend got x-api-key %q, want the backend secret", got)
			}
			assertNoToken(t, seen, tok)
			ev := auditOf(t, e, r.requestID)
			if ev.Agent != "etl" || ev.AuthMethod != "jwt" || ev.IdP != "okta" || ev.Subject != "0oa-etl" || ev.JTI != claims["jti"] || ev.Decision != "allow" {
				t.Errorf("audit %+v", ev)
			}
		}
		if n := iss.jwks.Load(); n != 1 {
			t.Errorf("JWKS fetched %d times for three requests, want 1", n)
		}
	})

	t.Run("bad tokens are refused with distinct reasons", func(t *testing.T) {
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		hs256 := func() string {
			der, _ := x509.MarshalPKIXPublicKey(&k1.PublicKey)
			signing := b64uJSON(map[string]any{"alg": "HS256", "kid": "k1"}) + "." + b64uJSON(oktaClaims(iss.issuer()))
			mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			mac.Write([]byte(signing))
			return signing + "." + b64u(mac.Sum(nil))
		}
		es256 := func() string {
			signing := b64uJSON(map[string]any{"alg": "ES256", "kid": "k1"}) + "." + b64uJSON(oktaClaims(iss.issuer()))
			sum := sha256.Sum256([]byte(signing))
			sig, _ := ecdsa.SignASN1(rand.Reader, ec, sum[:])
			return signing + "." + b64u(sig)
		}
		tampered := func() string {
			parts := strings.Split(mintRS256(k1, "k1", oktaClaims(iss.issuer(), "cid", "0oa-other")), ".")
			parts[1] = b64uJSON(oktaClaims(iss.issuer()))
			return strings.Join(parts, ".")
		}
		now := time.Now()
		cases := []struct {
			name, tok      string
			status         int
			typ, reason    string
			src            string
			subjectAudited string
		}{
			{"alg none", b64uJSON(map[string]any{"alg": "none", "kid": "k1"}) + "." + b64uJSON(oktaClaims(iss.issuer())) + ".", 401, "agw_unauthenticated", "jwt_alg_not_allowed", "127.0.0.3", ""},
			{"HS256 keyed with the public key", hs256(), 401, "agw_unauthenticated", "jwt_alg_not_allowed", "127.0.0.3", ""},
			{"ES256", es256(), 401, "agw_unauthenticated", "jwt_alg_not_allowed", "127.0.0.3", ""},
			{"tampered payload", tampered(), 401, "agw_unauthenticated", "jwt_bad_signature", "127.0.0.3", ""},
			{"unknown issuer", mintRS256(k1, "k1", oktaClaims("https://login.evil.example.com/oauth2/default")), 401, "agw_unauthenticated", "jwt_unknown_issuer", "127.0.0.3", ""},
			{"wrong audience", mintRS256(k1, "k1", oktaClaims(iss.issuer(), "aud", "https://hr.corp.net")), 401, "agw_unauthenticated", "jwt_wrong_audience", "127.0.0.4", ""},
			{"expired", mintRS256(k1, "k1", oktaClaims(iss.issuer(), "iat", now.Add(-2*time.Hour).Unix(), "nbf", nil, "exp", now.Add(-time.Hour).Unix())), 401, "agw_unauthenticated", "jwt_expired", "127.0.0.4", ""},
			{"not yet valid", mintRS256(k1, "k1", oktaClaims(iss.issuer(), "nbf", now.Add(time.Hour).Unix())), 401, "agw_unauthenticated", "jwt_not_yet_valid", "127.0.0.4", ""},
			{"unknown subject", mintRS256(k1, "k1", oktaClaims(iss.issuer(), "cid", "0oa-nobody")), 401, "agw_unauthenticated", "jwt_unknown_subject", "127.0.0.4", "0oa-nobody"},
			{"disabled agent", mintRS256(k1, "k1", oktaClaims(iss.issuer(), "cid", "0oa-off")), 403, "agw_forbidden", "agent disabled", "127.0.0.4", "0oa-off"},
		}
		before := be.count()
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := send(t, clientFrom(t, e, tc.src), "GET", url, bearer(tc.tok), nil)
				if r.status != tc.status || errType(t, r.body).Error.Type != tc.typ {
					t.Fatalf("status %d body %s; want %d %s", r.status, r.body, tc.status, tc.typ)
				}
				ev := auditOf(t, e, r.requestID)
				if ev.Reason != tc.reason || ev.Decision != "deny" || ev.Subject != tc.subjectAudited {
					t.Errorf("audit reason %q decision %q subject %q; want %q deny %q", ev.Reason, ev.Decision, ev.Subject, tc.reason, tc.subjectAudited)
				}
			})
		}
		if n := be.count(); n != before {
			t.Errorf("the backend received %d refused requests", n-before)
		}
	})

	// jwt refreshes an issuer's keys at most every 30s, however a
	// refresh is triggered, so the rotation and the outage wait on the
	// daemon's real clock; polls are spaced so that the refusals meanwhile
	// stay under the auth-failure throttle.
	poll := func(t *testing.T, src string, tok func() string, want int) gwResponse {
		t.Helper()
		pc := clientFrom(t, e, src)
		var last gwResponse
		var sent time.Time
		eventually(t, 45*time.Second, func() bool {
			if time.Since(sent) < 4*time.Second {
				return false
			}
			sent = time.Now()
			last = send(t, pc, "GET", url, bearer(tok()), nil)
			return last.status == want
		})
		return last
	}

	t.Run("keys rotated at the IdP", func(t *testing.T) {
		iss.publish("k2", k2)
		r := poll(t, "127.0.0.5", func() string { return mintRS256(k2, "k2", oktaClaims(iss.issuer())) }, 200)
		if r.status != 200 {
			t.Fatalf("token signed with the new key: status %d: %s", r.status, r.body)
		}
		if n := iss.jwks.Load(); n < 2 {
			t.Errorf("JWKS fetched %d times, want a refresh", n)
		}
	})

	t.Run("IdP down", func(t *testing.T) {
		iss.srv.Close()
		r := send(t, c, "GET", url, bearer(mintRS256(k2, "k2", oktaClaims(iss.issuer()))), nil)
		if r.status != 200 {
			t.Fatalf("known key with the IdP down: status %d: %s", r.status, r.body)
		}
		r = poll(t, "127.0.0.6", func() string { return mintRS256(k3, "k3", oktaClaims(iss.issuer())) }, 503)
		if r.status != 503 || errType(t, r.body).Error.Type != "agw_idp_unavailable" {
			t.Fatalf("new key with the IdP down: status %d: %s", r.status, r.body)
		}
		if ev := auditOf(t, e, r.requestID); ev.Reason != "idp_unavailable" || ev.IdP != "okta" || ev.Status != 503 {
			t.Errorf("audit %+v", ev)
		}
	})

	e.stop()
	var sigs []string
	for _, tok := range tokens {
		if parts := strings.Split(tok, "."); parts[2] != "" {
			sigs = append(sigs, parts[2])
		}
	}
	assertNoSecret(t, e, append(sigs, secret)...)
}

// oauthBackend is a TLS backend that wants OAuth2 bearer tokens: it answers
// 401 once to each token marked, and otherwise 200 with the token echoed
// (as debug endpoints do).
type oauthBackend struct {
	srv    *httptest.Server
	caFile string

	mu     sync.Mutex
	refuse map[string]bool
	tokens []string
}

func newOAuthBackend(t *testing.T) *oauthBackend {
	t.Helper()
	b := &oauthBackend{refuse: map[string]bool{}}
	b.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		b.mu.Lock()
		b.tokens = append(b.tokens, tok)
		refuse := b.refuse[tok]
		delete(b.refuse, tok)
		b.mu.Unlock()
		w.Header().Set("X-Debug-Authorization", r.Header.Get("Authorization"))
		if refuse {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"ok":true,"authorization":%q}`, r.Header.Get("Authorization"))
	}))
	t.Cleanup(b.srv.Close)
	b.caFile = filepath.Join(t.TempDir(), "crm-ca.pem")
	if err := os.WriteFile(b.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *oauthBackend) lastToken() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.tokens) == 0 {
		return ""
	}
	return b.tokens[len(b.tokens)-1]
}

// e2eTokenEndpoint issues distinctive access tokens and counts its calls.
type e2eTokenEndpoint struct {
	srv    *httptest.Server
	prefix string
	calls  atomic.Int64
	down   atomic.Bool

	mu      sync.Mutex
	secrets []string
	issued  []string
}

func newE2ETokenEndpoint(t *testing.T) *e2eTokenEndpoint {
	t.Helper()
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	te := &e2eTokenEndpoint{prefix: "oat-" + hex.EncodeToString(rnd[:]) + "-"}
	te.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := te.calls.Add(1)
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if te.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"temporarily_unavailable","error_description":"maintenance"}`)
			return
		}
		secret := r.PostForm.Get("client_secret")
		if _, p, ok := r.BasicAuth(); ok {
			secret = p
		}
		tok := fmt.Sprintf("%s%d", te.prefix, n)
		te.mu.Lock()
		te.secrets = append(te.secrets, secret)
		te.issued = append(te.issued, tok)
		te.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(te.srv.Close)
	return te
}

// TestOAuth2Backend: a backend whose credential is an OAuth2 client: one
// token fetch serves many requests, a 401 from the backend costs exactly one
// refresh, a token endpoint that is down is a 502 that says so, and neither
// the client secret nor the tokens come out of agw.
func TestOAuth2Backend(t *testing.T) {
	e := newEnv(t)
	e.start()
	be := newOAuthBackend(t)
	te := newE2ETokenEndpoint(t)
	const clientSecret = canary + "-oauth2-client-secret"
	e.ok(clientSecret+"\n", "backend", "add", "crm", "--host", "crm.corp.net", "--inject", "oauth2",
		"--token-url", te.srv.URL+"/oauth2/token", "--client-id", "agw-crm", "--scope", "crm.read", "--scope", "crm.write",
		"--token-param", "audience=https://crm.corp.net", "--upstream", be.srv.URL, "--upstream-ca", be.caFile, "--secret-stdin")
	e.ok("", "agent", "add", "sales-bot")
	e.ok("", "grant", "add", "sales-bot", "crm", "--method", "GET", "--method", "POST", "--path", "/v1/**")
	var minted admin.MintedToken
	e.jsonOut(&minted, "token", "mint", "sales-bot")
	c := gatewayClient(t, e)
	url := "https://crm.corp.net:" + portOf(e.status.Listeners.HTTPS) + "/v1/accounts"
	auth := map[string]string{"Authorization": "Bearer " + minted.Value}

	t.Run("one fetch serves many requests", func(t *testing.T) {
		for i := range 5 {
			r := send(t, c, "GET", url, auth, nil)
			if r.status != 200 {
				t.Fatalf("request %d: status %d: %s", i, r.status, r.body)
			}
			if strings.Contains(r.body, te.prefix) {
				t.Errorf("the access token reached the agent in the body: %s", r.body)
			}
		}
		if got, want := be.lastToken(), te.prefix+"1"; got != want {
			t.Errorf("backend got token %q, want %q", got, want)
		}
		if n := te.calls.Load(); n != 1 {
			t.Errorf("token endpoint called %d times, want 1", n)
		}
		te.mu.Lock()
		if len(te.secrets) != 1 || te.secrets[0] != clientSecret {
			t.Errorf("token endpoint got client secrets %q", te.secrets)
		}
		te.mu.Unlock()
	})

	t.Run("a 401 triggers exactly one refresh", func(t *testing.T) {
		be.mu.Lock()
		be.refuse[te.prefix+"1"] = true
		be.mu.Unlock()
		r := send(t, c, "POST", url, auth, strings.NewReader(`{"name":"acme"}`))
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got, want := be.lastToken(), te.prefix+"2"; got != want {
			t.Errorf("retry carried %q, want %q", got, want)
		}
		for range 3 {
			if r := send(t, c, "GET", url, auth, nil); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
		}
		if n := te.calls.Load(); n != 2 {
			t.Errorf("token endpoint called %d times, want 2", n)
		}
	})

	t.Run("token endpoint down", func(t *testing.T) {
		te.down.Store(true)
		// A rotated client secret needs a new token, which cannot be had.
		e.ok(clientSecret+"-2\n", "backend", "rotate", "crm", "--secret-stdin")
		be.mu.Lock()
		before := len(be.tokens)
		be.mu.Unlock()
		r := send(t, c, "GET", url, auth, nil)
		if r.status != 502 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		apiErr := errType(t, r.body)
		if apiErr.Error.Type != "agw_upstream_error" || !strings.Contains(apiErr.Error.Message, "could not obtain an OAuth2 access token") {
			t.Errorf("error %+v", apiErr.Error)
		}
		ev := auditOf(t, e, r.requestID)
		if ev.Status != 502 || !strings.Contains(ev.Reason, "OAuth2 access token") || ev.Agent != "sales-bot" {
			t.Errorf("audit %+v", ev)
		}
		be.mu.Lock()
		after := len(be.tokens)
		be.mu.Unlock()
		if after != before {
			t.Errorf("the backend was called without a token")
		}
	})

	e.stop()
	te.mu.Lock()
	leaks := append([]string{clientSecret, clientSecret + "-2"}, te.issued...)
	te.mu.Unlock()
	assertNoSecret(t, e, leaks...)
}
