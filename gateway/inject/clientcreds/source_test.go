package clientcreds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

const (
	testClientID = "agw-client"
	// canary is the client secret; no error text may contain it.
	canary = "CANARY-s3cr3t-4f1c2d"
)

// tokenServer is a client-credentials token endpoint on 127.0.0.1 that
// counts calls and issues numbered tokens.
type tokenServer struct {
	srv   *httptest.Server
	calls atomic.Int64

	mu        sync.Mutex
	expiresIn any // number or string; nil omits it
	tokenType string
	fail      func(w http.ResponseWriter) bool // non-nil: may answer instead
	gate      chan struct{}                    // non-nil: hold requests until closed
	entered   chan struct{}                    // signalled when a request arrives
	forms     []url.Values
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	ts := &tokenServer{expiresIn: 3600, tokenType: "Bearer"}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) url() string { return ts.srv.URL + "/oauth2/token" }

func (ts *tokenServer) set(f func(ts *tokenServer)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	f(ts)
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	n := ts.calls.Add(1)
	ts.mu.Lock()
	gate, entered, fail := ts.gate, ts.entered, ts.fail
	ts.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		<-gate
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ts.mu.Lock()
	ts.forms = append(ts.forms, r.PostForm)
	exp, typ := ts.expiresIn, ts.tokenType
	ts.mu.Unlock()
	if fail != nil && fail(w) {
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("grant_type") != "client_credentials" || id != testClientID || secret != canary {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
		return
	}
	body := map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": typ}
	if exp != nil {
		body["expires_in"] = exp
	}
	json.NewEncoder(w).Encode(body)
}

func (ts *tokenServer) lastForm() url.Values {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.forms) == 0 {
		return nil
	}
	return ts.forms[len(ts.forms)-1]
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

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

func newSource(ts *tokenServer, clk *fakeClock, mod func(*store.OAuth2, *Options)) *Source {
	cfg := store.OAuth2{TokenURL: ts.url(), ClientID: testClientID}
	opts := Options{Now: clk.Now}
	if mod != nil {
		mod(&cfg, &opts)
	}
	return New(cfg, []byte(canary), opts)
}

func mustToken(t *testing.T, s *Source) string {
	t.Helper()
	tok, err := s.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestTokenOneFetchServesConcurrentCallers(t *testing.T) {
	ts := newTokenServer(t)
	gate := make(chan struct{})
	ts.set(func(ts *tokenServer) { ts.gate = gate })
	s := newSource(ts, newFakeClock(), nil)

	const n = 50
	var started, done sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		started.Add(1)
		done.Go(func() {
			started.Done()
			got[i] = mustToken(t, s)
		})
	}
	started.Wait()
	close(gate)
	done.Wait()
	for i, tok := range got {
		if tok != got[0] {
			t.Fatalf("caller %d got %q, caller 0 %q", i, tok, got[0])
		}
	}
	if c := ts.calls.Load(); c != 1 {
		t.Errorf("token endpoint calls = %d, want 1", c)
	}
	if f := s.Fetches(); f != 1 {
		t.Errorf("Fetches = %d, want 1", f)
	}
	// Cached afterwards.
	for range 10 {
		mustToken(t, s)
	}
	if c := ts.calls.Load(); c != 1 {
		t.Errorf("token endpoint calls after cached use = %d, want 1", c)
	}
}

func TestTokenRefreshesBeforeExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn any
		early     time.Duration
		refreshAt time.Duration // after the fetch
	}{
		{"1h token: 10% of the lifetime", 3600, 0, 3600*time.Second - 360*time.Second},
		{"5m token: 60s", 300, 0, 240 * time.Second},
		{"90s token: at most half", 90, 0, 45 * time.Second},
		{"expires_in as a string", "600", 0, 540 * time.Second},
		{"explicit EarlyRefresh", 3600, 2 * time.Minute, 58 * time.Minute},
		{"no expires_in: assumed 5m", nil, 0, 4 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t)
			ts.set(func(ts *tokenServer) { ts.expiresIn = tt.expiresIn })
			clk := newFakeClock()
			s := newSource(ts, clk, func(_ *store.OAuth2, o *Options) { o.EarlyRefresh = tt.early })

			first := mustToken(t, s)
			clk.Advance(tt.refreshAt - time.Second)
			if tok := mustToken(t, s); tok != first {
				t.Fatalf("refreshed 1s early: got %q, want %q", tok, first)
			}
			clk.Advance(time.Second)
			if tok := mustToken(t, s); tok == first {
				t.Fatalf("not refreshed at the refresh point")
			}
			if c := ts.calls.Load(); c != 2 {
				t.Errorf("calls = %d, want 2", c)
			}
		})
	}
}

func TestTokenNeverReturnsExpired(t *testing.T) {
	ts := newTokenServer(t)
	ts.set(func(ts *tokenServer) { ts.expiresIn = 120 })
	clk := newFakeClock()
	s := newSource(ts, clk, nil)
	first := mustToken(t, s) // refresh at 60s, stale at 110s, expires at 120s

	ts.set(func(ts *tokenServer) {
		ts.fail = func(w http.ResponseWriter) bool {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return true
		}
	})
	steps := []struct {
		name      string
		advance   time.Duration
		wantTok   string // "" means an error
		wantCalls int64
	}{
		{"refresh fails: the still-valid token is used", 61 * time.Second, first, 2},
		{"backing off: no call, still valid", 500 * time.Millisecond, first, 2},
		{"backoff over: another attempt, still valid", time.Second, first, 3},
		{"close to expiry: never handed out", 48 * time.Second, "", 4},
		{"expired: never handed out", 20 * time.Second, "", 5},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Advance(st.advance)
			tok, err := s.Token(context.Background())
			if st.wantTok == "" {
				if err == nil || !errors.Is(err, ErrTokenUnavailable) || tok != "" {
					t.Errorf("Token = %q, %v; want ErrTokenUnavailable", tok, err)
				}
			} else if tok != st.wantTok || err != nil {
				t.Errorf("Token = %q, %v; want %q", tok, err, st.wantTok)
			}
			if c := ts.calls.Load(); c != st.wantCalls {
				t.Errorf("calls = %d, want %d", c, st.wantCalls)
			}
		})
	}
}

func TestInvalidate(t *testing.T) {
	ts := newTokenServer(t)
	s := newSource(ts, newFakeClock(), nil)
	bad := mustToken(t, s)

	t.Run("another token: no effect", func(t *testing.T) {
		s.Invalidate("tok-999")
		if tok := mustToken(t, s); tok != bad {
			t.Errorf("token = %q, want %q", tok, bad)
		}
	})
	t.Run("ten concurrent 401s: one refetch", func(t *testing.T) {
		var wg sync.WaitGroup
		got := make([]string, 10)
		for i := range got {
			wg.Go(func() {
				s.Invalidate(bad)
				got[i] = mustToken(t, s)
			})
		}
		wg.Wait()
		for i, tok := range got {
			if tok == bad || tok != got[0] {
				t.Errorf("caller %d got %q (bad %q, caller 0 %q)", i, tok, bad, got[0])
			}
		}
		if c := ts.calls.Load(); c != 2 {
			t.Errorf("calls = %d, want 2", c)
		}
	})
}

func TestEndpointDown(t *testing.T) {
	ts := newTokenServer(t)
	ts.srv.Close() // nothing listens there any more
	clk := newFakeClock()
	s := newSource(ts, clk, nil)
	host := strings.TrimPrefix(ts.srv.URL, "http://")

	steps := []struct {
		name        string
		advance     time.Duration
		wantFetches uint64
	}{
		{"first call fails", 0, 1},
		{"within the 1s backoff: same error, no attempt", 900 * time.Millisecond, 1},
		{"after 1s: another attempt", 100 * time.Millisecond, 2},
		{"backoff doubled to 2s: no attempt", 1500 * time.Millisecond, 2},
		{"after 2s: another attempt", 500 * time.Millisecond, 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Advance(st.advance)
			tok, err := s.Token(context.Background())
			if !errors.Is(err, ErrTokenUnavailable) || tok != "" {
				t.Fatalf("Token = %q, %v; want ErrTokenUnavailable", tok, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "could not obtain an OAuth2 token from "+host+": ") {
				t.Errorf("error %q does not name the token host", msg)
			}
			if strings.Contains(msg, canary) {
				t.Errorf("error contains the client secret: %q", msg)
			}
			if got := s.Fetches(); got != st.wantFetches {
				t.Errorf("Fetches = %d, want %d", got, st.wantFetches)
			}
		})
	}
}

func TestErrorsNeverCarrySecrets(t *testing.T) {
	echo := "client_id=" + testClientID + "&client_secret=" + url.QueryEscape(canary) + "&grant_type=client_credentials"
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("a redirect was followed: the client secret went to another server")
	}))
	defer other.Close()
	tests := []struct {
		name  string
		fail  func(w http.ResponseWriter) bool
		want  string // the reason must contain this
		notIn []string
	}{
		{
			name: "JSON error echoing the request",
			fail: func(w http.ResponseWriter) bool {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{
					"error": "invalid_request", "error_description": "bad request: " + echo + " secret " + canary,
					"debug": echo,
				})
				return true
			},
			want: "HTTP 400: invalid_request: bad request: client_id=agw-client&client_secret=[redacted by agw]",
		},
		{
			name: "form-encoded error",
			fail: func(w http.ResponseWriter) bool {
				w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, "error=invalid_client&error_description=nope&echo="+url.QueryEscape(echo))
				return true
			},
			want: "HTTP 401: invalid_client: nope",
		},
		{
			name: "HTML error page with the secret in it",
			fail: func(w http.ResponseWriter) bool {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprint(w, "<html>"+echo+"</html>")
				return true
			},
			want:  "HTTP 500",
			notIn: []string{"<html>"},
		},
		{
			name: "long description with the secret past the cut",
			fail: func(w http.ResponseWriter) bool {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": "x", "error_description": strings.Repeat("a", 190) + canary})
				return true
			},
			want:  "HTTP 400: x: aaaa",
			notIn: []string{"CANARY", "CANA"},
		},
		{
			name: "redirect elsewhere is not followed",
			fail: func(w http.ResponseWriter) bool {
				w.Header().Set("Location", other.URL+"/token")
				w.WriteHeader(http.StatusTemporaryRedirect)
				return true
			},
			want: "HTTP 307 (redirects are not followed)",
		},
		{
			name: "success with an unusable token type",
			fail: func(w http.ResponseWriter) bool {
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]any{"access_token": "dpop-" + canary, "token_type": "DPoP", "expires_in": 60})
				return true
			},
			want:  "the endpoint issued a DPoP token; only bearer tokens can be injected",
			notIn: []string{"dpop-"},
		},
		{
			name: "success without access_token",
			fail: func(w http.ResponseWriter) bool {
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 60})
				return true
			},
			want: "missing access_token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t)
			ts.set(func(ts *tokenServer) { ts.fail = tt.fail })
			s := newSource(ts, newFakeClock(), nil)
			_, err := s.Token(context.Background())
			if !errors.Is(err, ErrTokenUnavailable) {
				t.Fatalf("err = %v, want ErrTokenUnavailable", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			for _, bad := range append([]string{canary, url.QueryEscape(canary), "client_secret=" + canary[:4]}, tt.notIn...) {
				if strings.Contains(msg, bad) {
					t.Errorf("error %q contains %q", msg, bad)
				}
			}
		})
	}
}

func TestRequestParameters(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		params map[string]string
		want   url.Values // fields that must be in the form body
		absent []string
	}{
		{
			name:   "Entra resource",
			scopes: []string{"https://graph.example/.default"},
			params: map[string]string{"resource": "api://backend"},
			want:   url.Values{"resource": {"api://backend"}, "scope": {"https://graph.example/.default"}, "grant_type": {"client_credentials"}},
		},
		{
			name:   "Okta audience and scopes",
			scopes: []string{"read:hr", "write:hr"},
			params: map[string]string{"audience": "https://hr.corp.example"},
			want:   url.Values{"audience": {"https://hr.corp.example"}, "scope": {"read:hr write:hr"}},
		},
		{
			name:   "scope from params when no scopes",
			params: map[string]string{"scope": "custom"},
			want:   url.Values{"scope": {"custom"}},
		},
		{
			name:   "reserved params are not sent",
			scopes: []string{"s"},
			params: map[string]string{"grant_type": "password", "client_secret": "x", "scope": "other"},
			want:   url.Values{"grant_type": {"client_credentials"}, "scope": {"s"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t)
			s := newSource(ts, newFakeClock(), func(c *store.OAuth2, _ *Options) {
				c.Scopes, c.Params = tt.scopes, tt.params
			})
			mustToken(t, s)
			form := ts.lastForm()
			for k, v := range tt.want {
				if got := form[k]; len(got) != 1 || got[0] != v[0] {
					t.Errorf("form %s = %q, want %q", k, got, v)
				}
			}
			if got := form["client_secret"]; len(got) > 0 && got[0] != canary {
				t.Errorf("client_secret overridden by params")
			}
		})
	}
}

func TestTokenHonoursContext(t *testing.T) {
	ts := newTokenServer(t)
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	ts.set(func(ts *tokenServer) { ts.gate, ts.entered = gate, entered })
	s := newSource(ts, newFakeClock(), nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Token(ctx)
		errc <- err
	}()
	<-entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The fetch carried on for whoever comes next.
	close(gate)
	if tok := mustToken(t, s); tok != "tok-1" {
		t.Errorf("token = %q, want tok-1", tok)
	}
	if c := ts.calls.Load(); c != 1 {
		t.Errorf("calls = %d, want 1", c)
	}
}

func TestSecretIsCopied(t *testing.T) {
	ts := newTokenServer(t)
	secret := []byte(canary)
	s := New(store.OAuth2{TokenURL: ts.url(), ClientID: testClientID}, secret, Options{})
	for i := range secret {
		secret[i] = 0
	}
	mustToken(t, s)
}
