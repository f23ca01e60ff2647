package auth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// FuzzCredentialParsing: whatever the Authorization, key and custom header
// values, every credential the gateway reads is a non-empty trimmed
// string, and after stripping no header and no query parameter still
// carries it.
func FuzzCredentialParsing(f *testing.F) {
	for _, s := range [][3]string{
		{"Bearer agw_abc", "", ""}, {"Basic Z2l0OmFnd19hYmM=", "", ""}, {"Token x", "k", "q=1"},
		{"", "agw_abc", "key=agw%5Fabc"}, {"Basic !!!", "", ""}, {"bearer   spaced  ", "", "a=b&c"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, authz, key, rawQuery string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{RawQuery: rawQuery}}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if key != "" {
			r.Header.Set("X-Api-Key", key)
		}
		b := &store.Backend{Inject: store.InjectQuery, QueryParam: "key"}
		var buf [4]string
		for _, c := range credentialCandidates(r, b, buf[:]) {
			if c == "" || c != strings.TrimSpace(c) {
				t.Fatalf("candidate %q is empty or untrimmed", c)
			}
			h := r.Header.Clone()
			h.Set("X-Custom", "pre"+c+"post")
			u := *r.URL
			StripAgentCredential(h, &u, b, c)
			for k, vv := range h {
				for _, v := range vv {
					if strings.Contains(v, c) {
						t.Fatalf("header %s kept the credential %q", k, c)
					}
				}
			}
			if len(c) > 3 && strings.Contains(u.RawQuery, c) {
				t.Fatalf("query %q kept the credential %q", u.RawQuery, c)
			}
		}
	})
}

// FuzzDropQueryParams: dropping keeps the other pairs in order and byte
// for byte, and keeps no pair carrying the credential or a token.
func FuzzDropQueryParams(f *testing.F) {
	tok := "agw_" + strings.Repeat("a", crypto.TokenLen-4)
	for _, s := range []string{"a=1&key=x&b=2", "t=" + tok, "t=" + strings.ReplaceAll(tok, "_", "%5F"), "&&=&%zz", "key"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := dropQueryParams(raw, "key", newForms(tok))
		in := strings.Split(raw, "&")
		i := 0
		for _, p := range strings.Split(out, "&") {
			if out == "" {
				break
			}
			for i < len(in) && in[i] != p {
				i++
			}
			if i == len(in) {
				t.Fatalf("dropQueryParams(%q) = %q: pair %q is not from the input, in order", raw, out, p)
			}
			i++
			if newForms(tok).carried(p) {
				t.Fatalf("kept %q, which carries the token", p)
			}
			if k, _, _ := strings.Cut(p, "="); k == "key" {
				t.Fatalf("kept the injected parameter in %q", out)
			}
		}
	})
}
