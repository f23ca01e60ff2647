package policy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalizePath: whatever the input, an accepted path is absolute,
// valid UTF-8, free of control characters, empty and dot segments, and
// normalising it again (escaped as a client would send it) gives itself.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/v1/models", "/v1/a%20b", "/v1/%2e%2e/x", "/v1/%C0%AE", "/v1/%EF%BC%8E", "//x", "/a;b=c", "/caf%C3%A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, why := NormalizePath(raw)
		if why != "" {
			if p != "" {
				t.Fatalf("refused %q but returned %q", raw, p)
			}
			return
		}
		if !strings.HasPrefix(p, "/") || !utf8.ValidString(p) {
			t.Fatalf("NormalizePath(%q) = %q: not an absolute UTF-8 path", raw, p)
		}
		if strings.Contains(p, "//") || strings.Contains(p, "\\") {
			t.Fatalf("NormalizePath(%q) = %q has an empty segment or backslash", raw, p)
		}
		for _, seg := range strings.Split(p[1:], "/") {
			name, _, _ := strings.Cut(seg, ";")
			if name == "." || name == ".." {
				t.Fatalf("NormalizePath(%q) = %q keeps a dot segment", raw, p)
			}
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("NormalizePath(%q) = %q keeps a control character", raw, p)
			}
		}
	})
}

// FuzzGlobMatch: "/**" matches every normalised path, a pattern without
// wildcards matches exactly itself, and nothing panics.
func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{{"/v1/**", "/v1/a/b"}, {"/v1/*/x", "/v1/a/x"}, {"/a*b", "/axxb"}, {"/**/x", "/x"}, {"/v1", "/v1/"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		got := GlobMatch(pattern, path)
		if p, why := NormalizePath(path); why == "" && !GlobMatch("/**", p) {
			t.Fatalf("/** does not match %q", p)
		}
		if !strings.Contains(pattern, "*") && strings.HasPrefix(pattern, "/") && strings.HasPrefix(path, "/") && got != (pattern == path) {
			t.Fatalf("GlobMatch(%q, %q) = %v without wildcards", pattern, path, got)
		}
	})
}

// FuzzOverrideFilter: after stripping, no header that any spelling of an
// override name could reach the backend remains, and the check does not
// depend on case.
func FuzzOverrideFilter(f *testing.F) {
	for _, s := range []string{"X-HTTP-Method-Override", "x_http_method", "X-Original-URL", "X-Api-Key", "x-rewrite-url"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if IsOverrideHeader(name) != IsOverrideHeader(strings.ToUpper(name)) {
			t.Fatalf("case changes the verdict for %q", name)
		}
		h := http.Header{name: {"DELETE"}, http.CanonicalHeaderKey(name): {"DELETE"}, "Keep": {"1"}}
		StripOverrideHeaders(h)
		for k := range h {
			if IsOverrideHeader(k) {
				t.Fatalf("%q survived", k)
			}
		}
		if h.Get("Keep") != "1" {
			t.Fatal("an unrelated header was removed")
		}
		if k := overrideParam(name + "=DELETE"); (k != "") != overrideParams[strings.ToLower(strings.TrimSpace(unescapeOr(name)))] {
			t.Fatalf("overrideParam(%q) = %q", name, k)
		}
	})
}

func unescapeOr(k string) string {
	k, _, _ = strings.Cut(k, "&")
	k, _, _ = strings.Cut(k, "=")
	if d, err := urlUnescape(k); err == nil {
		return d
	}
	return k
}

var urlUnescape = func(s string) (string, error) { return url.QueryUnescape(s) }
