package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// seenRequest is what the fake backend recorded of one request.
type seenRequest struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
}

// recordingBackend is a local TLS backend with its own certificate that
// records everything it receives.
type recordingBackend struct {
	srv    *httptest.Server
	caFile string
	mu     sync.Mutex
	seen   []seenRequest
	// sse, when set, is used for /sse: each event waits for a value.
	sse chan struct{}
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	t.Helper()
	b := &recordingBackend{sse: make(chan struct{})}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.srv.EnableHTTP2 = true
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw})
	b.caFile = filepath.Join(t.TempDir(), "backend-ca.pem")
	if err := os.WriteFile(b.caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *recordingBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.seen = append(b.seen, seenRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone()})
	b.mu.Unlock()
	if r.URL.Path == "/sse" {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			if i > 1 {
				// The next event is written only after the client has
				// read the previous one: buffering anywhere would deadlock.
				select {
				case <-b.sse:
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Second):
					return
				}
			}
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"path":%q,"proto":%q}`, r.URL.Path, r.Proto)
}

func (b *recordingBackend) last(t *testing.T) seenRequest {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		t.Fatal("the backend received no request")
	}
	return b.seen[len(b.seen)-1]
}

func (b *recordingBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

// gatewayClient returns an HTTPS client that trusts only agw's CA and dials
// agw's listener whatever the URL's host, as DNS interception would.
func gatewayClient(t *testing.T, e *env) *http.Client {
	t.Helper()
	caPEM := e.ok("", "ca", "export")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("agw ca export printed no certificate:\n%s", caPEM)
	}
	addr := e.status.Listeners.HTTPS
	dial := func(network, _ string) (net.Conn, error) { return net.Dial(network, addr) }
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			DialContext:       func(ctx context.Context, network, a string) (net.Conn, error) { return dial(network, a) },
			ForceAttemptHTTP2: true,
		},
	}
}

// apiError is agw's JSON error body.
type apiError struct {
	Error struct {
		Type      string `json:"type"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func doReq(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func errType(t *testing.T, body string) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not agw's JSON error: %v\n%s", err, body)
	}
	return e
}

// assertNoToken fails if the gateway token reached the backend anywhere.
func assertNoToken(t *testing.T, r seenRequest, token string) {
	t.Helper()
	if strings.Contains(r.RawQuery, token) || strings.Contains(r.Path, token) {
		t.Errorf("the gateway token reached the backend in the URL: %s?%s", r.Path, r.RawQuery)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, token) {
				t.Errorf("the gateway token reached the backend in header %s", k)
			}
			if user, pass, ok := parseBasic(v); ok && (strings.Contains(user, token) || strings.Contains(pass, token)) {
				t.Errorf("the gateway token reached the backend in Basic credentials of %s", k)
			}
		}
	}
}

func parseBasic(v string) (user, pass string, ok bool) {
	enc, found := strings.CutPrefix(v, "Basic ")
	if !found {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(b), ":")
	return
}

// TestGatewaySwap drives the real binary end to end: an HTTPS client that
// trusts only agw's CA calls registered hosts with a gateway token; the
// backend sees the real credential and never the token.
func TestGatewaySwap(t *testing.T) {
	e := newEnv(t)
	e.start()
	be := newRecordingBackend(t)
	up := be.srv.URL

	const (
		secretHeader = canary + "-header"
		secretBearer = canary + "-bearer"
		secretBasic  = canary + "-basic"
		secretQuery  = canary + "-query"
		secretRot    = canary + "-rotated"
	)
	add := func(secret string, args ...string) {
		e.ok(secret+"\n", append(append([]string{"backend", "add"}, args...), "--upstream", up, "--upstream-ca", be.caFile, "--secret-stdin")...)
	}
	add(secretHeader, "hr", "--host", "hr.corp.net", "--inject", "header", "--header", "x-api-key")
	add(secretBearer, "llm", "--host", "api.llm.example.com", "--inject", "bearer")
	add(secretBasic, "git", "--host", "git.example.com", "--inject", "basic", "--basic-user", "x-access-token")
	add(secretQuery, "maps", "--host", "maps.example.com", "--inject", "query", "--query-param", "key")
	e.ok("", "agent", "add", "hr-bot")
	for _, b := range []string{"hr", "llm", "git", "maps"} {
		e.ok("", "grant", "add", "hr-bot", b, "--method", "GET", "--path", "/v1/**", "--path", "/sse")
	}
	var minted admin.MintedToken
	e.jsonOut(&minted, "token", "mint", "hr-bot")
	tok := minted.Value
	c := gatewayClient(t, e)
	port := portOf(e.status.Listeners.HTTPS)

	t.Run("injection modes", func(t *testing.T) {
		cases := []struct {
			name, url string
			hdr       map[string]string
			check     func(r seenRequest) string
		}{
			{"header", "https://hr.corp.net:" + port + "/v1/employees", map[string]string{"x-api-key": tok},
				func(r seenRequest) string { return r.Header.Get("X-Api-Key") }},
			{"bearer", "https://api.llm.example.com:" + port + "/v1/models", map[string]string{"Authorization": "Bearer " + tok},
				func(r seenRequest) string { return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") }},
			{"basic (git over HTTPS)", "https://git.example.com:" + port + "/v1/repo.git/info/refs",
				map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("git:"+tok))},
				func(r seenRequest) string {
					u, p, _ := parseBasic(r.Header.Get("Authorization"))
					if u != "x-access-token" {
						return "user " + u
					}
					return p
				}},
			{"query", "https://maps.example.com:" + port + "/v1/geocode?key=" + tok + "&q=berlin", nil,
				func(r seenRequest) string {
					q, err := url.ParseQuery(r.RawQuery)
					if err != nil || q.Get("q") != "berlin" || len(q["key"]) != 1 {
						return "query mangled: " + r.RawQuery
					}
					return q.Get("key")
				}},
		}
		want := map[string]string{"header": secretHeader, "bearer": secretBearer, "basic (git over HTTPS)": secretBasic, "query": secretQuery}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				status, body := doReq(t, c, "GET", tc.url, tc.hdr)
				if status != 200 || !strings.Contains(body, `"path":"/v1/`) {
					t.Fatalf("status %d body %s", status, body)
				}
				r := be.last(t)
				if got := tc.check(r); got != want[tc.name] {
					t.Errorf("backend got credential %q, want the %s secret", got, tc.name)
				}
				assertNoToken(t, r, tok)
			})
		}
	})

	t.Run("rotation takes effect on the next request", func(t *testing.T) {
		e.ok(secretRot+"\n", "backend", "rotate", "hr", "--secret-stdin")
		status, _ := doReq(t, c, "GET", "https://hr.corp.net:"+port+"/v1/employees", map[string]string{"x-api-key": tok})
		if got := be.last(t).Header.Get("X-Api-Key"); status != 200 || got != secretRot {
			t.Errorf("after rotate: status %d, backend got %q; want the rotated secret", status, got)
		}
	})

	t.Run("SSE events arrive one by one", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "https://api.llm.example.com:"+port+"/sse", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		for i := 1; i <= 3; i++ {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d: %v (the stream was buffered)", i, err)
			}
			if want := fmt.Sprintf("data: event %d\n", i); line != want {
				t.Fatalf("got %q, want %q", line, want)
			}
			_, _ = rd.ReadString('\n')
			if i < 3 {
				be.sse <- struct{}{}
			}
		}
	})

	t.Run("denials", func(t *testing.T) {
		cases := []struct {
			name    string
			prepare func()
			method  string
			url     string
			hdr     map[string]string
			status  int
			typ     string
			mention string
		}{
			{"no credential", nil, "GET", "https://hr.corp.net:" + port + "/v1/employees", nil, 401, "agw_unauthenticated", ""},
			{"malformed token", nil, "GET", "https://hr.corp.net:" + port + "/v1/employees", map[string]string{"x-api-key": alterLast(tok)}, 401, "agw_unauthenticated", ""},
			{"wrong method", nil, "DELETE", "https://hr.corp.net:" + port + "/v1/employees", map[string]string{"x-api-key": tok}, 403, "agw_forbidden", "DELETE"},
			{"path outside the grant", nil, "GET", "https://hr.corp.net:" + port + "/admin/users", map[string]string{"x-api-key": tok}, 403, "agw_forbidden", "/admin/users"},
			{"no grant", func() { e.ok("", "grant", "remove", "hr-bot", "maps") }, "GET", "https://maps.example.com:" + port + "/v1/x?key=" + tok, nil, 403, "agw_forbidden", "grant"},
			{"Host differs from SNI", nil, "GET", "https://hr.corp.net:" + port + "/v1/employees", map[string]string{"x-api-key": tok, "Host": "api.llm.example.com"}, 421, "agw_misdirected", ""},
			{"agent disabled", func() { e.ok("", "agent", "disable", "hr-bot") }, "GET", "https://hr.corp.net:" + port + "/v1/employees", map[string]string{"x-api-key": tok}, 403, "agw_forbidden", "disabled"},
			{"token revoked", func() { e.ok("", "agent", "enable", "hr-bot"); e.ok("", "token", "revoke", minted.ID) }, "GET", "https://hr.corp.net:" + port + "/v1/employees", map[string]string{"x-api-key": tok}, 401, "agw_unauthenticated", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.prepare != nil {
					tc.prepare()
				}
				before := be.count()
				req, _ := http.NewRequest(tc.method, tc.url, nil)
				for k, v := range tc.hdr {
					if k == "Host" {
						req.Host = v
						continue
					}
					req.Header.Set(k, v)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
				}
				ae := errType(t, string(body))
				if ae.Error.Type != tc.typ || ae.Error.RequestID == "" {
					t.Errorf("error %+v; want type %s with a request id", ae.Error, tc.typ)
				}
				if tc.mention != "" && !strings.Contains(ae.Error.Message, tc.mention) {
					t.Errorf("message %q does not name %q", ae.Error.Message, tc.mention)
				}
				if tc.status == 403 && !strings.Contains(strings.ToLower(ae.Error.Message), "policy") {
					t.Errorf("a deny must say it is a policy decision: %q", ae.Error.Message)
				}
				if be.count() != before {
					t.Errorf("a denied request reached the backend")
				}
				if strings.Contains(string(body), tok) {
					t.Errorf("the error echoes the token")
				}
			})
		}
	})

	t.Run("unknown SNI is refused at the handshake", func(t *testing.T) {
		_, err := c.Get("https://not-registered.example.com:" + port + "/")
		if err == nil {
			t.Fatal("a handshake for an unregistered name succeeded")
		}
	})

	t.Run("audit records every request", func(t *testing.T) {
		var events []store.AuditEvent
		eventually(t, 10*time.Second, func() bool {
			events = auditEvents(t, e, "--backend", "hr")
			return len(events) >= 7
		})
		var allow, deny int
		for _, ev := range events {
			if ev.Kind != store.KindRequest {
				continue
			}
			switch ev.Decision {
			case store.Allow:
				allow++
				if ev.Agent != "hr-bot" || ev.TokenID != minted.ID || ev.Status != 200 || ev.CredentialVersion == 0 {
					t.Errorf("allow record incomplete: %+v", ev)
				}
			case store.Deny:
				deny++
				if ev.Reason == "" {
					t.Errorf("deny record without a reason: %+v", ev)
				}
			}
		}
		if allow < 2 || deny < 4 {
			t.Errorf("audit for backend hr: %d allows, %d denies; want at least 2 and 4", allow, deny)
		}
	})

	e.stop()
	assertNoSecret(t, e, secretHeader, secretBearer, secretBasic, secretQuery, secretRot)
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// auditEvents reads the audit trail through the CLI.
func auditEvents(t *testing.T, e *env, filters ...string) []store.AuditEvent {
	t.Helper()
	out := e.ok("", append([]string{"audit", "tail", "-n", "1000", "-o", "json"}, filters...)...)
	var evs []store.AuditEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev store.AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// alterLast returns s with its last character replaced by a different one,
// so the result is never s itself whatever s ends with.
func alterLast(s string) string {
	last := byte('x')
	if s[len(s)-1] == last {
		last = 'y'
	}
	return s[:len(s)-1] + string(last)
}
