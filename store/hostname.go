package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RequestHost normalises the host a request or TLS handshake names
// (a Host header, a URL host, an SNI): it lower-cases it, drops a port and one trailing dot.
// It returns "" for an empty name.
func RequestHost(h string) string {
	if h == "" {
		return ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// PrintableName bounds and quotes an attacker-supplied name before it goes
// into a log line or audit record.
func PrintableName(s string) string {
	if len(s) > 253 {
		s = s[:253] + "…"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c >= 0x7f || c == '"' {
			if !utf8.ValidString(s) {
				s = strings.ToValidUTF8(s, "?")
			}
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

// Printable escapes what would change how a line of text reads on a
// terminal: control characters, format characters (bidi overrides and
// isolates, zero-width marks) and invalid UTF-8 become \uXXXX or \xNN;
// everything else, other scripts included, is kept.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f || unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
