package auth

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

func mintToken(t *testing.T) string {
	t.Helper()
	tok, _, _, err := crypto.MintToken()
	if err != nil {
		t.Fatal(err)
	}
	return string(tok.Reveal())
}

// Every copy of a gateway token leaves the request, however it is encoded
// and wherever it sits; the rest of the request is kept byte for byte.
func TestStripAgentCredentialEncodings(t *testing.T) {
	t.Parallel()
	cred := mintToken(t)
	other := mintToken(t) // another agent's token, smuggled along
	b := &store.Backend{Name: "api", Inject: store.InjectBearer}
	pct := strings.ReplaceAll(cred, "_", "%5F")
	cases := []struct{ name, header, query string }{
		{"raw header", "X-Custom: " + cred, ""},
		{"cookie", "Cookie: session=abc; t=" + cred, ""},
		{"percent header upper", "X-Custom: " + pct, ""},
		{"percent header lower", "X-Custom: " + strings.ReplaceAll(cred, "_", "%5f"), ""},
		{"double percent", "X-Custom: " + strings.ReplaceAll(cred, "_", "%255F"), ""},
		{"base64 std", "X-Custom: " + base64.StdEncoding.EncodeToString([]byte(cred)), ""},
		{"base64 url offset 1", "X-Custom: " + base64.URLEncoding.EncodeToString([]byte("x"+cred+"yz")), ""},
		{"base64 offset 2", "X-Custom: " + base64.RawStdEncoding.EncodeToString([]byte("ab"+cred)), ""},
		{"another token", "X-Other: " + other, ""},
		{"query raw", "", "t=" + cred},
		{"query percent", "", "t=" + pct},
		{"query key", "", pct + "=1"},
		{"query another token", "", "x=" + url.QueryEscape(other)},
		{"query plus encoded", "", "t=" + url.QueryEscape(cred)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Keep": {"this"}}
			if tc.header != "" {
				k, v, _ := strings.Cut(tc.header, ": ")
				h.Set(k, v)
			}
			u := &url.URL{Path: "/v1/x", RawQuery: "q=1"}
			if tc.query != "" {
				u.RawQuery = "q=1&" + tc.query + "&z=2"
			}
			StripAgentCredential(h, u, b, cred)
			if h.Get("Keep") != "this" {
				t.Errorf("an unrelated header was removed: %v", h)
			}
			for k, vv := range h {
				for _, v := range vv {
					if strings.Contains(v, "agw") || strings.Contains(v, "YWd3") {
						t.Errorf("header %s kept %q", k, v)
					}
				}
			}
			want := "q=1"
			if tc.query != "" {
				want = "q=1&z=2"
			}
			if u.RawQuery != want {
				t.Errorf("query = %q, want %q", u.RawQuery, want)
			}
		})
	}
}

// Ordinary values are not mistaken for tokens.
func TestStripKeepsOrdinaryValues(t *testing.T) {
	t.Parallel()
	cred := mintToken(t)
	h := http.Header{
		"Accept":       {"application/json"},
		"X-Request-Id": {"agw_short"},
		"User-Agent":   {"curl/8.5.0"},
		"X-Data":       {base64.StdEncoding.EncodeToString([]byte("an ordinary payload of some length"))},
	}
	u := &url.URL{RawQuery: "q=berlin&page=2&s=a%20b"}
	StripAgentCredential(h, u, &store.Backend{Inject: store.InjectBearer}, cred)
	if len(h) != 4 || u.RawQuery != "q=berlin&page=2&s=a%20b" {
		t.Errorf("ordinary values changed: %v %q", h, u.RawQuery)
	}
}
