package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
)

// formsSecret has the characters encoders treat specially.
const formsSecret = canary + "/+=&<'x"

// echoEncodings writes the secret the way echoing backends in other
// languages do; the agent must receive none of them.
var echoEncodings = map[string]func(string) string{
	"query-escape-lower": func(s string) string {
		return strings.NewReplacer("%2F", "%2f", "%2B", "%2b", "%3D", "%3d", "%3C", "%3c").Replace(url.QueryEscape(s))
	},
	"json-no-html-escape": func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return strings.TrimSpace(b.String())
	},
	"json-slash-escaped": func(s string) string {
		b, _ := json.Marshal(s)
		return strings.ReplaceAll(string(b), "/", `\/`)
	},
	"json-unicode-every-char": func(s string) string {
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		return `"` + b.String() + `"`
	},
	"html-escape":   html.EscapeString,
	"html-decimal":  func(s string) string { return entities(s, "&#%d;") },
	"html-hex":      func(s string) string { return entities(s, "&#x%x;") },
	"hex-upper":     func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) },
	"base64-offset": func(s string) string { return base64.StdEncoding.EncodeToString([]byte("k=" + s + ";")) },
	"base64url-raw": func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte("{" + s + "}")) },
}

func entities(s, f string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, f, r)
	}
	return b.String()
}

// formsBackend echoes the bearer credential it receives: in a body in each
// of echoEncodings, in a header and a percent-encoded Location, gzip inside
// gzip, an event stream that withholds the secret's last byte until told,
// and WebSocket text and binary frames.
func formsBackend(t *testing.T, release <-chan struct{}) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/body/"):
			enc := echoEncodings[strings.TrimPrefix(r.URL.Path, "/v1/body/")]
			fmt.Fprintf(w, "echo: %s\n", enc(key))
		case r.URL.Path == "/v1/header":
			w.Header().Set("X-Debug-Key", base64.StdEncoding.EncodeToString([]byte(key)))
			w.Header().Set("Location", "https://app.example.com/cb?key="+echoEncodings["query-escape-lower"](key))
			_, _ = io.WriteString(w, "ok")
		case r.URL.Path == "/v1/gzip-in-gzip":
			var inner, outer bytes.Buffer
			zw := gzip.NewWriter(&inner)
			fmt.Fprintf(zw, `{"echo":%q}`, key)
			_ = zw.Close()
			zw = gzip.NewWriter(&outer)
			_, _ = zw.Write(inner.Bytes())
			_ = zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(outer.Bytes())
		case r.URL.Path == "/v1/sse-withheld":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: {\"echo\":\"%s", key[:len(key)-1])
			w.(http.Flusher).Flush()
			<-release
			fmt.Fprintf(w, "%s\"}\n\ndata: [DONE]\n\n", key[len(key)-1:])
		case r.URL.Path == "/v1/ws":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
			text := []byte(`{"echo":"` + key + `"}`)
			bin := append([]byte{0xff}, key...)
			// The text message in two fragments, the secret split between them.
			_, _ = brw.Write(append([]byte{0x01, 20}, text[:20]...))
			_, _ = brw.Write(append([]byte{0x80, byte(len(text) - 20)}, text[20:]...))
			_, _ = brw.Write(append([]byte{0x82, byte(len(bin))}, bin...))
			_, _ = brw.Write([]byte{0x88, 0x02, 0x03, 0xe8})
			_ = brw.Flush()
			_, _ = io.Copy(io.Discard, brw)
		}
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "forms-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// TestScrubEncodedForms drives the real binary against formsBackend: for
// every encoding and response path the agent receives a marker and no
// form of the secret, and the audit record of each request counts its
// redactions.
func TestScrubEncodedForms(t *testing.T) {
	e := newEnv(t)
	e.start()
	release := make(chan struct{})
	srv, caFile := formsBackend(t, release)
	const host = "forms.example.com"
	e.ok(formsSecret+"\n", "backend", "add", "forms", "--host", host, "--inject", "bearer",
		"--upstream", srv.URL, "--upstream-ca", caFile, "--secret-stdin")
	e.ok("", "agent", "add", "bot")
	e.ok("", "grant", "add", "bot", "forms", "--any-method", "--any-path")
	var minted admin.MintedToken
	e.jsonOut(&minted, "token", "mint", "bot")
	auth := "Bearer " + minted.Value

	// What the agent must never see: the raw secret, every encoding above,
	// and anything longer than a few bytes of the secret.
	leaks := func(t *testing.T, got []byte) {
		t.Helper()
		if bytes.Contains(got, []byte(formsSecret[:12])) {
			t.Fatalf("the agent received the secret:\n%s", got)
		}
		for name, enc := range echoEncodings {
			if f := enc(formsSecret); bytes.Contains(got, []byte(strings.Trim(f, `"`))) {
				t.Fatalf("the agent received the %s form:\n%s", name, got)
			}
		}
		if !bytes.Contains(got, []byte("[redacted by agw]")) {
			t.Errorf("no redaction marker:\n%s", got)
		}
	}
	want := map[string]int{}
	for name := range echoEncodings {
		path := "/v1/body/" + name
		want[path] = 1
		t.Run(name, func(t *testing.T) {
			raw, body := rawExchange(t, e, host, path, auth)
			leaks(t, raw)
			leaks(t, body)
		})
	}
	t.Run("header", func(t *testing.T) {
		want["/v1/header"] = 2
		raw, _ := rawExchange(t, e, host, "/v1/header", auth)
		leaks(t, raw)
	})
	t.Run("gzip-in-gzip", func(t *testing.T) {
		want["/v1/gzip-in-gzip"] = 1
		raw, body := rawExchange(t, e, host, "/v1/gzip-in-gzip", auth)
		if bytes.Contains(bytes.ToLower(raw), []byte("content-encoding")) {
			t.Errorf("kept a Content-Encoding:\n%s", raw)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("the inner gzip layer did not reach the agent as gzip: %v", err)
		}
		inner, _ := io.ReadAll(zr)
		leaks(t, inner)
	})
	t.Run("sse-withheld", func(t *testing.T) {
		// The backend sends all of the secret but its last byte and waits:
		// after the hold timeout the agent gets a marker for what was held
		// (not the partial secret), and the last byte is dropped when the
		// backend sends it.
		want["/v1/sse-withheld"] = 1
		conn := agentConn(t, e, host)
		fmt.Fprintf(conn, "GET /v1/sse-withheld HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nConnection: close\r\n\r\n", host, auth)
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%v %v", res, err)
		}
		var got []byte
		buf := make([]byte, 4096)
		for !bytes.Contains(got, []byte("[redacted by agw]")) {
			n, err := res.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("before the hold resolved: %v, got %q", err, got)
			}
		}
		close(release)
		rest, _ := io.ReadAll(res.Body)
		got = append(got, rest...)
		if string(got) != "data: {\"echo\":\"[redacted by agw]\"}\n\ndata: [DONE]\n\n" {
			t.Errorf("event stream %q", got)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		want["/v1/ws"] = 2
		conn := agentConn(t, e, host)
		fmt.Fprintf(conn, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\nAuthorization: %s\r\n\r\n", host, auth)
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 101 {
			t.Fatalf("%v %v", res, err)
		}
		if res.Header.Get("Sec-WebSocket-Extensions") != "" {
			t.Error("an extension was negotiated")
		}
		var text, bin []byte
		for closed := false; !closed; {
			var h [2]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				t.Fatal(err)
			}
			p := make([]byte, h[1]&0x7f)
			if _, err := io.ReadFull(br, p); err != nil {
				t.Fatal(err)
			}
			switch h[0] & 0x0f {
			case 0x1, 0x0:
				text = append(text, p...)
			case 0x2:
				bin = append(bin, p...)
			case 0x8:
				closed = true
			}
		}
		if string(text) != `{"echo":"[redacted by agw]"}` || string(bin) != "\xff[redacted by agw]" {
			t.Errorf("frames: text %q binary %q", text, bin)
		}
		conn.Close()
	})

	got := map[string]int{}
	eventually(t, 10*time.Second, func() bool {
		for _, ev := range auditEvents(t, e, "--agent", "bot", "--backend", "forms") {
			got[ev.Path] = ev.Redactions
		}
		return len(got) == len(want)
	})
	for path, n := range want {
		if got[path] != n {
			t.Errorf("audit %s: %d redactions, want %d", path, got[path], n)
		}
	}
}

// agentConn opens an HTTP/1.1 TLS connection to the gateway as an agent.
func agentConn(t *testing.T, e *env, host string) *tls.Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(e.ok("", "ca", "export")))
	conn, err := tls.Dial("tcp", e.status.Listeners.HTTPS, &tls.Config{ServerName: host, RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn
}
