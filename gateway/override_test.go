package gateway

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/agw-dev/agw/gateway/deny"
)

// Every method, path and host override header is removed before the request
// reaches the backend, over HTTP/1.1 and HTTP/2, and the backend sees the
// method and path policy decided on.
func TestOverrideHeadersNeverReachBackend(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	headers := []string{
		"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-Method",
		"X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Override-URL",
		"X-Envoy-Original-Path", "X-Forwarded-Uri", "X-Forwarded-Path", "X-Forwarded-Prefix",
		"X-Request-Uri", "X-Host", "X-Forwarded-Server", "X-Original-Host",
		"X_HTTP_METHOD_OVERRIDE", "x-http-method-override",
	}
	for _, proto := range []struct {
		name  string
		http2 bool
	}{{"http1", false}, {"http2", true}} {
		for _, name := range headers {
			t.Run(proto.name+"/"+name, func(t *testing.T) {
				req, _ := http.NewRequest("POST", "https://"+testHost+"/v1/items", strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer "+h.token)
				req.Header[name] = []string{"DELETE"}
				if strings.Contains(name, "URL") || strings.Contains(name, "URI") || strings.Contains(name, "Path") || strings.Contains(name, "Prefix") {
					req.Header[name] = []string{"/admin/everything"}
				}
				res, err := h.client(proto.http2).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("status %d: %s", res.StatusCode, body)
				}
				s := h.lastSeen()
				if s.Method != "POST" || s.Path != "/v1/items" {
					t.Errorf("backend saw %s %s, want POST /v1/items", s.Method, s.Path)
				}
				for k := range s.Header {
					if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), strings.ReplaceAll(name, "_", "-")) {
						t.Errorf("backend saw %s: %q", k, s.Header[k])
					}
				}
			})
		}
	}
}

// A method override in the query or in a form body is refused: the
// backend never sees the request.
func TestOverrideParamsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("title", "x")
	_ = mw.WriteField("_method", "DELETE")
	_ = mw.Close()
	for _, tc := range []struct {
		name, path, ctype, body string
	}{
		{"query", "/v1/items?_method=DELETE", "", ""},
		{"query encoded", "/v1/items?%5Fmethod=DELETE", "", ""},
		{"query other name", "/v1/items?X-HTTP-Method-Override=PUT", "", ""},
		{"form", "/v1/items", "application/x-www-form-urlencoded", "a=1&_method=DELETE"},
		{"form upper", "/v1/items", "application/x-www-form-urlencoded; charset=utf-8", "_METHOD=delete"},
		{"multipart", "/v1/items", mw.FormDataContentType(), mp.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.seenCount()
			req, _ := http.NewRequest("POST", "https://"+testHost+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+h.token)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			res, body := h.do(req)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if e := agwError(t, body); e.Type != deny.BadRequest || !strings.Contains(e.Message, "method override") {
				t.Errorf("error %+v", e)
			}
			// A multipart body may have reached the backend in part (the
			// request abandoned mid-body), but never the override field.
			if n := h.seenCount(); n != before {
				if s := h.lastSeen(); tc.name != "multipart" || bytes.Contains(s.Body, []byte("_method")) {
					t.Errorf("backend received the request: %s %q", s.Method, s.Body)
				}
			}
		})
	}
	// An ordinary form passes whole.
	req, _ := http.NewRequest("POST", "https://"+testHost+"/v1/items", strings.NewReader("a=1&method=fast"))
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, body := h.do(req); res.StatusCode != 200 {
		t.Fatalf("ordinary form: %d %s", res.StatusCode, body)
	}
	if s := h.lastSeen(); string(s.Body) != "a=1&method=fast" {
		t.Errorf("backend got body %q", s.Body)
	}
}
