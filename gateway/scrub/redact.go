package scrub

import (
	"errors"
	"net/url"
	"strings"
)

// Error renders err for the agent, the log and the audit trail without any
// credential in it. Go's *url.Error prints the whole request URL, query
// included, and with query injection the query holds the backend secret:
// the URL is reduced to scheme, host and path, any other URL in the text
// loses its query and user info, and every form of s's secrets is cut out
// as a last resort.
func (s *Set) Error(err error) string {
	if err == nil {
		return ""
	}
	var msg string
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Op + " " + URL(ue.URL) + ": " + URLs(ue.Err.Error())
	} else {
		msg = URLs(err.Error())
	}
	out, _ := s.String(msg)
	return out
}

// URL keeps the scheme, host and path of a URL and drops its user info,
// query and fragment.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return URLs(raw)
	}
	out := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		out += "?[query redacted]"
	}
	return out
}

// URLs cuts the query (and user info) out of every URL-looking run in free
// text: from "?" or "#" to the next space or quote after a "://".
func URLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, " \t\n\"'<>")
		if end < 0 {
			end = len(s)
		}
		tok := s[:end]
		if at := strings.LastIndexByte(tok, '@'); at >= 0 && !strings.ContainsAny(tok[:at], "/?") {
			tok = tok[at+1:] // user info
		}
		if q := strings.IndexAny(tok, "?#"); q >= 0 {
			tok = tok[:q] + "?[query redacted]"
		}
		b.WriteString(tok)
		s = s[end:]
	}
}

// maxPath bounds the path kept in an audit record.
const maxPath = 1024

// Path is a request path as the audit trail records it: no query, at most
// 1024 bytes, and every run that starts with tokenPrefix (a gateway token,
// in the clear or percent-encoded) cut to tokenPrefix+"[redacted]".
func Path(raw, tokenPrefix string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if len(raw) > maxPath {
		raw = raw[:maxPath] + "…"
	}
	if tokenPrefix == "" {
		return raw
	}
	// A token may arrive percent-encoded (agw%5F...): look for the prefix
	// in a decoded copy too, and cut from the encoded position.
	var b strings.Builder
	for {
		i, n := indexTokenPrefix(raw, tokenPrefix)
		if i < 0 {
			b.WriteString(raw)
			return b.String()
		}
		b.WriteString(raw[:i])
		b.WriteString(tokenPrefix + "[redacted]")
		raw = raw[i+n:]
		j := 0
		for j < len(raw) && (isTokenChar(raw[j]) || raw[j] == '%' && j+2 < len(raw)) {
			if raw[j] == '%' {
				j += 3
				continue
			}
			j++
		}
		raw = raw[j:]
	}
}

// indexTokenPrefix finds prefix in s, byte for byte or with any of its
// bytes percent-encoded (either hex case), and returns where it starts
// and how many bytes of s it spans.
func indexTokenPrefix(s, prefix string) (int, int) {
	for i := 0; i < len(s); i++ {
		j, k := i, 0
		for k < len(prefix) && j < len(s) {
			if s[j] == prefix[k] {
				j++
				k++
				continue
			}
			if s[j] == '%' && j+2 < len(s) {
				if v, ok := unhex2(s[j+1], s[j+2]); ok && v == prefix[k] {
					j += 3
					k++
					continue
				}
			}
			break
		}
		if k == len(prefix) {
			return i, j - i
		}
	}
	return -1, 0
}

func unhex2(a, b byte) (byte, bool) {
	h := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	x, ok1 := h(a)
	y, ok2 := h(b)
	return x<<4 | y, ok1 && ok2
}

func isTokenChar(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-'
}
