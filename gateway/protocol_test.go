package gateway

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/dns"
	"github.com/agw-dev/agw/store"
)

func TestUnknownSNIRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, sni := range []string{"unknown.example.org", ""} {
		c, err := tls.Dial("tcp", h.addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			t.Fatalf("handshake for SNI %q succeeded", sni)
		}
		ev := h.nextAudit()
		want := "unknown SNI " + sni
		if sni == "" {
			want = "missing SNI"
		}
		if ev.Kind != store.KindTLS || ev.Decision != store.Deny || ev.Reason != want || !strings.HasPrefix(ev.Client, "127.0.0.1:") {
			t.Errorf("audit %+v, want tls deny %q", ev, want)
		}
	}
	if got := h.p.Stats().TLSRefused; got != 2 {
		t.Errorf("TLSRefused = %d, want 2", got)
	}
}

func TestCertificates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	leaf := func(sni string) *tls.ConnectionState {
		c, err := h.tlsConn(sni)
		if err != nil {
			t.Fatalf("handshake for %s: %v", sni, err)
		}
		defer c.Close()
		st := c.ConnectionState()
		return &st
	}
	a, b := leaf(testHost), leaf("API.Example.com.")
	if !a.PeerCertificates[0].Equal(b.PeerCertificates[0]) {
		t.Error("a second handshake minted a new leaf instead of using the cache")
	}
	w := leaf("acme.crm.example.com")
	if err := w.PeerCertificates[0].VerifyHostname("acme.crm.example.com"); err != nil {
		t.Errorf("wildcard host leaf: %v", err)
	}
	// Renewal: a leaf with less than a quarter of its life left is replaced.
	now := time.Now()
	cc := newCertCache(h.ca, func() time.Time { return now })
	c1, err := cc.get(testHost)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(leafValidity * 70 / 100)
	if c2, _ := cc.get(testHost); c2 != c1 {
		t.Error("leaf renewed with 30% of its life left")
	}
	now = now.Add(leafValidity * 10 / 100)
	if c3, _ := cc.get(testHost); c3 == c1 {
		t.Error("leaf not renewed with 20% of its life left")
	}
}

func TestMisdirected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.st.putBackend(store.Backend{Name: "other", Hosts: []string{"other.example.com"}, Inject: store.InjectBearer}, h.st.backend("api").secret)
	auth := "Authorization: Bearer " + h.token + "\r\n"
	tests := []struct {
		name, req string
		want      int
	}{
		{"host differs from SNI", "GET /v1/models HTTP/1.1\r\nHost: other.example.com\r\n" + auth + "\r\n", 421},
		{"absolute-form names another host", "GET https://other.example.com/v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "\r\n", 421},
		{"absolute-form names this host", "GET https://" + testHost + "/v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "\r\n", 200},
		{"host with port and case", "GET /v1/models HTTP/1.1\r\nHost: API.example.com.:443\r\n" + auth + "\r\n", 200},
		// Go's server refuses these before the handler runs.
		{"duplicate Host", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nHost: other.example.com\r\n" + auth + "\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := h.raw(tt.req)
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.want, body)
			}
			if tt.want == 421 {
				if e := agwError(t, body); e.Type != errMisdirected {
					t.Errorf("type %s", e.Type)
				}
			}
		})
	}
	if n := h.seenCount(); n != 2 {
		t.Errorf("backend received %d requests, want 2", n)
	}
}

func TestRequestSmuggling(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	auth := "Authorization: Bearer " + h.token + "\r\n"
	// CL and TE together: Go's server lets Transfer-Encoding win and drops
	// Content-Length (RFC 9112 §6.3); the gateway re-frames the body, so the
	// backend sees one request with the chunked body and nothing smuggled.
	req := "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth +
		"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n"
	res, body := h.raw(req)
	t.Logf("CL+TE answered %d", res.StatusCode)
	if res.StatusCode == 200 {
		s := h.lastSeen()
		if string(s.Body) != "hello" || h.seenCount() != 1 {
			t.Errorf("backend saw body %q in %d requests", s.Body, h.seenCount())
		}
	} else if res.StatusCode != 400 {
		t.Errorf("CL+TE: status %d: %s", res.StatusCode, body)
	}
	for name, req := range map[string]string{
		"two Content-Lengths": "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nhello",
		"unknown coding":      "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	} {
		res, body := h.raw(req)
		if res.StatusCode < 400 || res.StatusCode >= 500 && res.StatusCode != 501 {
			t.Errorf("%s: status %d: %s", name, res.StatusCode, body)
		}
	}
}

func TestAmbiguousPathsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, p := range []string{"/v1/a%2Fb", "/v1/a%2fb", "/v1/a%5Cb", "/v1/%2E%2E/admin", "/v1/../admin", "/v1/./x", "/v1//x", "/v1/..;/admin", "/v1/a\\b", "/v1/a%00b"} {
		res, body := h.raw("GET " + p + " HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bearer " + h.token + "\r\n\r\n")
		if res.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400: %s", p, res.StatusCode, body)
			continue
		}
		if e := agwError(t, body); e.Type != errBadRequest {
			t.Errorf("%s: type %s", p, e.Type)
		}
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend received %d requests", n)
	}
}

func TestHopByHop(t *testing.T) {
	t.Parallel()
	h := newHarness(t) // header mode, X-Api-Key
	// The agent names the injected header in Connection: it must not
	// remove the injected credential.
	res, body := h.raw("GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nX-Api-Key: " + h.token +
		"\r\nConnection: x-api-key, keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Port: 1\r\nForwarded: for=10.9.9.9\r\n\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	s := h.lastSeen()
	if got := s.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != canary {
		t.Errorf("X-Api-Key at backend = %q, want the injected secret", got)
	}
	for _, k := range []string{"X-Drop-Me", "X-Forwarded-For", "X-Forwarded-Port", "Forwarded"} {
		if v := s.Header.Values(k); len(v) != 0 {
			t.Errorf("backend saw %s: %q", k, v)
		}
	}
	h.assertNoToken(s)

	// h2c upgrade attempts are stripped.
	res, body = h.raw("GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bearer " + h.token +
		"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("h2c: status %d: %s", res.StatusCode, body)
	}
	s = h.lastSeen()
	for _, k := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v := s.Header.Values(k); len(v) != 0 {
			t.Errorf("backend saw %s: %q", k, v)
		}
	}
}

func TestHTTP2EndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res, body := h.get("/v1/models", "Authorization", "Bearer "+h.token)
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Fatalf("status %d proto %s: %s", res.StatusCode, res.Proto, body)
	}
	if s := h.lastSeen(); s.Proto != "HTTP/2.0" {
		t.Errorf("backend saw %s, want HTTP/2.0 upstream", s.Proto)
	}
}

func TestResponseHeadersDoNotEchoSecret(t *testing.T) {
	t.Parallel()
	for _, mode := range []store.InjectMode{store.InjectHeader, store.InjectBasic, store.InjectQuery} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, withBackend(func(b *store.Backend) { b.Inject, b.QueryParam, b.BasicUser = mode, "key", "u" }),
				withHandler(func(w http.ResponseWriter, r *http.Request) {
					for k, vv := range r.Header {
						for _, v := range vv {
							w.Header().Add("X-Echo-"+k, v)
						}
					}
					w.Header().Set("X-Echo-Url", r.URL.String())
					w.Header().Set("Trailer", "X-Trailer-Echo")
					w.WriteHeader(200)
					_, _ = io.WriteString(w, "ok")
					w.Header().Set("X-Trailer-Echo", r.Header.Get("X-Api-Key")+r.Header.Get("Authorization")+r.URL.RawQuery)
				}))
			res, body := h.get("/v1/echo", "Authorization", "Bearer "+h.token)
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			enc := base64.StdEncoding.EncodeToString([]byte("u:" + canary))
			redacted := 0
			for _, hdr := range []http.Header{res.Header, res.Trailer} {
				for k, vv := range hdr {
					for _, v := range vv {
						if strings.Contains(v, canary) || strings.Contains(v, enc) {
							t.Errorf("response header %s echoes the secret: %q", k, v)
						}
						if v == scrubbed {
							redacted++
						}
					}
				}
			}
			if redacted < 2 {
				t.Errorf("expected the echo headers and trailer redacted, got %d redactions: %v %v", redacted, res.Header, res.Trailer)
			}
		})
	}
}

func TestQuerySecretNeverInErrors(t *testing.T) {
	t.Parallel()
	// A closed port: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	h := newHarness(t, withBackend(func(b *store.Backend) {
		b.Inject, b.QueryParam, b.Upstream = store.InjectQuery, "key", "https://"+closed+"/base"
	}))
	res, body := h.get("/v1/models?alt=json", "Authorization", "Bearer "+h.token)
	e := agwError(t, body)
	if res.StatusCode != 502 || e.Type != errUpstream || !strings.Contains(e.Message, "could not be reached") {
		t.Fatalf("status %d %+v", res.StatusCode, e)
	}
	if strings.Contains(string(body), canary) || strings.Contains(h.logs.String(), canary) {
		t.Fatalf("secret leaked: body %s logs %s", body, h.logs.String())
	}
	if !strings.Contains(h.logs.String(), "upstream error") {
		t.Errorf("upstream error not logged: %s", h.logs.String())
	}
	if ev := h.nextAudit(); ev.Status != 502 || ev.Decision != store.Allow || strings.Contains(ev.Reason, canary) {
		t.Errorf("audit %+v", ev)
	}
	if st := h.p.Stats(); st.UpstreamErrs != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRedactError(t *testing.T) {
	t.Parallel()
	inj := newInjection(&store.Backend{Inject: store.InjectQuery, QueryParam: "key"}, []byte("s3cr3t/+="))
	_, err := http.Get("http://127.0.0.1:1/x?key=s3cr3t%2F%2B%3D&a=b")
	got := redactError(err, inj)
	if strings.Contains(got, "s3cr3t") || !strings.Contains(got, "http://127.0.0.1:1/x?[query redacted]") {
		t.Errorf("redactError = %q", got)
	}
	if got := redactURLs(`Get "https://u:p@h/x?key=abc" failed`); got != `Get "https://h/x?[query redacted]" failed` {
		t.Errorf("redactURLs = %q", got)
	}
}

func TestUpstreamLoopback(t *testing.T) {
	t.Parallel()
	h := newHarness(t,
		withBackend(func(b *store.Backend) { b.Upstream = "-" }),
		func(s *harnessSetup) {
			s.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr != testHost+":443" {
					return nil, fmt.Errorf("dialed %s", addr)
				}
				return nil, fmt.Errorf("lookup %s: %w", testHost, dns.ErrLoopback)
			}
		})
	res, body := h.get("/v1/models", "Authorization", "Bearer "+h.token)
	if e := agwError(t, body); res.StatusCode != 502 || !strings.Contains(e.Message, "resolution loops back to the gateway") {
		t.Fatalf("status %d %+v", res.StatusCode, e)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := newHarness(t,
		withBackend(func(b *store.Backend) { b.Timeout = store.Duration(50 * time.Millisecond) }),
		withHandler(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
	defer close(release)
	res, body := h.get("/v1/slow", "Authorization", "Bearer "+h.token)
	if e := agwError(t, body); res.StatusCode != 504 || e.Type != errUpstreamTimeout {
		t.Fatalf("status %d %+v", res.StatusCode, e)
	}
}

// Streamed events reach the agent one at a time, for Server-Sent Events and
// for any other body of unknown length (a chunked NDJSON stream), over
// HTTP/1.1 and HTTP/2: the backend writes the next event only after the
// client has read the previous one, so buffering anywhere in the gateway
// would deadlock the test instead of passing it.
func TestSSEStreamsEventByEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		contentType string
		h2          bool
	}{{"text/event-stream", false}, {"text/event-stream", true}, {"application/x-ndjson", false}, {"application/x-ndjson", true}} {
		t.Run(fmt.Sprintf("%s/http2=%v", tc.contentType, tc.h2), func(t *testing.T) {
			t.Parallel()
			h2 := tc.h2
			next := make(chan struct{})
			h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				for i := range 5 {
					fmt.Fprintf(w, "data: event %d\n\n", i)
					http.NewResponseController(w).Flush()
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
				}
			}))
			req, _ := http.NewRequest("GET", "https://"+testHost+"/v1/stream", nil)
			req.Header.Set("Authorization", "Bearer "+h.token)
			res, err := h.client(h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			for i := range 5 {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if want := fmt.Sprintf("data: event %d\n", i); line != want {
					t.Fatalf("got %q, want %q", line, want)
				}
				if _, err := br.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
				next <- struct{}{}
			}
		})
	}
}

// TestWebSocketEcho upgrades through the gateway to a minimal WebSocket
// echo backend (handshake and one unmasked text frame back).
func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *harnessSetup) { s.noHTTP2 = true }, withHandler(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not a websocket", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		brw.Flush()
		// Read one masked client frame (short payload) and echo it unmasked.
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(brw, hdr); err != nil {
			return
		}
		n := int(hdr[1] & 0x7f)
		mask := make([]byte, 4)
		io.ReadFull(brw, mask)
		payload := make([]byte, n)
		io.ReadFull(brw, payload)
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
		brw.Write(append([]byte{0x81, byte(n)}, payload...))
		brw.Flush()
	}))
	c, err := h.tlsConn(testHost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: agw_%s\r\nAuthorization: Bearer %s\r\n\r\n", testHost, "x", h.token)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 101 {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	msg := []byte("hello")
	mask := []byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(msg))}
	frame = append(frame, mask...)
	for i, b := range msg {
		frame = append(frame, b^mask[i%4])
	}
	c.Write(frame)
	got := make([]byte, 2+len(msg))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if string(got[2:]) != "hello" {
		t.Fatalf("echo %q", got[2:])
	}
	s := h.lastSeen()
	if s.Header.Get("X-Api-Key") != canary {
		t.Error("handshake lacks the injected credential")
	}
	if strings.Contains(s.Header.Get("Authorization"), "agw_") {
		t.Error("handshake carried the gateway token")
	}
	c.Close()
	// The audit record counts the frames each way, not only the handshake.
	if ev := h.nextAudit(); ev.Status != 101 || ev.Decision != store.Allow ||
		ev.BytesIn != int64(len(frame)) || ev.BytesOut != int64(len(got)) {
		t.Errorf("audit %+v, want status 101, allow, %d bytes in and %d out", ev, len(frame), len(got))
	}
}

// Requests Go's HTTP server refuses while reading them never reach the
// pipeline; each still gets exactly one audit record, and a request that
// does reach it gets only its own.
func TestRefusedByServerAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	auth := "Authorization: Bearer " + h.token + "\r\n"
	good := "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "\r\n"
	tests := []struct {
		name, req string
		status    int  // 0: the client hangs up without an answer
		reset     bool // the client resets the connection after sending req
	}{
		{"duplicate Host", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nHost: other.example.com\r\n" + auth + "\r\n", 400, false},
		{"two Content-Lengths", "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nhello", 400, false},
		{"unknown transfer coding", "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, false},
		{"unsupported Expect", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Expect: 200-ok\r\n\r\n", 417, false},
		{"header block over the limit", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "X-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", 431, false},
		{"garbage request line", "GET\x00/ HTTP/9\r\n\r\n", 400, false},
		// A closed half-request gets a 400 from Go's server; a reset one
		// gets nothing.
		{"closed mid-headers", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bea", 400, false},
		{"reset mid-headers", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bea", 0, true},
	}
	for _, tt := range tests {
		c, err := h.tlsConn(testHost)
		if err != nil {
			t.Fatal(err)
		}
		// A served request first: the refused one that follows on the same
		// connection must get its own record, not be taken for this one.
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, good); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if ev := h.nextAudit(); ev.Decision != store.Allow || ev.Status != 200 {
			t.Fatalf("%s: record of the served request: %+v", tt.name, ev)
		}
		if strings.HasSuffix(tt.req, "Bea") {
			if _, err := io.WriteString(c, tt.req); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // let the partial request arrive
			if tt.reset {                     // no close_notify, and an RST
				_ = c.NetConn().(*net.TCPConn).SetLinger(0)
				c.NetConn().Close()
			}
			c.Close()
		} else {
			go func() { _, _ = io.WriteString(c, tt.req) }() // the server may answer before reading it all
		}
		if tt.status != 0 && !strings.HasSuffix(tt.req, "Bea") {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Errorf("%s: status %d, want %d", tt.name, res.StatusCode, tt.status)
			}
		}
		c.Close()
		ev := h.nextAudit()
		reason := reasonRefusedByServer
		if tt.status == 0 {
			reason = reasonCutOff
		}
		if tt.reset && ev.Status == 400 {
			// The reset can reach the server as a plain end of stream,
			// which it answers 400 (unsent).
			tt.status, reason = 400, reasonRefusedByServer
		}
		if ev.Kind != store.KindRequest || ev.Decision != store.Deny || ev.Reason != reason || ev.Status != tt.status ||
			ev.Host != testHost || !strings.HasPrefix(ev.Client, "127.0.0.1:") || ev.RequestID == "" {
			t.Errorf("%s: audit %+v, want a deny %d %q", tt.name, ev, tt.status, reason)
		}
	}
	select {
	case ev := <-h.auditc:
		t.Errorf("extra audit record: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
	// A connection that sends nothing is not a request.
	c, err := h.tlsConn(testHost)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case ev := <-h.auditc:
		t.Errorf("record for a connection that sent no request: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
	if st := h.p.Stats(); st.Requests != uint64(2*len(tests)) || st.Denied != uint64(len(tests)) {
		t.Errorf("stats %+v, want %d requests, %d denied", st, 2*len(tests), len(tests))
	}
	if n := h.seenCount(); n != len(tests) {
		t.Errorf("backend received %d requests, want %d", n, len(tests))
	}
}

// A connection that closes after request bytes the server never answered
// is recorded as a request cut off; one that closes after an answered
// request, or after nothing, is not.
func TestCutOffRequestAudited(t *testing.T) {
	var got []store.AuditEvent
	p := newProxy(proxyConfig{Audit: func(ev store.AuditEvent) { got = append(got, ev) }})
	a, b := net.Pipe()
	defer b.Close()
	c := &h1Conn{Conn: tls.Server(a, &tls.Config{}), t: &trackedConn{}}

	c.t.read.Add(40)     // a request...
	c.t.owed.Store(true) // ...in the pipeline
	p.connState(c, http.StateIdle)
	c.t.read.Add(12) // half of the next one
	p.connState(c, http.StateClosed)
	if len(got) != 1 || got[0].Reason != reasonCutOff || got[0].Status != 0 || got[0].Decision != store.Deny {
		t.Fatalf("records %+v, want one cut-off deny", got)
	}

	got = nil
	c = &h1Conn{Conn: tls.Server(a, &tls.Config{}), t: &trackedConn{}}
	c.t.read.Add(40)
	c.t.owed.Store(true)
	p.connState(c, http.StateIdle)
	p.connState(c, http.StateClosed)
	if len(got) != 0 {
		t.Fatalf("records %+v for a connection closed while idle", got)
	}
}

// Plain HTTP sent to the HTTPS port gets a hint and a TLS refusal record.
func TestPlainHTTPOnHTTPSPort(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /v1/models HTTP/1.1\r\nHost: "+testHost+"\r\nAuthorization: Bearer "+h.token+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 || !strings.Contains(string(body), "https://") {
		t.Errorf("status %d body %q, want 400 naming https://", res.StatusCode, body)
	}
	if ev := h.nextAudit(); ev.Kind != store.KindTLS || ev.Decision != store.Deny || ev.Reason != "plain HTTP on the HTTPS port" {
		t.Errorf("audit %+v", ev)
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend received %d requests", n)
	}
	if st := h.p.Stats(); st.TLSRefused != 1 || st.Requests != 0 {
		t.Errorf("stats %+v, want 1 TLS refusal and no request", st)
	}
}

// Closing the listener (shutdown) closes connections still in their TLS
// handshake instead of waiting out the handshake timeout.
func TestTLSListenerCloseDropsHandshakes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newTLSListener(ln, &tls.Config{}, time.Hour, newProxy(proxyConfig{}))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; ; i++ { // wait for the handshake to start
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		if n == 1 {
			break
		}
		if i == 500 {
			t.Fatal("the connection never reached its handshake")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after Close: %v, want the connection closed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}
