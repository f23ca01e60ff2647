package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/gateway/auth"
	"github.com/agw-dev/agw/gateway/auth/jwt"
	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/store"
)

const gatewayAudience = "api://agw"

// idpSetup is a harness whose proxy verifies JWTs from a local issuer, with
// an agent jwt-bot bound to the claim value app-1 of IdP corp.
type idpSetup struct {
	*harness
	p   *Gateway
	iss *oidcIssuer
	clk *testClock
}

func newIdPSetup(t *testing.T, path, claim string, omitAlg bool) *idpSetup {
	t.Helper()
	iss := newOIDCIssuer(t, path)
	iss.omitAlg = omitAlg
	iss.publish("k1", oidcKeys()[0])
	h := newHarness(t)
	h.st.PutIdP(iss.idp("corp", gatewayAudience, claim))
	h.st.PutAgent(store.Agent{Name: "jwt-bot", IdP: "corp", Subject: "app-1"})
	h.st.PutGrant(store.Grant{Agent: "jwt-bot", Backend: "api", Methods: []string{"GET", "POST"}, Paths: []string{"/v1/**"}})
	clk := newTestClock()
	v := jwt.New(jwt.Config{Now: clk.Now})
	p := h.reserve(func(cfg *Config) { cfg.IdP = auth.NewJWTVerifier(h.st, v) })
	return &idpSetup{harness: h, p: p, iss: iss, clk: clk}
}

// token mints a token from the issuer for the gateway, signed with key k1.
func (s *idpSetup) token(kv ...any) string {
	s.t.Helper()
	return mintJWT(s.t, oidcKeys()[0], "k1", s.iss.claims(gatewayAudience, s.clk.Now(), kv...))
}

// assertNoJWT fails if tok reached the backend, an audit record or the log.
func (s *idpSetup) assertNoJWT(tok string) {
	s.t.Helper()
	leaks := []string{tok}
	if sig := strings.Split(tok, ".")[2]; sig != "" {
		leaks = append(leaks, sig)
	}
	s.assertNotLeaked(leaks...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.seen {
		for k, vv := range r.Header {
			for _, v := range vv {
				if strings.Contains(v, tok) || strings.Contains(v, "eyJ") {
					s.t.Errorf("the backend received the JWT in %s", k)
				}
			}
		}
		if strings.Contains(r.RawQuery, tok) {
			s.t.Errorf("the backend received the JWT in the query")
		}
	}
}

func TestIdPAgentCallsBackend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		path    string // issuer path; Entra v1 issuers end in "/"
		claim   string
		omitAlg bool
		claims  []any
		header  string // where the JWT goes; "" is Authorization: Bearer
		wantJTI bool
	}{
		{name: "okta cid", path: "/oauth2/default", claim: "cid",
			claims: []any{"sub", "0oa1agentuser", "cid", "app-1", "scp", []string{"agw"}, "ver", 1}, wantJTI: true},
		{name: "entra v1 appid, keys without alg", path: "/11111111-2222-3333-4444-555555555555/", claim: "appid", omitAlg: true,
			claims: []any{"sub", "oid-1", "appid", "app-1", "tid", "11111111-2222-3333-4444-555555555555", "ver", "1.0", "jti", nil}},
		{name: "entra v2 azp", path: "/11111111-2222-3333-4444-555555555555/v2.0", claim: "azp", omitAlg: true,
			claims: []any{"azp", "app-1", "tid", "11111111-2222-3333-4444-555555555555", "ver", "2.0", "jti", nil}},
		{name: "sub in the x-api-key header", claim: "sub", claims: []any{"sub", "app-1"}, header: "X-Api-Key", wantJTI: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newIdPSetup(t, tt.path, tt.claim, tt.omitAlg)
			c := s.iss.claims(gatewayAudience, s.clk.Now(), tt.claims...)
			tok := mintJWT(t, oidcKeys()[0], "k1", c)
			hdr, val := "Authorization", "Bearer "+tok
			if tt.header != "" {
				hdr, val = tt.header, tok
			}
			for i := range 3 { // the second and third are served from the verified cache
				res, body := s.get("/v1/models", hdr, val)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d: %s", i, res.StatusCode, body)
				}
				if got := s.lastSeen().Header.Get("X-Api-Key"); got != canary {
					t.Errorf("backend got X-Api-Key %q, want the backend secret", got)
				}
				ev := s.nextAudit()
				wantJTI := ""
				if tt.wantJTI {
					wantJTI = c["jti"].(string)
				}
				if ev.Agent != "jwt-bot" || ev.AuthMethod != "jwt" || ev.IdP != "corp" || ev.Subject != "app-1" || ev.JTI != wantJTI || ev.Decision != store.Allow {
					t.Errorf("audit = agent %q method %q idp %q subject %q jti %q decision %q; want jwt-bot jwt corp app-1 %q allow",
						ev.Agent, ev.AuthMethod, ev.IdP, ev.Subject, ev.JTI, ev.Decision, wantJTI)
				}
			}
			if n := s.iss.jwksFetches.Load(); n != 1 {
				t.Errorf("JWKS fetched %d times, want 1", n)
			}
			if st := s.p.idpStats(); st.Verified != 3 || st.Rejected != 0 {
				t.Errorf("idpStats = %+v, want 3 verified", st)
			}
			s.assertNoJWT(tok)
		})
	}
}

// Every refusal has its status, its error type and a reason of its own in
// the audit record; the token is never forwarded, logged or audited.
func TestIdPRejections(t *testing.T) {
	t.Parallel()
	keys := oidcKeys()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		setup       func(s *idpSetup)
		token       func(s *idpSetup) string
		status      int
		typ, reason string
		subject     string // audited subject: only for verified tokens
	}{
		{name: "alg none", token: func(s *idpSetup) string {
			c := s.iss.claims(gatewayAudience, s.clk.Now(), "sub", "app-1")
			return b64urlJSON(t, map[string]any{"alg": "none", "kid": "k1"}) + "." + b64urlJSON(t, c) + "."
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonAlgNotAllowed},
		{name: "HS256 keyed with the IdP's public key", token: func(s *idpSetup) string {
			signing := b64urlJSON(t, map[string]any{"alg": "HS256", "kid": "k1"}) + "." + b64urlJSON(t, s.iss.claims(gatewayAudience, s.clk.Now(), "sub", "app-1"))
			der, _ := x509.MarshalPKIXPublicKey(&keys[0].PublicKey)
			mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			mac.Write([]byte(signing))
			return signing + "." + b64url(mac.Sum(nil))
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonAlgNotAllowed},
		{name: "ES256", token: func(s *idpSetup) string {
			signing := b64urlJSON(t, map[string]any{"alg": "ES256", "kid": "k1"}) + "." + b64urlJSON(t, s.iss.claims(gatewayAudience, s.clk.Now(), "sub", "app-1"))
			sum := sha256.Sum256([]byte(signing))
			sig, err := ecdsa.SignASN1(rand.Reader, ec, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			return signing + "." + b64url(sig)
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonAlgNotAllowed},
		{name: "tampered payload", token: func(s *idpSetup) string {
			good := s.token("sub", "someone-else")
			parts := strings.Split(good, ".")
			parts[1] = b64urlJSON(t, s.iss.claims(gatewayAudience, s.clk.Now(), "sub", "app-1"))
			return strings.Join(parts, ".")
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonBadSignature},
		{name: "unknown issuer", token: func(s *idpSetup) string {
			return s.token("sub", "app-1", "iss", "https://login.evil.example.com")
		}, status: 401, typ: deny.Unauthenticated, reason: auth.ReasonUnknownIssuer},
		{name: "wrong audience", token: func(s *idpSetup) string {
			return s.token("sub", "app-1", "aud", "https://api.example.com")
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonWrongAudience},
		{name: "expired", token: func(s *idpSetup) string {
			now := s.clk.Now()
			return s.token("sub", "app-1", "iat", now.Add(-2*time.Hour).Unix(), "nbf", nil, "exp", now.Add(-time.Hour).Unix())
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonExpired},
		{name: "not yet valid", token: func(s *idpSetup) string {
			return s.token("sub", "app-1", "nbf", s.clk.Now().Add(time.Hour).Unix())
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonNotYetValid},
		{name: "unknown kid", token: func(s *idpSetup) string {
			return mintJWT(t, keys[1], "k9", s.iss.claims(gatewayAudience, s.clk.Now(), "sub", "app-1"))
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonUnknownKID},
		{name: "missing claim", token: func(s *idpSetup) string {
			return s.token("sub", nil)
		}, status: 401, typ: deny.Unauthenticated, reason: jwt.ReasonMissingClaim},
		{name: "unknown subject", token: func(s *idpSetup) string {
			return s.token("sub", "app-unknown")
		}, status: 401, typ: deny.Unauthenticated, reason: auth.ReasonUnknownSubject, subject: "app-unknown"},
		{name: "disabled agent", setup: func(s *idpSetup) {
			s.st.PutAgent(store.Agent{Name: "jwt-bot", IdP: "corp", Subject: "app-1", Disabled: true})
		}, token: func(s *idpSetup) string { return s.token("sub", "app-1") },
			status: 403, typ: deny.Forbidden, reason: "agent disabled", subject: "app-1"},
	}
	reasons := map[string]string{}
	for _, tt := range tests {
		if prev, dup := reasons[tt.reason]; dup && !strings.HasPrefix(tt.reason, "jwt_alg") {
			t.Fatalf("cases %q and %q share the reason %q", prev, tt.name, tt.reason)
		}
		reasons[tt.reason] = tt.name
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newIdPSetup(t, "", "sub", false)
			if tt.setup != nil {
				tt.setup(s)
			}
			tok := tt.token(s)
			res, body := s.get("/v1/models", "Authorization", "Bearer "+tok)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, body)
			}
			e := agwError(t, body)
			if e.Type != tt.typ {
				t.Errorf("error type %q, want %q", e.Type, tt.typ)
			}
			ev := s.nextAudit()
			if ev.Reason != tt.reason || ev.Decision != store.Deny || ev.Status != tt.status {
				t.Errorf("audit reason %q decision %q status %d; want %q deny %d", ev.Reason, ev.Decision, ev.Status, tt.reason, tt.status)
			}
			if ev.Subject != tt.subject {
				t.Errorf("audit subject %q, want %q (claims of an unverified token stay out)", ev.Subject, tt.subject)
			}
			if tt.reason != auth.ReasonUnknownIssuer && ev.IdP != "corp" {
				t.Errorf("audit idp %q, want corp", ev.IdP)
			}
			if tt.reason != "agent disabled" && !strings.Contains(e.Message, tt.reason) {
				t.Errorf("message %q does not name the reason %q", e.Message, tt.reason)
			}
			if n := s.seenCount(); n != 0 {
				t.Errorf("the backend was called %d times", n)
			}
			s.assertNoJWT(tok)
		})
	}
}

// Several IdPs may share an issuer with different audiences: the one the
// token's audience names verifies it.
func TestIdPSharedIssuer(t *testing.T) {
	t.Parallel()
	s := newIdPSetup(t, "/oauth2/default", "cid", false)
	s.st.PutIdP(s.iss.idp("corp-b", "api://agw-b", "cid"))
	s.st.PutAgent(store.Agent{Name: "bot-b", IdP: "corp-b", Subject: "app-b"})
	s.st.PutGrant(store.Grant{Agent: "bot-b", Backend: "api", Methods: []string{"GET"}, Paths: []string{"/v1/**"}})

	tok := mintJWT(t, oidcKeys()[0], "k1", s.iss.claims("api://agw-b", s.clk.Now(), "cid", "app-b"))
	res, body := s.get("/v1/models", "Authorization", "Bearer "+tok)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if ev := s.nextAudit(); ev.IdP != "corp-b" || ev.Agent != "bot-b" {
		t.Errorf("audit idp %q agent %q, want corp-b bot-b", ev.IdP, ev.Agent)
	}

	tok = mintJWT(t, oidcKeys()[0], "k1", s.iss.claims("api://other", s.clk.Now(), "cid", "app-b"))
	res, _ = s.get("/v1/models", "Authorization", "Bearer "+tok)
	if ev := s.nextAudit(); res.StatusCode != http.StatusUnauthorized || ev.Reason != jwt.ReasonWrongAudience {
		t.Errorf("audience of neither IdP: status %d reason %q", res.StatusCode, ev.Reason)
	}
}

// The agent and the IdP are looked up on every request: disabling the agent
// or removing the IdP cuts off a token whose verification is cached.
func TestIdPChangesApplyToCachedTokens(t *testing.T) {
	t.Parallel()
	s := newIdPSetup(t, "", "sub", false)
	tok := s.token("sub", "app-1")
	step := func(name string, want int, reason string) {
		t.Helper()
		res, body := s.get("/v1/models", "Authorization", "Bearer "+tok)
		ev := s.nextAudit()
		if res.StatusCode != want || ev.Reason != reason {
			t.Errorf("%s: status %d reason %q, want %d %q: %s", name, res.StatusCode, ev.Reason, want, reason, body)
		}
	}
	step("enabled", 200, "")
	s.st.PutAgent(store.Agent{Name: "jwt-bot", IdP: "corp", Subject: "app-1", Disabled: true})
	step("disabled", 403, "agent disabled")
	s.st.PutAgent(store.Agent{Name: "jwt-bot", IdP: "corp", Subject: "app-1"})
	step("enabled again", 200, "")
	s.st.RemoveAgent("jwt-bot")
	step("agent removed", 401, auth.ReasonUnknownSubject)
	s.st.RemoveIdP("corp")
	step("IdP removed", 401, auth.ReasonUnknownIssuer)
	s.assertNoJWT(tok)
}

// Keys the IdP rotates in are picked up; when the IdP goes down, the keys
// already fetched keep verifying, and a token no known key signed fails
// closed with 503.
func TestIdPKeyRotationAndOutage(t *testing.T) {
	t.Parallel()
	keys := oidcKeys()
	s := newIdPSetup(t, "/oauth2/default", "sub", false)
	call := func(tok string) (int, deny.Detail, store.AuditEvent) {
		t.Helper()
		res, body := s.get("/v1/models", "Authorization", "Bearer "+tok)
		var e deny.Detail
		if res.StatusCode != http.StatusOK {
			e = agwError(t, body)
		}
		return res.StatusCode, e, s.nextAudit()
	}
	claims := func() map[string]any { return s.iss.claims(gatewayAudience, s.clk.Now(), "sub", "app-1") }

	if st, _, _ := call(mintJWT(t, keys[0], "k1", claims())); st != 200 {
		t.Fatalf("k1 before rotation: status %d", st)
	}
	s.iss.publish("k2", keys[1])
	// A kid the gateway does not know triggers a refresh, at most once per
	// jwt's MinRefresh (30s) after the last fetch.
	s.clk.Advance(31 * time.Second)
	if st, _, ev := call(mintJWT(t, keys[1], "k2", claims())); st != 200 {
		t.Fatalf("k2 after rotation: status %d reason %q", st, ev.Reason)
	}
	if n := s.iss.jwksFetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}

	s.iss.srv.Close()
	// Past the keys' 5-minute lifetime: the refresh fails, the keys stay.
	s.clk.Advance(6 * time.Minute)
	for i := range 2 {
		if st, _, ev := call(mintJWT(t, keys[1], "k2", claims())); st != 200 {
			t.Fatalf("k2 with the IdP down (%d): status %d reason %q", i, st, ev.Reason)
		}
	}
	s.clk.Advance(31 * time.Second)
	st, e, ev := call(mintJWT(t, keys[2], "k3", claims()))
	if st != http.StatusServiceUnavailable || e.Type != deny.IdPUnavailable || ev.Reason != jwt.ReasonIdPUnavailable || ev.IdP != "corp" {
		t.Errorf("new kid with the IdP down: status %d type %q reason %q idp %q; want 503 %s %s corp",
			st, e.Type, ev.Reason, ev.IdP, deny.IdPUnavailable, jwt.ReasonIdPUnavailable)
	}
	if got := s.p.idpStats(); got.Verified != 4 || got.Unavailable != 1 {
		t.Errorf("idpStats = %+v, want 4 verified and 1 unavailable", got)
	}
}

// BenchmarkProxyJWT is BenchmarkProxyOverhead with the agent identified by
// an IdP token instead of a gateway token: after the first request the
// token is verified from jwt's cache (a SHA-256, no RSA), and the agent
// is looked up per request.
func BenchmarkProxyJWT(b *testing.B) {
	p, gatewayToken := benchProxy(b)
	iss := newOIDCIssuer(b, "/oauth2/default")
	iss.publish("k1", oidcKeys()[0])
	p.state.PutIdP(iss.idp("corp", gatewayAudience, "cid"))
	p.state.PutAgent(store.Agent{Name: "jwt-bot", IdP: "corp", Subject: "app-1"})
	p.state.PutGrant(store.Grant{Agent: "jwt-bot", Backend: "api", Methods: []string{"POST"}, Paths: []string{"/v1/**"}})
	p.idp = auth.NewJWTVerifier(p.state, jwt.New(jwt.Config{}))
	jwt := mintJWT(b, oidcKeys()[0], "k1", iss.claims(gatewayAudience, time.Now(), "cid", "app-1", "exp", time.Now().Add(time.Hour).Unix()))
	for _, bc := range []struct{ name, token string }{{"gateway-token", gatewayToken}, {"jwt", jwt}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				p.ServeHTTP(w, benchRequest(bc.token))
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
