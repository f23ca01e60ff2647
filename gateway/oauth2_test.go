package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/scrub"
	"github.com/agw-dev/agw/store"
)

// oauth2Setup is a harness whose backend takes OAuth2 client-credentials
// tokens from a local token endpoint; the backend's sealed secret (canary)
// is the client secret. The backend answers 401 once to each token listed
// in refuseOnce and echoes the Authorization it got in X-Echo.
type oauth2Setup struct {
	*harness
	p   *Gateway
	te  *tokenEndpoint
	clk *testClock

	mu         sync.Mutex
	refuseOnce map[string]bool
	bodies     []string
}

func newOAuth2Setup(t *testing.T) *oauth2Setup {
	t.Helper()
	s := &oauth2Setup{te: newTokenEndpoint(t), clk: newTestClock(), refuseOnce: map[string]bool{}}
	s.harness = newHarness(t,
		withBackend(func(b *store.Backend) {
			b.Inject, b.Header = store.InjectOAuth2, ""
			b.OAuth2 = &store.OAuth2{TokenURL: s.te.url(), ClientID: "agw-client", Scopes: []string{"api.read"}, Params: map[string]string{"audience": "https://api.example.com"}}
		}),
		withHandler(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			s.mu.Lock()
			s.bodies = append(s.bodies, string(body))
			refuse := s.refuseOnce[tok]
			delete(s.refuseOnce, tok)
			s.mu.Unlock()
			w.Header().Set("X-Echo", r.Header.Get("Authorization"))
			if refuse {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"error":"invalid_token"}`)
				return
			}
			_, _ = io.WriteString(w, `{"ok":true,"you_sent":"`+r.Header.Get("Authorization")+`"}`)
		}))
	s.p = s.reserve(func(cfg *Config) { cfg.Now = s.clk.Now })
	return s
}

func (s *oauth2Setup) refuse(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseOnce[tok] = true
}

func (s *oauth2Setup) call(method, path string, body io.Reader) (*http.Response, []byte, store.AuditEvent) {
	s.t.Helper()
	req, err := http.NewRequest(method, "https://"+testHost+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	res, b := s.do(req)
	return res, b, s.nextAudit()
}

func TestOAuth2OneFetchServesManyRequests(t *testing.T) {
	t.Parallel()
	s := newOAuth2Setup(t)
	for i := range 5 {
		res, body, ev := s.call("GET", "/v1/models", nil)
		if res.StatusCode != http.StatusOK || ev.Decision != store.Allow {
			t.Fatalf("request %d: status %d: %s", i, res.StatusCode, body)
		}
		if got := s.lastSeen().Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer at-1" {
			t.Errorf("backend got Authorization %q, want the access token once", got)
		}
		if got := res.Header.Get("X-Echo"); got != scrub.Marker {
			t.Errorf("the reflected access token reached the agent: X-Echo %q", got)
		}
		if strings.Contains(string(body), "at-1") {
			t.Errorf("the reflected access token reached the agent in the body: %s", body)
		}
		h := s.lastSeen()
		s.assertNoToken(h)
	}
	if n := s.te.calls.Load(); n != 1 {
		t.Errorf("token endpoint called %d times, want 1", n)
	}
	if got := s.te.lastSecret(); got != canary {
		t.Errorf("token endpoint got client secret %q, want the sealed one", got)
	}
	f := s.te.lastForm()
	if f.Get("grant_type") != "client_credentials" || f.Get("scope") != "api.read" || f.Get("audience") != "https://api.example.com" {
		t.Errorf("token request form %v", f)
	}
	if st := s.p.OAuth2Stats(); st.Fetches != 1 || st.Failures != 0 {
		t.Errorf("oauth2Stats = %+v, want 1 fetch", st)
	}
	s.assertNotLeaked("at-1")
}

func TestOAuth2RefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	s := newOAuth2Setup(t)
	s.te.set(func(te *tokenEndpoint) { te.expiresIn = 600 })
	if res, _, _ := s.call("GET", "/v1/a", nil); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	s.clk.Advance(500 * time.Second) // 100s before expiry: not yet due
	if res, _, _ := s.call("GET", "/v1/a", nil); res.StatusCode != 200 || s.te.calls.Load() != 1 {
		t.Fatalf("status %d, %d fetches; want the cached token", res.StatusCode, s.te.calls.Load())
	}
	s.clk.Advance(60 * time.Second) // 40s before expiry: refreshed
	if res, _, _ := s.call("GET", "/v1/a", nil); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := s.lastSeen().Header.Get("Authorization"); got != "Bearer at-2" || s.te.calls.Load() != 2 {
		t.Errorf("backend got %q after %d fetches, want a refreshed token", got, s.te.calls.Load())
	}
}

// A backend that refuses the token gets one refresh and the request once
// more, body and all; concurrent refusals of the same token cost one fetch.
func TestOAuth2RefreshOnceOn401(t *testing.T) {
	t.Parallel()
	s := newOAuth2Setup(t)
	if res, _, _ := s.call("GET", "/v1/a", nil); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	s.refuse("at-1")
	res, body, ev := s.call("POST", "/v1/items", strings.NewReader(`{"name":"x"}`))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("after a refused token: status %d: %s", res.StatusCode, body)
	}
	if got := res.Header.Get("X-Echo"); got != scrub.Marker {
		t.Errorf("the refreshed token reached the agent: X-Echo %q", got)
	}
	if ev.Status != 200 || ev.BytesIn != int64(len(`{"name":"x"}`)) {
		t.Errorf("audit status %d bytes_in %d", ev.Status, ev.BytesIn)
	}
	s.mu.Lock()
	bodies := append([]string(nil), s.bodies...)
	s.mu.Unlock()
	if len(bodies) != 3 || bodies[1] != `{"name":"x"}` || bodies[2] != bodies[1] {
		t.Errorf("backend bodies %q, want the POST body twice", bodies)
	}
	if got := s.lastSeen().Header.Get("Authorization"); got != "Bearer at-2" {
		t.Errorf("retry sent %q, want the new token", got)
	}
	if n := s.te.calls.Load(); n != 2 {
		t.Errorf("token endpoint called %d times, want 2", n)
	}

	// The backend refuses the token it was just given: its 401 goes to the
	// agent and no token is fetched, so a backend that refuses every token
	// costs one fetch per refusedAgain, not one per request.
	s.refuse("at-2")
	res, _, _ = s.call("GET", "/v1/a", nil)
	if res.StatusCode != http.StatusUnauthorized || s.te.calls.Load() != 2 {
		t.Errorf("status %d after %d fetches; want the backend's 401 and no fetch", res.StatusCode, s.te.calls.Load())
	}
	s.clk.Advance(refusedAgain)
	s.refuse("at-2")
	res, _, _ = s.call("GET", "/v1/a", nil)
	if res.StatusCode != http.StatusOK || s.te.calls.Load() != 3 {
		t.Errorf("status %d after %d fetches; want a refresh once refusedAgain passed", res.StatusCode, s.te.calls.Load())
	}
	if st := s.p.OAuth2Stats(); st.Refused != 3 || st.Retried != 2 {
		t.Errorf("oauth2Stats = %+v, want 3 refused and 2 retried", st)
	}
	s.assertNotLeaked("at-1", "at-2", "at-3")
}

// A body the gateway did not hold (unknown length) is not resent: the 401
// goes back, and the next request carries a fresh token.
func TestOAuth2StreamedBodyNotReplayed(t *testing.T) {
	t.Parallel()
	s := newOAuth2Setup(t)
	s.refuse("at-1")
	body := io.MultiReader(strings.NewReader("chunk-1 "), strings.NewReader("chunk-2")) // no length: sent chunked
	res, _, _ := s.call("POST", "/v1/items", body)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want the backend's 401", res.StatusCode)
	}
	res, _, _ = s.call("POST", "/v1/items", io.MultiReader(strings.NewReader("again")))
	if res.StatusCode != http.StatusOK || s.lastSeen().Header.Get("Authorization") != "Bearer at-2" {
		t.Errorf("next request: status %d with %q, want 200 with a fresh token", res.StatusCode, s.lastSeen().Header.Get("Authorization"))
	}
}

// A token endpoint that is down is a 502 that says so, with an audit
// record; the backend is not called, and the endpoint is backed off from
// rather than asked on every request.
func TestOAuth2TokenEndpointDown(t *testing.T) {
	t.Parallel()
	s := newOAuth2Setup(t)
	s.te.set(func(te *tokenEndpoint) { te.status = http.StatusServiceUnavailable })
	for i := range 3 {
		res, body, ev := s.call("GET", "/v1/models", nil)
		if res.StatusCode != http.StatusBadGateway {
			t.Fatalf("request %d: status %d: %s", i, res.StatusCode, body)
		}
		e := agwError(t, body)
		if e.Type != deny.Upstream || !strings.Contains(e.Message, "could not obtain an OAuth2 access token") || !strings.Contains(e.Message, "HTTP 503") {
			t.Errorf("error %+v", e)
		}
		if ev.Status != 502 || !strings.Contains(ev.Reason, "OAuth2 access token") || ev.Agent != "bot" {
			t.Errorf("audit status %d reason %q agent %q", ev.Status, ev.Reason, ev.Agent)
		}
	}
	if n := s.seenCount(); n != 0 {
		t.Errorf("backend called %d times without a token", n)
	}
	// One fetch (x/oauth2 may make it as two requests while it learns how
	// the endpoint takes the client secret); the other requests were
	// answered from the backoff.
	if st := s.p.OAuth2Stats(); st.Fetches != 1 || st.Failures != 3 {
		t.Errorf("oauth2Stats = %+v, want 1 fetch and 3 failures", st)
	}
	s.clk.Advance(2 * time.Second)
	s.te.set(func(te *tokenEndpoint) { te.status = 0 })
	if res, body, _ := s.call("GET", "/v1/models", nil); res.StatusCode != 200 {
		t.Errorf("after the endpoint recovered: status %d: %s", res.StatusCode, body)
	}
}

// A 401 whose refresh fails is a 502 naming the token, not the backend's 401.
func TestOAuth2RefreshFailsAfter401(t *testing.T) {
	t.Parallel()
	s := newOAuth2Setup(t)
	if res, _, _ := s.call("GET", "/v1/a", nil); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	s.refuse("at-1")
	s.te.set(func(te *tokenEndpoint) { te.status = http.StatusInternalServerError })
	res, body, ev := s.call("GET", "/v1/a", nil)
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "refused its OAuth2 access token") {
		t.Errorf("status %d: %s", res.StatusCode, body)
	}
	if !strings.Contains(ev.Reason, "could not obtain a new one") {
		t.Errorf("audit reason %q", ev.Reason)
	}
}

// Rotating the client secret or changing the OAuth2 settings makes a new
// token source: the next request fetches with the new settings.
func TestOAuth2RotationMakesNewSource(t *testing.T) {
	t.Parallel()
	s := newOAuth2Setup(t)
	if res, _, _ := s.call("GET", "/v1/a", nil); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	rt := s.st.Backend("api")
	b := rt.Backend
	b.CredentialVersion++
	s.st.PutBackend(b, crypto.NewSecret([]byte("rotated-client-secret")))
	if res, _, _ := s.call("GET", "/v1/a", nil); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := s.te.lastSecret(); got != "rotated-client-secret" || s.te.calls.Load() != 2 {
		t.Errorf("after rotation the endpoint got secret %q (%d calls)", got, s.te.calls.Load())
	}
	b.OAuth2 = &store.OAuth2{TokenURL: s.te.url(), ClientID: "agw-client", Scopes: []string{"api.write"}}
	b.UpdatedAt = b.UpdatedAt.Add(time.Second)
	s.st.UpdateBackendConfig(b)
	if res, _, _ := s.call("GET", "/v1/a", nil); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if f := s.te.lastForm(); f.Get("scope") != "api.write" || s.te.calls.Load() != 3 {
		t.Errorf("after reconfiguration the endpoint got scope %q (%d calls)", f.Get("scope"), s.te.calls.Load())
	}
	n := 0
	s.p.oauth.m.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d token sources kept, want 1", n)
	}
	if st := s.p.OAuth2Stats(); st.Fetches != 3 {
		t.Errorf("oauth2Stats = %+v, want 3 fetches", st)
	}
	s.assertNotLeaked("rotated-client-secret")
}

// The body the gateway holds for a replay is the one the agent sent, up to
// maxReplayBody; a larger one streams.
func TestOAuth2LargeBodyStreams(t *testing.T) {
	t.Parallel()
	s := newOAuth2Setup(t)
	big := bytes.Repeat([]byte("x"), maxReplayBody+1)
	res, _, ev := s.call("POST", "/v1/items", bytes.NewReader(big))
	if res.StatusCode != 200 || ev.BytesIn != int64(len(big)) {
		t.Fatalf("status %d bytes_in %d", res.StatusCode, ev.BytesIn)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bodies) != 1 || len(s.bodies[0]) != len(big) {
		t.Errorf("backend got %d bodies", len(s.bodies))
	}
}

// BenchmarkProxyOAuth2 is BenchmarkProxyOverhead for an oauth2 backend with
// its token cached: the token lookup and the per-token upstream reuse.
func BenchmarkProxyOAuth2(b *testing.B) {
	p, token := benchProxy(b)
	te := newTokenEndpoint(b)
	rt := p.state.Backend("api")
	be := rt.Backend
	be.Inject, be.Header = store.InjectOAuth2, ""
	be.OAuth2 = &store.OAuth2{TokenURL: te.url(), ClientID: "agw"}
	p.state.PutBackend(be, rt.Secret)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, benchRequest(token))
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if n := te.calls.Load(); n != 1 {
		b.Errorf("token endpoint called %d times", n)
	}
}
