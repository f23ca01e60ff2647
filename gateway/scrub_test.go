package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/scrub"
	"github.com/agw-dev/agw/store"
)

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.Bytes()
}

// Through the real pipeline: an echo backend returns the credential in a
// JSON body, a gzip body, gzip inside gzip, an SSE stream split across two
// flushed writes, a stream that withholds its last byte, and an encoded
// Location; the agent receives none of it and the audit counts the
// redactions.
func TestProxyScrubsBodies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key")
		switch r.URL.Path {
		case "/v1/json":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", fmt.Sprint(len(`{"key":""}`)+len(key)))
			_, _ = io.WriteString(w, `{"key":"`+key+`"}`)
		case "/v1/gzip", "/v1/gzip-in-gzip":
			if r.Header.Get("Accept-Encoding") != "gzip" {
				http.Error(w, "want Accept-Encoding gzip, got "+r.Header.Get("Accept-Encoding"), 400)
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			body := gzipped(`{"key":"` + key + `"}`)
			if r.URL.Path == "/v1/gzip-in-gzip" {
				body = gzipped(string(body))
			}
			_, _ = w.Write(body)
		case "/v1/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"k\":\""+key[:9])
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, key[9:]+"\"}\n\n")
		case "/v1/withheld":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+key[:len(key)-1])
		case "/v1/redirect":
			// 201: the client does not follow it.
			w.Header().Set("Location", "https://app.example.com/cb?key="+strings.ReplaceAll(url.QueryEscape(key+"/"), "%2F", "%2f"))
			w.WriteHeader(http.StatusCreated)
		}
	}))
	for _, path := range []string{"/v1/json", "/v1/gzip", "/v1/gzip-in-gzip", "/v1/sse", "/v1/withheld", "/v1/redirect"} {
		t.Run(path, func(t *testing.T) {
			res, body := h.get(path, "Authorization", "Bearer "+h.token, "Accept-Encoding", "gzip, br")
			if res.StatusCode != 200 && res.StatusCode != 201 {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
			if path == "/v1/gzip-in-gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("the inner gzip layer was not re-encoded: %v", err)
				}
				body, _ = io.ReadAll(zr)
			}
			if path == "/v1/redirect" {
				body = []byte(res.Header.Get("Location"))
			}
			if bytes.Contains(body, []byte(canary)) || bytes.Contains(body, []byte(canary[:len(canary)-1])) || !bytes.Contains(body, []byte(scrub.Marker)) {
				t.Errorf("body %q", body)
			}
			if ce := res.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding %q", ce)
			}
			if ev := h.nextAudit(); ev.Redactions != 1 {
				t.Errorf("audit redactions %d", ev.Redactions)
			}
		})
	}
}

// A body agw cannot inspect (br, which it did not ask for) is refused with
// a 502 that names the encoding, and none of it reaches the agent.
func TestProxyRefusesUninspectable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "br")
		_, _ = io.WriteString(w, "opaque "+r.Header.Get("X-Api-Key"))
	}))
	res, body := h.get("/v1/x", "Authorization", "Bearer "+h.token, "Accept-Encoding", "br")
	e := agwError(t, body)
	if res.StatusCode != 502 || e.Type != deny.Upstream || !strings.Contains(e.Message, "Content-Encoding br") || bytes.Contains(body, []byte(canary)) {
		t.Fatalf("%d %+v", res.StatusCode, e)
	}
	if got := h.lastSeen().Header.Get("Accept-Encoding"); got != "" {
		t.Errorf("the backend was asked for %q", got)
	}
}

func TestProxyNoScrub(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withBackend(func(b *store.Backend) { b.NoScrub = true }), withHandler(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "len="+fmt.Sprint(len(r.Header.Get("X-Api-Key"))))
	}))
	res, body := h.get("/v1/x", "Authorization", "Bearer "+h.token)
	if string(body) != fmt.Sprintf("len=%d", len(canary)) || res.ContentLength != int64(len(body)) {
		t.Errorf("NoScrub body %q length %d", body, res.ContentLength)
	}
}

// A WebSocket backend that echoes the credential in a text frame and a
// binary frame: the agent gets both with the secret redacted, the
// handshake offered the backend no extension, and the audit counts both.
func TestProxyScrubsWebSocket(t *testing.T) {
	t.Parallel()
	ext := make(chan string, 1)
	h := newHarness(t, func(s *harnessSetup) { s.noHTTP2 = true }, withHandler(func(w http.ResponseWriter, r *http.Request) {
		ext <- r.Header.Get("Sec-WebSocket-Extensions")
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		key := r.Header.Get("X-Api-Key")
		text := []byte(`{"echo":"` + key + `"}`)
		bin := append([]byte{0, 1}, key...)
		brw.Write(append([]byte{0x81, byte(len(text))}, text...))
		brw.Write(append([]byte{0x82, byte(len(bin))}, bin...))
		brw.Write([]byte{0x88, 0x02, 0x03, 0xe8})
		brw.Flush()
		_, _ = io.Copy(io.Discard, brw) // until the agent closes
	}))
	c, err := h.tlsConn(testHost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nAuthorization: Bearer %s\r\n\r\n", testHost, h.token)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("%v %v", res, err)
	}
	if got := <-ext; got != "" {
		t.Errorf("the backend was offered extensions %q", got)
	}
	var got [][]byte
	for len(got) < 3 {
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, hdr[1]&0x7f)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		got = append(got, append(hdr[:1:1], p...))
	}
	want := [][]byte{
		append([]byte{0x81}, `{"echo":"`+scrub.Marker+`"}`...),
		append([]byte{0x82, 0, 1}, scrub.Marker...),
		{0x88, 0x03, 0xe8},
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d: %q, want %q", i, got[i], want[i])
		}
	}
	c.Close()
	if ev := h.nextAudit(); ev.Status != 101 || ev.Redactions != 2 {
		t.Errorf("audit status %d redactions %d", ev.Status, ev.Redactions)
	}
}
