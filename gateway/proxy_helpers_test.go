package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/limit"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// canary is the backend secret: it must reach the backend and nothing else.
const canary = "sk-canary-7f3a9c1e5b2d4f60QQ"

const testHost = "api.example.com"

// seenRequest is what the test backend received.
type seenRequest struct {
	Method, Host, Path, RawQuery, Proto string
	Header                              http.Header
	Body                                []byte
}

// harness runs the real pipeline: a state loaded from a snapshot whose
// credential is sealed by a real keyring, the proxy serving TLS on a
// loopback listener with leaves from a real CA, and a TLS backend with its
// own certificate trusted through Backend.UpstreamCA.
type harness struct {
	t       testing.TB
	keys    *crypto.Keyring
	ca      *crypto.CA
	st      *state.State
	p       *Gateway
	addr    string
	backend *httptest.Server
	token   string
	tokenID string

	mu     sync.Mutex
	seen   []seenRequest
	audits []store.AuditEvent
	auditc chan store.AuditEvent
	logs   lockedBuffer
	// stop ends Serve as the daemon's shutdown does and returns what it
	// returned; later calls return the same.
	stop func() error
}

type harnessOpt func(*harnessSetup)

type harnessSetup struct {
	backend store.Backend
	grant   store.Grant
	handler http.HandlerFunc // backend behaviour after recording
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	noHTTP2 bool
	metrics *Metrics
	limiter limit.Limiter
}

// withLimiter decides limits through l (another replica's limiter shares
// them).
func withLimiter(l limit.Limiter) harnessOpt {
	return func(s *harnessSetup) { s.limiter = l }
}

func withMetrics(m *Metrics) harnessOpt {
	return func(s *harnessSetup) { s.metrics = m }
}

func withBackend(f func(b *store.Backend)) harnessOpt {
	return func(s *harnessSetup) { f(&s.backend) }
}

func withHandler(h http.HandlerFunc) harnessOpt {
	return func(s *harnessSetup) { s.handler = h }
}

func withGrant(f func(g *store.Grant)) harnessOpt {
	return func(s *harnessSetup) { f(&s.grant) }
}

func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	setup := harnessSetup{
		backend: store.Backend{
			Name:              "api",
			Hosts:             []string{testHost, "*.crm.example.com"},
			Inject:            store.InjectHeader,
			Header:            "X-Api-Key",
			CredentialVersion: 1,
			UpdatedAt:         time.Unix(1700000000, 0),
		},
		grant: store.Grant{Agent: "bot", Backend: "api", Methods: []string{"GET", "POST"}, Paths: []string{"/v1/**"}},
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		},
	}
	for _, o := range opts {
		o(&setup)
	}
	h := &harness{t: t, auditc: make(chan store.AuditEvent, 1024)}

	h.backend = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.seen = append(h.seen, seenRequest{Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Proto: r.Proto, Header: r.Header.Clone(), Body: body})
		h.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		setup.handler(w, r)
	}))
	h.backend.EnableHTTP2 = !setup.noHTTP2
	h.backend.StartTLS()
	t.Cleanup(h.backend.Close)
	if setup.backend.Upstream == "" {
		setup.backend.Upstream = h.backend.URL
	} else if setup.backend.Upstream == "-" {
		setup.backend.Upstream = ""
	}
	setup.backend.UpstreamCA = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.backend.Certificate().Raw}))

	var err error
	if h.keys, err = crypto.NewKeyring(); err != nil {
		t.Fatal(err)
	}
	if h.ca, err = crypto.NewCA("agw test CA", time.Now()); err != nil {
		t.Fatal(err)
	}
	sealed, err := h.keys.Seal([]byte(canary))
	if err != nil {
		t.Fatal(err)
	}
	tok, id, hash, err := crypto.MintToken()
	if err != nil {
		t.Fatal(err)
	}
	h.token, h.tokenID = string(tok.Reveal()), id
	snap := &store.Snapshot{
		Backends:    []store.Backend{setup.backend},
		Credentials: []store.Credential{{Backend: "api", Version: 1, Sealed: sealed}},
		Agents:      []store.Agent{{Name: "bot"}},
		Grants:      []store.Grant{setup.grant},
		Tokens:      []store.Token{{ID: id, Agent: "bot", Hash: hash}},
	}
	if h.st, err = state.Load(snap, h.keys); err != nil {
		t.Fatal(err)
	}
	h.p = New(Config{
		State: h.st,
		CA:    h.ca,
		Dial:  setup.dial,
		Audit: func(ev store.AuditEvent) {
			h.mu.Lock()
			h.audits = append(h.audits, ev)
			h.mu.Unlock()
			h.auditc <- ev
		},
		Logger:  slog.New(slog.NewTextHandler(&h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: setup.metrics,
		Limiter: setup.limiter,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.Serve(ctx, ln) }()
	h.stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		h.checkNoLeaks()
	})
	return h
}

// checkNoLeaks fails the test if the backend secret or the agent token
// appears in any audit record or log line.
func (h *harness) checkNoLeaks() {
	h.t.Helper()
	h.mu.Lock()
	js, err := json.Marshal(h.audits)
	h.mu.Unlock()
	if err != nil {
		h.t.Fatal(err)
	}
	logs := h.logs.String()
	for _, s := range []string{canary, h.token} {
		if bytes.Contains(js, []byte(s)) {
			h.t.Errorf("audit records contain a credential: %s", js)
		}
		if strings.Contains(logs, s) {
			h.t.Errorf("log output contains a credential: %s", logs)
		}
	}
}

// checkBackendClean asserts the backend saw the injected credential on a
// request and no trace of the gateway token anywhere.
func (h *harness) lastSeen() seenRequest {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		h.t.Fatal("the backend received no request")
	}
	return h.seen[len(h.seen)-1]
}

func (h *harness) seenCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

func (h *harness) assertNoToken(s seenRequest) {
	h.t.Helper()
	id := h.token
	for k, vv := range s.Header {
		for _, v := range vv {
			if strings.Contains(v, id) || strings.Contains(v, h.tokenID) || strings.Contains(v, "agw_") {
				h.t.Errorf("backend saw the gateway token in header %s: %q", k, v)
			}
			if strings.HasPrefix(strings.ToLower(v), "basic ") {
				if strings.Contains(decodeBasic(v), "agw_") {
					h.t.Errorf("backend saw the gateway token in Basic auth of %s", k)
				}
			}
		}
	}
	if strings.Contains(s.RawQuery, "agw_") || strings.Contains(s.Path, "agw_") || bytes.Contains(s.Body, []byte(id)) {
		h.t.Errorf("backend saw the gateway token in the URL or body: %s?%s", s.Path, s.RawQuery)
	}
}

// nextAudit returns the next audit record.
func (h *harness) nextAudit() store.AuditEvent {
	h.t.Helper()
	select {
	case ev := <-h.auditc:
		return ev
	case <-time.After(10 * time.Second):
		h.t.Fatal("no audit record")
		return store.AuditEvent{}
	}
}

func (h *harness) caPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(h.ca.Cert)
	return pool
}

// client returns an HTTP client that reaches every host through the proxy
// listener and trusts the agw CA, as an agent with the CA installed and DNS
// pointed at agw would.
func (h *harness) client(http2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: h.caPool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, h.addr)
		},
		ForceAttemptHTTP2: http2,
	}
	if !http2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// do sends a request with the token as a Bearer credential unless the
// request already has an Authorization header or noAuth is set.
func (h *harness) do(req *http.Request) (*http.Response, []byte) {
	h.t.Helper()
	res, err := h.client(true).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return res, body
}

func (h *harness) get(path string, hdr ...string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest("GET", "https://"+testHost+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return h.do(req)
}

// tlsConn opens an HTTP/1.1 TLS connection to the proxy for sni.
func (h *harness) tlsConn(sni string) (*tls.Conn, error) {
	return tls.Dial("tcp", h.addr, &tls.Config{RootCAs: h.caPool(), ServerName: sni, NextProtos: []string{"http/1.1"}})
}

// raw sends a request byte for byte over HTTP/1.1 and reads the response.
func (h *harness) raw(request string) (*http.Response, []byte) {
	h.t.Helper()
	c, err := h.tlsConn(testHost)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, request); err != nil {
		h.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

// agwError decodes the gateway's JSON error.
func agwError(t *testing.T, body []byte) deny.Detail {
	t.Helper()
	var e deny.Body
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not the agw JSON shape: %v: %s", err, body)
	}
	if len(e.Error.RequestID) != 16 {
		t.Errorf("request id %q is not 16 hex characters", e.Error.RequestID)
	}
	return e.Error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
