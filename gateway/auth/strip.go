package auth

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// StripAgentCredential removes every copy of the agent's credential from an
// outgoing request: the credential locations the gateway reads (the
// backend's header, Authorization, the well-known key headers), then any
// other header value or query parameter that carries the credential or any
// other gateway token (custom headers, cookies), raw or encoded (see
// carriesCredential). It runs after hop-by-hop removal and before
// injection.
func StripAgentCredential(h http.Header, u *url.URL, b *store.Backend, cred string) {
	if b.Header != "" {
		delete(h, http.CanonicalHeaderKey(b.Header))
	}
	delete(h, "Authorization")
	for _, k := range KeyHeaders {
		delete(h, k)
	}
	f := newForms(cred)
	for k, vv := range h {
		for _, v := range vv {
			if f.carried(v) {
				delete(h, k)
				break
			}
		}
	}
	if b.Inject == store.InjectQuery || u.RawQuery != "" && f.carried(u.RawQuery) {
		u.RawQuery = dropQueryParams(u.RawQuery, b.QueryParam, f)
	}
}

// forms are the strings whose presence means a value carries the agent's
// credential: the credential, and its base64 encodings (standard and URL
// alphabets, at each of the three byte alignments inside a longer
// encoding).
type forms struct {
	cred  string
	b64   []string // built on first need
	built bool
}

func newForms(cred string) *forms { return &forms{cred: cred} }

// A value needs the base64 check only if it has a run of base64
// characters long enough to hold the credential's encoding: most headers
// have none.
func hasBase64Run(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isBase62(c) || c == '+' || c == '/' || c == '-' || c == '_' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// carried reports whether s holds the credential, or anything shaped like
// a gateway token, as it is or percent-encoded (nested up to three times,
// either case of hex), or the credential base64-encoded. A gateway token
// must never reach a backend, whichever agent's it is.
func (f *forms) carried(s string) bool {
	for range 4 {
		if f.cred != "" && strings.Contains(s, f.cred) || hasTokenShape(s) {
			return true
		}
		if !strings.Contains(s, "%") && !strings.Contains(s, "+") {
			break
		}
		d, err := url.QueryUnescape(s)
		if err != nil || d == s {
			break
		}
		s = d
	}
	// The middle of a base64 encoding of cred is at least this long.
	n := max(4, (len(f.cred)*4)/3-4)
	if f.cred == "" || len(s) < n || !hasBase64Run(s, n) {
		return false
	}
	if !f.built {
		f.b64, f.built = base64Forms(f.cred), true
	}
	for _, b := range f.b64 {
		if strings.Contains(s, b) {
			return true
		}
	}
	return false
}

// hasTokenShape reports whether s contains TokenPrefix followed by a token's
// worth of token characters.
func hasTokenShape(s string) bool {
	for {
		i := strings.Index(s, crypto.TokenPrefix)
		if i < 0 {
			return false
		}
		s = s[i+len(crypto.TokenPrefix):]
		n := 0
		for n < len(s) && isBase62(s[n]) {
			n++
		}
		if n >= crypto.TokenLen-len(crypto.TokenPrefix) {
			return true
		}
	}
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// base64Forms returns the parts of needle's base64 encodings that do not
// depend on the bytes around it: for each alphabet and each offset of 0, 1
// or 2 bytes within a 3-byte group, the characters that encode needle's
// bytes alone.
func base64Forms(needle string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for off := range 3 {
			full := enc.EncodeToString([]byte(strings.Repeat("\x00", off) + needle))
			start := (off*8 + 5) / 6 // the characters that mix in earlier bytes
			if off == 0 {
				start = 0
			}
			end := len(strings.TrimRight(full, "="))
			end -= end % 4 // the last group mixes in later bytes
			if end-start >= 4 {
				out = append(out, full[start:end])
			}
		}
	}
	return out
}

// dropQueryParams removes from a raw query every parameter named name
// (when name is not empty) and every one whose key or value carries the
// credential or a gateway token, keeping the others in order and byte for
// byte.
func dropQueryParams(raw, name string, f *forms) string {
	if raw == "" {
		return raw
	}
	var b strings.Builder
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue // unparsable pairs are dropped, as ReverseProxy does
		}
		if name != "" && dk == name {
			continue
		}
		if f.carried(dk) || f.carried(dv) || f.carried(pair) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String()
}
