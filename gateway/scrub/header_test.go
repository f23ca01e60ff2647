package scrub

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestHeader(t *testing.T) {
	t.Parallel()
	set := New([]byte(special))
	for _, tc := range []struct {
		name, key, value string
	}{
		{"raw", "X-Debug-Auth", "Bearer " + special},
		{"location query escape", "Location", "https://app.example.com/cb?key=" + url.QueryEscape(special)},
		{"location lower-case escape", "Location", "https://app.example.com/cb?key=" + lowerHex(url.QueryEscape(special))},
		{"location base64", "Location", "https://app.example.com/cb?state=" + base64.URLEncoding.EncodeToString([]byte("x"+special))},
		{"cookie", "Set-Cookie", "k=" + url.PathEscape(special) + "; Path=/"},
		{"hex", "X-Echo", fmt.Sprintf("%x", special)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"text/plain"}}
			h.Add(tc.key, "first")
			h.Add(tc.key, tc.value)
			if n := set.Header(h); n != 1 {
				t.Fatalf("%d values replaced", n)
			}
			if got := h.Values(tc.key); len(got) != 2 || got[0] != "first" || got[1] != Marker {
				t.Errorf("values %q", got)
			}
			if h.Get("Content-Type") != "text/plain" {
				t.Error("an innocent header changed")
			}
		})
	}
	h := http.Header{"X-" + canary: {"1"}}
	if n := New([]byte(canary)).Header(h); n != 1 || len(h) != 0 {
		t.Errorf("a header named by the secret: %d, %v", n, h)
	}
	var nilSet *Set
	if nilSet.Header(http.Header{"A": {special}}) != 0 {
		t.Error("nil Set redacted")
	}
}

func TestRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"gzip, deflate, br", "gzip, deflate"},
		{"br", ""},
		{"br, zstd", "zstd"},
		{"GZIP;q=0.5", "gzip"},
		{"x-gzip", "gzip"},
		{"gzip;q=0", ""},
		{"gzip;q=0.000, zstd", "zstd"},
		{"*", "gzip, deflate, zstd"},
		{"*, zstd;q=0", "gzip, deflate"},
		{"identity", ""},
	} {
		h := http.Header{"Range": {"bytes=0-3"}, "If-Range": {"x"}, "Sec-Websocket-Extensions": {"permessage-deflate"}}
		if tc.in != "" {
			h.Set("Accept-Encoding", tc.in)
		}
		Request(h)
		if got := h.Get("Accept-Encoding"); got != tc.want {
			t.Errorf("Accept-Encoding %q → %q, want %q", tc.in, got, tc.want)
		}
		if h.Get("Range") != "" || h.Get("If-Range") != "" || h.Get("Sec-Websocket-Extensions") != "" {
			t.Errorf("kept %v", h)
		}
	}
}

// Go's *url.Error prints the whole URL: with query injection that is the
// secret. The rendered error has none of it, in any form.
func TestError(t *testing.T) {
	t.Parallel()
	set := New([]byte(special))
	err := &url.Error{Op: "Get", URL: "https://api.example.com/v1/x?key=" + url.QueryEscape(special), Err: errors.New("dial tcp: connection refused")}
	got := set.Error(fmt.Errorf("forward: %w", err))
	if got != "Get https://api.example.com/v1/x?[query redacted]: dial tcp: connection refused" {
		t.Errorf("Error = %q", got)
	}
	got = set.Error(errors.New("backend said: token " + base64.StdEncoding.EncodeToString([]byte(special)) + " is bad"))
	if strings.Contains(got, base64.StdEncoding.EncodeToString([]byte(special))) || !strings.Contains(got, Marker) {
		t.Errorf("Error = %q", got)
	}
	if got := URLs(`Get "https://u:p@h/x?key=abc" failed`); got != `Get "https://h/x?[query redacted]" failed` {
		t.Errorf("URLs = %q", got)
	}
	if got := URL("https://u:p@h/x#frag"); got != "https://h/x?[query redacted]" {
		t.Errorf("URL = %q", got)
	}
}

func TestPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"/v1/chat", "/v1/chat"},
		{"/v1/x?key=secret", "/v1/x"},
		{"/t/agw_abcDEF123-x/y", "/t/agw_[redacted]/y"},
		{"/t/agw%5Fabc/y", "/t/agw_[redacted]/y"},
		{"/t/AGW%5fabc/y", "/t/AGW%5fabc/y"},
		{"/t/ag%77_abc", "/t/agw_[redacted]"},
		{"/" + strings.Repeat("a", 2000), "/" + strings.Repeat("a", 1023) + "…"},
	} {
		if got := Path(tc.in, "agw_"); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The error of a real client call to a URL with the secret in its query.
func TestErrorFromHTTPClient(t *testing.T) {
	t.Parallel()
	set := New([]byte("s3cr3t/+="))
	_, err := http.Get("http://127.0.0.1:1/x?key=s3cr3t%2F%2B%3D&a=b")
	got := set.Error(err)
	if strings.Contains(got, "s3cr3t") || !strings.Contains(got, "http://127.0.0.1:1/x?[query redacted]") {
		t.Errorf("Error = %q", got)
	}
}
