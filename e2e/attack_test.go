package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// byteBackend is a TLS backend that keeps every plaintext byte it
// receives, so an attack case can assert what reached it, not only what
// its HTTP server made of it. It answers 200 with a small JSON body and
// speaks WebSocket on /ws (sending a frame every 50 ms).
type byteBackend struct {
	caFile string
	url    string
	mu     sync.Mutex
	raw    bytes.Buffer
	reqs   int
}

func newByteBackend(t *testing.T) *byteBackend {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	ts.Close()
	b := &byteBackend{caFile: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(b.caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.url = "https://" + raw.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(&teeListener{Listener: tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}), b: b})
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *byteBackend) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	b.mu.Lock()
	b.reqs++
	b.mu.Unlock()
	if r.URL.Path == "/v1/ws" {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		for range 600 {
			if _, err := brw.Write([]byte{0x81, 4, 't', 'i', 'c', 'k'}); err != nil || brw.Flush() != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"method":%q,"path":%q}`, r.Method, r.URL.EscapedPath())
}

func (b *byteBackend) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.raw.Bytes()...)
}

func (b *byteBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reqs
}

type teeListener struct {
	net.Listener
	b *byteBackend
}

func (l *teeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &teeConn{Conn: c, b: l.b}, nil
}

type teeConn struct {
	net.Conn
	b *byteBackend
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.b.mu.Lock()
	c.b.raw.Write(p[:n])
	c.b.mu.Unlock()
	return n, err
}

// attackEnv is a daemon with one header-mode backend on byteBackend, one
// agent with a grant for GET/POST on /v1/**, and its token.
type attackEnv struct {
	e     *env
	be    *byteBackend
	token string
	pool  *x509.CertPool
	host  string
}

func newAttackEnv(t *testing.T) *attackEnv {
	t.Helper()
	e := newEnv(t)
	e.start()
	be := newByteBackend(t)
	e.ok(canary+"\n", "backend", "add", "api", "--host", "api.attack.example", "--inject", "header", "--header", "x-api-key",
		"--upstream", be.url, "--upstream-ca", be.caFile, "--secret-stdin")
	e.ok("", "agent", "add", "bot")
	e.ok("", "grant", "add", "bot", "api", "--method", "GET", "--method", "POST", "--path", "/v1/**")
	var m admin.MintedToken
	e.jsonOut(&m, "token", "mint", "bot")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(e.ok("", "ca", "export")))
	return &attackEnv{e: e, be: be, token: m.Value, pool: pool, host: "api.attack.example"}
}

// raw sends one HTTP/1.1 request as bytes on a fresh TLS connection and
// returns the response and whether the gateway closed the connection.
func (a *attackEnv) raw(t *testing.T, req string) (*http.Response, string) {
	t.Helper()
	c, err := tls.Dial("tcp", a.e.status.Listeners.HTTPS, &tls.Config{RootCAs: a.pool, ServerName: a.host, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body)
}

// h2 sends one request with the given header fields over HTTP/2, written
// with a framer (no client library deciding what may be sent), and
// returns the response status.
func (a *attackEnv) h2(t *testing.T, fields [][2]string) int {
	t.Helper()
	c, err := tls.Dial("tcp", a.e.status.Listeners.HTTPS, &tls.Config{RootCAs: a.pool, ServerName: a.host, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the HTTP/2 answer: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			hf, _ := dec.DecodeFull(f.HeaderBlockFragment())
			for _, h := range hf {
				if h.Name == ":status" {
					var s int
					fmt.Sscan(h.Value, &s)
					return s
				}
			}
		case *http2.RSTStreamFrame:
			return 0
		case *http2.GoAwayFrame:
			return 0
		}
	}
}

// lastEvent is the newest request record.
func (a *attackEnv) lastEvent(t *testing.T) store.AuditEvent {
	t.Helper()
	var ev store.AuditEvent
	eventually(t, 10*time.Second, func() bool {
		evs := query(t, a.e, "--kind", "request")
		if len(evs) == 0 {
			return false
		}
		ev = evs[len(evs)-1]
		return true
	})
	return ev
}

// forms are the encodings of the agent's token that must never reach the
// backend.
func tokenForms(tok string) []string {
	return []string{tok, strings.ReplaceAll(tok, "_", "%5F"), strings.ReplaceAll(tok, "_", "%5f"),
		base64.StdEncoding.EncodeToString([]byte(tok)), base64.URLEncoding.EncodeToString([]byte(tok))}
}

// TestAttackSuite drives the real binary with requests an agent could be
// tricked into sending, and checks each time what the agent got, what the
// backend received byte for byte, and what the audit trail recorded.
func TestAttackSuite(t *testing.T) {
	a := newAttackEnv(t)
	auth := "X-Api-Key: " + a.token + "\r\n"
	reqHead := func(method, target string) string {
		return method + " " + target + " HTTP/1.1\r\nHost: " + a.host + "\r\n" + auth
	}

	t.Run("override headers, HTTP/1.1", func(t *testing.T) {
		before := len(a.be.bytes())
		res, body := a.raw(t, reqHead("POST", "/v1/items")+"X-HTTP-Method-Override: DELETE\r\nX-Original-URL: /admin\r\nX_HTTP_METHOD: PUT\r\nX-Rewrite-URL: /admin\r\nContent-Length: 2\r\n\r\n{}")
		if res.StatusCode != 200 {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		got := strings.ToLower(string(a.be.bytes()[before:]))
		if !strings.HasPrefix(got, "post /v1/items http/1.1") || strings.Contains(got, "override") || strings.Contains(got, "original-url") || strings.Contains(got, "rewrite-url") || strings.Contains(got, "x_http_method") {
			t.Errorf("the backend received:\n%s", got)
		}
	})
	t.Run("override headers, HTTP/2", func(t *testing.T) {
		before := len(a.be.bytes())
		status := a.h2(t, [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", a.host}, {":path", "/v1/items"},
			{"x-api-key", a.token}, {"x-http-method-override", "DELETE"}, {"x-original-url", "/admin"}})
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		got := strings.ToLower(string(a.be.bytes()[before:]))
		if !strings.HasPrefix(got, "get /v1/items") || strings.Contains(got, "override") || strings.Contains(got, "original-url") {
			t.Errorf("the backend received:\n%s", got)
		}
	})
	t.Run("method override in the query", func(t *testing.T) {
		n := a.be.count()
		res, body := a.raw(t, reqHead("POST", "/v1/items?_method=DELETE")+"Content-Length: 0\r\n\r\n")
		if res.StatusCode != 400 || !strings.Contains(body, "method override") || a.be.count() != n {
			t.Errorf("%d %s (backend requests %d → %d)", res.StatusCode, body, n, a.be.count())
		}
		if ev := a.lastEvent(t); ev.Decision != store.Deny || ev.Status != 400 {
			t.Errorf("audit %+v", ev)
		}
	})
	t.Run("encoded token copies", func(t *testing.T) {
		before := len(a.be.bytes())
		pct := strings.ReplaceAll(a.token, "_", "%5F")
		b64 := base64.StdEncoding.EncodeToString([]byte(a.token))
		res, body := a.raw(t, reqHead("GET", "/v1/items?t="+pct+"&q=1")+"Cookie: s="+pct+"\r\nX-Debug: "+b64+"\r\n\r\n")
		if res.StatusCode != 200 {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		got := string(a.be.bytes()[before:])
		for _, f := range tokenForms(a.token) {
			if strings.Contains(got, f) {
				t.Errorf("the backend received the token as %q:\n%s", f, got)
			}
		}
		if !strings.Contains(got, canary) || !strings.Contains(got, "q=1") {
			t.Errorf("the backend lost the injected key or the rest of the query:\n%s", got)
		}
	})
	t.Run("content-length with transfer-encoding", func(t *testing.T) {
		n := a.be.count()
		res, body := a.raw(t, reqHead("POST", "/v1/items")+"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/smuggled HTTP/1.1\r\nHost: "+a.host+"\r\n\r\n")
		if res.StatusCode != 400 || !res.Close || a.be.count() != n {
			t.Errorf("%d close=%v %s (backend requests %d → %d)", res.StatusCode, res.Close, body, n, a.be.count())
		}
		if strings.Contains(string(a.be.bytes()), "smuggled") {
			t.Error("the smuggled request reached the backend")
		}
	})
	for _, tc := range []struct{ name, path string }{
		{"overlong dot", "/v1/%C0%AE%C0%AE/admin"},
		{"full-width dots", "/v1/%EF%BC%8E%EF%BC%8E/admin"},
		{"bidi override", "/v1/%E2%80%AEnimda"},
		{"encoded slash", "/v1/a%2F..%2Fadmin"},
	} {
		t.Run("ambiguous path: "+tc.name, func(t *testing.T) {
			n := a.be.count()
			res, body := a.raw(t, reqHead("GET", tc.path)+"\r\n")
			if res.StatusCode != 400 || a.be.count() != n {
				t.Errorf("%d %s", res.StatusCode, body)
			}
		})
	}
	t.Run("raw bidi in the path is escaped in the trail", func(t *testing.T) {
		res, _ := a.raw(t, reqHead("GET", "/v1/\u202etxt.exe")+"\r\n")
		if res.StatusCode != 400 {
			t.Errorf("status %d", res.StatusCode)
		}
		out := a.e.ok("", "audit", "tail", "-n", "3")
		if strings.Contains(out, "\u202e") || !strings.Contains(out, `\u202E`) {
			t.Errorf("audit tail printed:\n%s", out)
		}
	})
	t.Run("OPTIONS *", func(t *testing.T) {
		res, body := a.raw(t, "OPTIONS * HTTP/1.1\r\nHost: "+a.host+"\r\n"+auth+"\r\n")
		if res.StatusCode != 400 {
			t.Errorf("%d %s", res.StatusCode, body)
		}
		if ev := a.lastEvent(t); ev.Method != "OPTIONS" || ev.Status != 400 {
			t.Errorf("audit %+v", ev)
		}
	})
	t.Run("a neighbour's failures do not throttle a valid token", func(t *testing.T) {
		bad := a.token[:len(a.token)-6] + "ZZZZZZ"
		for range 15 {
			a.raw(t, "GET /v1/items HTTP/1.1\r\nHost: "+a.host+"\r\nX-Api-Key: "+bad+"\r\n\r\n")
		}
		res, _ := a.raw(t, "GET /v1/items HTTP/1.1\r\nHost: "+a.host+"\r\nX-Api-Key: "+bad+"\r\n\r\n")
		if res.StatusCode != 429 {
			t.Errorf("the failing credential: %d, want 429", res.StatusCode)
		}
		for range 5 {
			if res, body := a.raw(t, reqHead("GET", "/v1/items")+"\r\n"); res.StatusCode != 200 {
				t.Fatalf("valid token from the same address: %d %s", res.StatusCode, body)
			}
		}
	})
	t.Run("revocation closes an open WebSocket", func(t *testing.T) {
		c, err := tls.Dial("tcp", a.e.status.Listeners.HTTPS, &tls.Config{RootCAs: a.pool, ServerName: a.host, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\n%sUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", a.host, auth)
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", res, err)
		}
		var detail admin.AgentDetail
		a.e.jsonOut(&detail, "agent", "show", "bot")
		revokedAt := time.Now()
		a.e.ok("", "token", "revoke", detail.Tokens[0].ID)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		code := 0
		for code == 0 {
			hdr := make([]byte, 2)
			if _, err := io.ReadFull(br, hdr); err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			payload := make([]byte, hdr[1]&0x7f)
			io.ReadFull(br, payload)
			if hdr[0]&0x0f == 8 {
				code = int(binary.BigEndian.Uint16(payload))
			}
		}
		if code != 1008 {
			t.Errorf("close code %d, want 1008", code)
		}
		t.Logf("closed %v after the revoke command returned", time.Since(revokedAt).Round(time.Millisecond))
		eventually(t, 10*time.Second, func() bool {
			for _, ev := range query(t, a.e, "--kind", "request") {
				if ev.Status == 101 && strings.Contains(ev.Reason, "closed mid-flight") && strings.Contains(ev.Reason, "revoked") {
					return true
				}
			}
			return false
		})
	})
	t.Run("the backend never saw the token", func(t *testing.T) {
		all := string(a.be.bytes())
		for _, f := range tokenForms(a.token) {
			if strings.Contains(all, f) {
				t.Errorf("the backend received the token as %q", f)
			}
		}
		logs := a.e.log.String()
		if strings.Contains(logs, canary) || strings.Contains(logs, a.token) {
			t.Error("the daemon's log holds the secret or the token")
		}
	})
}

// TestAnonymousFloodBounded floods the real binary with requests that
// carry no credential and reports how many audit records it wrote.
func TestAnonymousFloodBounded(t *testing.T) {
	a := newAttackEnv(t)
	c, err := tls.Dial("tcp", a.e.status.Listeners.HTTPS, &tls.Config{RootCAs: a.pool, ServerName: a.host, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const flood = 3000
	start := time.Now()
	br := bufio.NewReader(c)
	go func() {
		w := bufio.NewWriter(c)
		for range flood {
			fmt.Fprintf(w, "GET /v1/x HTTP/1.1\r\nHost: %s\r\n\r\n", a.host)
		}
		w.Flush()
	}()
	for i := range flood {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	took := time.Since(start)
	a.e.stop() // flushes the last summaries
	a.e.start()
	evs := query(t, a.e, "--kind", "request", "--decision", "deny")
	counted := 0
	kinds := map[string]bool{} // no credential (401), then throttled (429)
	for _, ev := range evs {
		kind, _, _ := strings.Cut(ev.Reason, " (aggregated: ")
		kinds[fmt.Sprint(ev.Status, kind)] = true
		if i := strings.Index(ev.Reason, "(aggregated: "); i >= 0 {
			var n int
			fmt.Sscanf(ev.Reason[i:], "(aggregated: %d", &n)
			counted += n
		} else {
			counted++
		}
	}
	t.Logf("%d refusals in %v (%.0f/s): %d audit records written (%.1f/s); one record per request would be %.0f/s",
		flood, took.Round(time.Millisecond), flood/took.Seconds(), len(evs), float64(len(evs))/took.Seconds(), flood/took.Seconds())
	windows := int(took/(10*time.Second)) + 1
	if bound := windows * len(kinds) * 21; len(evs) > bound {
		t.Errorf("%d records for %d anonymous refusals of %d kinds in %d windows, want at most %d", len(evs), flood, len(kinds), windows, bound)
	}
	if counted != flood {
		t.Errorf("the records account for %d refusals, want %d", counted, flood)
	}
}
