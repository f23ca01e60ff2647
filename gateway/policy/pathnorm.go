package policy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Path normalisation.
//
// Grants match glob patterns against the request path, so the gateway and
// the backend must agree on what the path is. Rather than guess how a
// backend decodes and cleans paths (servers disagree on "%2F", "\", ";" and
// dot segments), the gateway refuses every path that has more than one
// plausible reading and forwards the rest byte for byte. It never rewrites
// a path: a rewritten path is one the agent did not ask for.
//
// Refused (400 agw_bad_request):
//   - a target that is not an absolute path (authority-form, "*")
//   - control characters, NUL and backslash, raw or percent-encoded
//   - encoded "/" (%2F), "." (%2E) and "%" (%25, double encoding)
//   - "." and ".." segments, also with ";params" ("..;/" is ".." to some servers)
//   - empty segments ("//"): many servers merge slashes, so "/v1//admin"
//     may reach "/v1/admin" or "/admin" depending on the stack. A single
//     trailing slash is an ordinary (empty) last segment and is allowed.
//   - malformed percent escapes
//
// What remains is decoded once (%20 → space) into the normalised path the
// grant patterns see.

// RequestPath returns the raw (still escaped) path of the request target,
// without the query.
func RequestPath(r *http.Request) string {
	uri := r.RequestURI
	if strings.HasPrefix(uri, "/") {
		if i := strings.IndexByte(uri, '?'); i >= 0 {
			return uri[:i]
		}
		return uri
	}
	if r.URL != nil && r.URL.Host != "" {
		// absolute-form: the host was checked against SNI already.
		return r.URL.EscapedPath()
	}
	return uri
}

// NormalizePath checks a raw request path and returns the decoded path for
// policy matching, or the reason it is refused.
func NormalizePath(raw string) (string, string) {
	if raw == "" || raw[0] != '/' {
		return "", "request target must be an absolute path starting with /"
	}
	escaped := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "", "path contains a control character"
		case c == '\\':
			return "", "path contains a backslash"
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", "path contains a malformed percent escape"
			}
			v := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			switch {
			case v == '/':
				return "", "path contains an encoded slash (%2F)"
			case v == '\\':
				return "", "path contains an encoded backslash (%5C)"
			case v == '.':
				return "", "path contains an encoded dot (%2E)"
			case v == '%':
				return "", "path contains an encoded percent sign (%25, double encoding)"
			case v < 0x20 || v == 0x7f:
				return "", "path contains an encoded control character"
			}
			escaped = true
			i += 2
		}
	}
	rest := raw[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" && more {
			return "", "path contains an empty segment (//)"
		}
		name, _, _ := strings.Cut(seg, ";")
		if name == "." || name == ".." {
			return "", "path contains a dot segment (. or ..)"
		}
		if !more {
			break
		}
		rest = tail
	}
	p := raw
	if escaped {
		var err error
		if p, err = url.PathUnescape(raw); err != nil {
			return "", "path contains a malformed percent escape"
		}
	}
	if why := checkUnicode(p); why != "" {
		return "", why
	}
	return p, ""
}

// checkUnicode refuses decoded paths that servers may read differently
// from the gateway: invalid UTF-8 (overlong forms like %C0%AE decode to '.'
// in lax decoders), format characters (bidi controls and zero-width marks
// that change how a path reads), and compatibility characters whose
// normalised form is ASCII (a full-width dot or solidus becomes '.' or '/',
// full-width letters become a granted prefix, after NFKC normalisation on
// the backend).
func checkUnicode(p string) string {
	ascii := true
	for i := 0; i < len(p); i++ {
		if p[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return ""
	}
	if !utf8.ValidString(p) {
		return "path is not valid UTF-8 (overlong or truncated encodings are read differently by different servers)"
	}
	for _, r := range p {
		if r < utf8.RuneSelf {
			continue
		}
		if unicode.Is(unicode.Cf, r) || unicode.IsControl(r) {
			return fmt.Sprintf("path contains the invisible or direction-changing character U+%04X", r)
		}
		if nf := norm.NFKC.String(string(r)); nf != string(r) {
			for i := 0; i < len(nf); i++ {
				if nf[i] < utf8.RuneSelf {
					return fmt.Sprintf("path contains U+%04X, which servers may normalise to %q", r, nf)
				}
			}
		}
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
