package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
)

// echoBackend reflects the credential it receives, as debug and echo
// endpoints do: in a header, a JSON body, an SSE stream that splits it
// across two flushed writes, and a gzip body.
func echoBackend(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		basic := strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
		switch r.URL.Path {
		case "/v1/header":
			w.Header().Set("X-Debug-Auth", r.Header.Get("Authorization"))
			_, _ = io.WriteString(w, "ok")
		case "/v1/json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"headers":{"Authorization":%q},"basic":%q}`, r.Header.Get("Authorization"), basic)
		case "/v1/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			half := len(key) / 2
			fmt.Fprintf(w, "data: {\"echo\":\"%s", key[:half])
			w.(http.Flusher).Flush() // the halves go out as separate writes
			fmt.Fprintf(w, "%s\"}\n\ndata: [DONE]\n\n", key[half:])
			w.(http.Flusher).Flush()
		case "/v1/gzip":
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				http.Error(w, "gzip not offered", 400)
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Type", "application/json")
			zw := gzip.NewWriter(w)
			fmt.Fprintf(zw, `{"echo":%q}`, key)
			_ = zw.Close()
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "echo-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// rawExchange sends one HTTP/1.1 request over TLS to the gateway and
// returns every byte received, and the body as an HTTP client decodes it
// (chunk framing could otherwise hide a secret split across chunks).
func rawExchange(t *testing.T, e *env, host, path, auth string) (raw, body []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(e.ok("", "ca", "export")))
	conn, err := tls.Dial("tcp", e.status.Listeners.HTTPS, &tls.Config{ServerName: host, RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nAccept-Encoding: gzip, br\r\nConnection: close\r\n\r\n", path, host, auth)
	raw, err = io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("parse response: %v\n%s", err, raw)
	}
	defer res.Body.Close()
	if body, err = io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
	}
	return raw, body
}

// TestScrubReflectedSecret: whatever form the backend reflects the
// credential in, the agent receives none of it, and the audit record
// counts the redactions.
func TestScrubReflectedSecret(t *testing.T) {
	e := newEnv(t)
	e.start()
	srv, caFile := echoBackend(t)
	const secretBearer = canary + "-bearer"
	const secretBasic = canary + "-basic"
	e.ok(secretBearer+"\n", "backend", "add", "echo", "--host", "echo.example.com", "--inject", "bearer",
		"--upstream", srv.URL, "--upstream-ca", caFile, "--secret-stdin")
	e.ok(secretBasic+"\n", "backend", "add", "echob", "--host", "echob.example.com", "--inject", "basic", "--basic-user", "u",
		"--upstream", srv.URL, "--upstream-ca", caFile, "--secret-stdin")
	e.ok("", "agent", "add", "bot")
	e.ok("", "grant", "add", "bot", "echo")
	e.ok("", "grant", "add", "bot", "echob")
	var minted admin.MintedToken
	e.jsonOut(&minted, "token", "mint", "bot")

	forms := []string{
		secretBearer, secretBasic,
		base64.StdEncoding.EncodeToString([]byte("u:" + secretBasic)),
		base64.StdEncoding.EncodeToString([]byte(secretBasic)),
	}
	for _, tc := range []struct{ host, path string }{
		{"echo.example.com", "/v1/header"},
		{"echo.example.com", "/v1/json"},
		{"echo.example.com", "/v1/sse"},
		{"echo.example.com", "/v1/gzip"},
		{"echob.example.com", "/v1/header"},
		{"echob.example.com", "/v1/json"},
	} {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			raw, body := rawExchange(t, e, tc.host, tc.path, "Bearer "+minted.Value)
			for _, f := range forms {
				if bytes.Contains(raw, []byte(f)) || bytes.Contains(body, []byte(f)) {
					t.Fatalf("the agent received the secret (form %q):\n%s", f, raw)
				}
			}
			if !bytes.Contains(raw, []byte("[redacted by agw]")) {
				t.Errorf("no redaction marker in the response:\n%s", raw)
			}
			if tc.path == "/v1/gzip" && bytes.Contains(bytes.ToLower(raw), []byte("content-encoding")) {
				t.Errorf("a scrubbed gzip body kept its Content-Encoding:\n%s", raw)
			}
		})
	}
	var evs []string
	eventually(t, 5*time.Second, func() bool {
		evs = evs[:0]
		for _, ev := range auditEvents(t, e, "--agent", "bot") {
			if ev.Redactions > 0 {
				evs = append(evs, ev.Path)
			}
		}
		return len(evs) == 6
	})
	if len(evs) != 6 {
		t.Errorf("audit records with redactions: %v, want all 6 requests", evs)
	}
}
