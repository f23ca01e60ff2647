package store

import (
	"fmt"
	"strings"
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
