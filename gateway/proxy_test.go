package gateway

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/store"
)

func decodeBasic(v string) string {
	_, p, _ := strings.Cut(v, " ")
	b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(p))
	return string(b)
}

func TestInjectModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(b *store.Backend)
		verify func(t *testing.T, s seenRequest)
	}{
		{"header", func(b *store.Backend) { b.Inject, b.Header = store.InjectHeader, "x-api-key" }, func(t *testing.T, s seenRequest) {
			if got := s.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != canary {
				t.Errorf("X-Api-Key = %q, want the secret once", got)
			}
		}},
		{"header with prefix", func(b *store.Backend) { b.Inject, b.Header, b.Prefix = store.InjectHeader, "Authorization", "Token " }, func(t *testing.T, s seenRequest) {
			if got := s.Header.Values("Authorization"); len(got) != 1 || got[0] != "Token "+canary {
				t.Errorf("Authorization = %q", got)
			}
		}},
		{"bearer", func(b *store.Backend) { b.Inject = store.InjectBearer }, func(t *testing.T, s seenRequest) {
			if got := s.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+canary {
				t.Errorf("Authorization = %q", got)
			}
		}},
		{"basic", func(b *store.Backend) { b.Inject, b.BasicUser = store.InjectBasic, "x-access-token" }, func(t *testing.T, s seenRequest) {
			if got := s.Header.Values("Authorization"); len(got) != 1 || decodeBasic(got[0]) != "x-access-token:"+canary {
				t.Errorf("Authorization = %q", got)
			}
		}},
		{"query", func(b *store.Backend) { b.Inject, b.QueryParam = store.InjectQuery, "key" }, func(t *testing.T, s seenRequest) {
			q, _ := url.ParseQuery(s.RawQuery)
			if got := q["key"]; len(got) != 1 || got[0] != canary {
				t.Errorf("query key = %q, want the secret once", got)
			}
			if q.Get("alt") != "json" {
				t.Errorf("other query parameters lost: %q", s.RawQuery)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, withBackend(tt.setup))
			res, body := h.get("/v1/models?alt=json", "Authorization", "Bearer "+h.token)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if len(res.Header.Get(deny.RequestIDHeader)) != 16 {
				t.Errorf("response has no request id header")
			}
			s := h.lastSeen()
			tt.verify(t, s)
			h.assertNoToken(s)
			if s.Host != testHost {
				t.Errorf("backend saw Host %q, want the agent's host %q", s.Host, testHost)
			}
		})
	}
}

// The agent credential is read from, and stripped from, every place SDKs put it.
func TestCredentialLocations(t *testing.T) {
	t.Parallel()
	type loc struct {
		name  string
		setup func(b *store.Backend)
		req   func(h *harness, r *http.Request)
	}
	tests := []loc{
		{"bearer", nil, func(h *harness, r *http.Request) { r.Header.Set("Authorization", "Bearer "+h.token) }},
		{"x-api-key", nil, func(h *harness, r *http.Request) { r.Header.Set("X-Api-Key", h.token) }},
		{"api-key", nil, func(h *harness, r *http.Request) { r.Header.Set("Api-Key", h.token) }},
		{"x-goog-api-key", nil, func(h *harness, r *http.Request) { r.Header.Set("X-Goog-Api-Key", h.token) }},
		{"git basic password", nil, func(h *harness, r *http.Request) { r.SetBasicAuth("git", h.token) }},
		{"basic user name", nil, func(h *harness, r *http.Request) { r.SetBasicAuth(h.token, "") }},
		{"same token in several places", nil, func(h *harness, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+h.token)
			r.Header.Set("X-Api-Key", h.token)
		}},
		{"backend header with prefix", func(b *store.Backend) { b.Header, b.Prefix = "X-Custom-Auth", "Key " }, func(h *harness, r *http.Request) {
			r.Header.Set("X-Custom-Auth", "Key "+h.token)
		}},
		{"query param", func(b *store.Backend) { b.Inject, b.QueryParam = store.InjectQuery, "key" }, func(h *harness, r *http.Request) {
			r.URL.RawQuery = "key=" + h.token + "&alt=json"
		}},
		{"copies in a custom header, a cookie and the query", nil, func(h *harness, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+h.token)
			r.Header.Set("X-My-Token", h.token)
			r.Header.Set("Cookie", "session="+h.token)
			r.URL.RawQuery = "token=" + h.token + "&alt=json"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []harnessOpt
			if tt.setup != nil {
				opts = append(opts, withBackend(tt.setup))
			}
			h := newHarness(t, opts...)
			req, _ := http.NewRequest("GET", "https://"+testHost+"/v1/models", nil)
			tt.req(h, req)
			res, body := h.do(req)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			h.assertNoToken(h.lastSeen())
			if !strings.Contains(h.lastSeen().RawQuery+strings.Join(h.lastSeen().Header.Values("X-Api-Key"), "")+strings.Join(h.lastSeen().Header.Values("X-Custom-Auth"), ""), canary) {
				t.Errorf("backend did not get the injected secret")
			}
		})
	}
}

func TestAuthenticationFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib3QifQ.c2lnbmF0dXJl"
	tests := []struct {
		name    string
		hdr     []string
		wantMsg string
	}{
		{"no credential", nil, "no credential"},
		{"malformed token", []string{"Authorization", "Bearer agw_notavalidtoken"}, "malformed gateway token"},
		{"unknown token", []string{"Authorization", "Bearer " + h.token[:len(h.token)-8] + "AAAAAAAA"}, "gateway token"},
		{"foreign key", []string{"Authorization", "Bearer sk-live-abcdef"}, "not an agw gateway token"},
		{"ambiguous", []string{"Authorization", "Bearer " + h.token, "X-Api-Key", "sk-other"}, "ambiguous"},
		{"jwt without idp", []string{"Authorization", "Bearer " + jwt}, "IdP tokens are not configured for this backend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := h.get("/v1/models", tt.hdr...)
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", res.StatusCode, body)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != `Bearer realm="agw"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			e := agwError(t, body)
			if e.Type != deny.Unauthenticated || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("error %+v, want %s mentioning %q", e, deny.Unauthenticated, tt.wantMsg)
			}
			if strings.Contains(string(body), "sk-") || strings.Contains(string(body), h.token) {
				t.Errorf("error echoes a credential: %s", body)
			}
			ev := h.nextAudit()
			if ev.Decision != store.Deny || ev.Status != 401 {
				t.Errorf("audit %+v", ev)
			}
		})
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend received %d requests", n)
	}
}

func TestRevokedExpiredDisabled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	auth := []string{"Authorization", "Bearer " + h.token}
	if res, body := h.get("/v1/models", auth...); res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	tok := *h.st.Token(h.tokenID)

	// Disable the agent: the next request is refused.
	h.st.PutAgent(store.Agent{Name: "bot", Disabled: true})
	res, body := h.get("/v1/models", auth...)
	if e := agwError(t, body); res.StatusCode != 403 || e.Type != deny.Forbidden || !strings.Contains(e.Message, "agent disabled") {
		t.Errorf("disabled agent: status %d %+v", res.StatusCode, e)
	}
	h.st.PutAgent(store.Agent{Name: "bot"})

	expired := tok
	expired.ExpiresAt = time.Now().Add(-time.Minute)
	h.st.PutToken(expired)
	res, body = h.get("/v1/models", auth...)
	if e := agwError(t, body); res.StatusCode != 401 || !strings.Contains(e.Message, "expired") {
		t.Errorf("expired token: status %d %+v", res.StatusCode, e)
	}

	revoked := tok
	revoked.RevokedAt = time.Now()
	h.st.PutToken(revoked)
	res, body = h.get("/v1/models", auth...)
	if e := agwError(t, body); res.StatusCode != 401 || !strings.Contains(e.Message, "revoked") {
		t.Errorf("revoked token: status %d %+v", res.StatusCode, e)
	}
	if n := h.seenCount(); n != 1 {
		t.Errorf("backend received %d requests, want 1", n)
	}
}

func TestPolicyDenials(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.st.PutGrant(store.Grant{Agent: "bot", Backend: "api", Methods: []string{"GET"}, Paths: []string{"/v1/**"}})
	tests := []struct {
		name, method, path, want string
		removeGrant              bool
	}{
		{"method", "DELETE", "/v1/files/1", "method DELETE not in grant", false},
		{"path", "GET", "/admin", "path /admin not in grant patterns [/v1/**]", false},
		{"no grant", "GET", "/v1/models", `no grant for agent "bot" on backend "api"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.removeGrant {
				h.st.RemoveGrant("bot", "api")
			}
			req, _ := http.NewRequest(tt.method, "https://"+testHost+tt.path, nil)
			req.Header.Set("Authorization", "Bearer "+h.token)
			res, body := h.do(req)
			e := agwError(t, body)
			if res.StatusCode != 403 || e.Type != deny.Forbidden {
				t.Fatalf("status %d %+v, want 403", res.StatusCode, e)
			}
			for _, s := range []string{tt.want, "policy decision", "will not help"} {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q lacks %q", e.Message, s)
				}
			}
			ev := h.nextAudit()
			if ev.Decision != store.Deny || ev.Agent != "bot" || !strings.Contains(ev.Reason, tt.want) {
				t.Errorf("audit %+v", ev)
			}
		})
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend received %d requests", n)
	}
}

func TestAuditRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	req, _ := http.NewRequest("POST", "https://"+testHost+"/v1/chat/completions?stream=true&key=v", strings.NewReader(`{"model":"x"}`))
	req.Header.Set("Authorization", "Bearer "+h.token)
	res, body := h.do(req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	ev := h.nextAudit()
	want := store.AuditEvent{
		Kind: store.KindRequest, RequestID: res.Header.Get(deny.RequestIDHeader), Agent: "bot", AuthMethod: "token",
		TokenID: h.tokenID, Backend: "api", Method: "POST", Host: testHost, Path: "/v1/chat/completions",
		Status: 200, Decision: store.Allow, BytesIn: int64(len(`{"model":"x"}`)), BytesOut: int64(len(body)), CredentialVersion: 1,
	}
	got := ev
	got.Time, got.Client, got.TotalMillis, got.UpstreamMillis = time.Time{}, "", 0, 0
	if got != want {
		t.Errorf("audit record\n got %+v\nwant %+v", got, want)
	}
	if ev.Time.IsZero() || !strings.HasPrefix(ev.Client, "127.0.0.1:") || ev.TotalMillis <= 0 || ev.UpstreamMillis <= 0 {
		t.Errorf("audit record lacks time, client or latencies: %+v", ev)
	}
	if st := h.p.Stats(); st.Requests != 1 || st.Allowed != 1 || st.Denied != 0 {
		t.Errorf("stats %+v", st)
	}
	if h.st.Seen("bot").IsZero() {
		t.Error("agent not marked seen")
	}
}

func TestRotationTakesEffectOnNextRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	auth := []string{"Authorization", "Bearer " + h.token}
	h.get("/v1/a", auth...)
	if got := h.lastSeen().Header.Get("X-Api-Key"); got != canary {
		t.Fatalf("first request injected %q", got)
	}
	rt := h.st.Backend("api")
	b := rt.Backend
	b.CredentialVersion = 2
	sealed, _ := h.keys.Seal([]byte("sk-rotated-secret-0000"))
	sec, err := h.keys.Open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	h.st.PutBackend(b, sec)
	h.nextAudit()
	res, body := h.get("/v1/b", auth...)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if got := h.lastSeen().Header.Get("X-Api-Key"); got != "sk-rotated-secret-0000" {
		t.Fatalf("after rotation the backend got %q", got)
	}
	if ev := h.nextAudit(); ev.CredentialVersion != 2 {
		t.Errorf("audit credential version %d, want 2", ev.CredentialVersion)
	}
}

// TestBasicChallenge: git sends credentials from its helper only when the
// 401 offers Basic, so basic-mode backends offer it beside Bearer.
func TestBasicChallenge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withBackend(func(b *store.Backend) {
		b.Inject, b.Header, b.BasicUser = store.InjectBasic, "", "x-access-token"
	}))
	res, body := h.get("/v1/repo.git/info/refs")
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", res.StatusCode, body)
	}
	got := res.Header.Values("WWW-Authenticate")
	if len(got) != 2 || got[0] != `Basic realm="agw"` || got[1] != `Bearer realm="agw"` {
		t.Errorf("WWW-Authenticate = %q; want Basic then Bearer", got)
	}
	h.nextAudit()
}

// TestRequestBodyEOFOutlivesResponseHeaders: once the agent's request body
// has ended, reading it again answers io.EOF even after writing the response
// headers made net/http close it. The HTTP/1.1 transport makes exactly that
// late read; an error there tore down the upstream connection mid-response.
func TestRequestBodyEOFOutlivesResponseHeaders(t *testing.T) {
	t.Parallel()
	type result struct {
		raw, counted error
		n            int64
	}
	got := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := &countingBody{rc: r.Body}
		if _, err := io.ReadAll(b); err != nil {
			t.Errorf("reading the body: %v", err)
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		_, raw := r.Body.Read(make([]byte, 1))
		_, counted := b.Read(make([]byte, 1))
		got <- result{raw, counted, b.n}
	}))
	defer srv.Close()
	res, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	r := <-got
	if r.raw == nil || r.raw == io.EOF {
		t.Logf("net/http no longer closes the body on writing headers (raw read: %v)", r.raw)
	}
	if r.counted != io.EOF {
		t.Errorf("read after the response headers: %v, want io.EOF", r.counted)
	}
	if r.n != int64(len(`{"model":"m"}`)) {
		t.Errorf("counted %d bytes, want %d", r.n, len(`{"model":"m"}`))
	}
}
