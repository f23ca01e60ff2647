package scrub

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// minDerived is the shortest encoded form kept. An encoded copy shorter
// than this (from a secret of a few bytes) would match ordinary text too
// often; the raw secret is always kept whatever its length.
const minDerived = 6

// Forms lists every encoded form of secret that the scrubber redacts, the
// raw bytes first. The list is what an echoing backend plausibly writes:
// percent-encoding (both hex cases, '+' or %20 for space, the escape sets
// of Go, JavaScript (encodeURI and encodeURIComponent) and RFC 3986, and every byte encoded), JSON string
// escapes (Go's with \u003c/\u003e/\u0026, no HTML escaping, "\/", every
// character as \uXXXX in both hex cases), base64 std and url with and
// without padding, standalone and at each of the three alignments inside a
// longer base64 stream, base64 escaped for JSON ("\/") or a URL (%2F...),
// hex in both cases and HTML entities (named, decimal, hex). It returns nil
// for an empty secret.
func Forms(secret []byte) []string {
	if len(secret) == 0 {
		return nil
	}
	s := string(secret)
	var f formSet
	f.addRaw(s)

	for _, up := range []bool{true, false} {
		f.add(percent(s, queryKeep, true, up))
		f.add(percent(s, queryKeep, false, up))
		f.add(percent(s, pathKeep, false, up))
		f.add(percent(s, uriComponentKeep, false, up))
		f.add(percent(s, uriKeep, false, up))
		f.add(percent(s, unreservedKeep, false, up))
		f.add(percent(s, unreservedKeep, true, up))
		f.add(percent(s, nil, false, up))
	}

	for _, st := range jsonStyles {
		f.add(jsonEscape(s, st))
	}

	for _, st := range htmlStyles {
		f.add(htmlEscape(s, st))
	}

	f.add(hex.EncodeToString(secret))
	f.add(strings.ToUpper(hex.EncodeToString(secret)))

	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for _, b := range base64Forms(secret, enc) {
			f.add(b)
			if strings.ContainsAny(b, "/") {
				f.add(strings.ReplaceAll(b, "/", `\/`))
			}
			if strings.ContainsAny(b, "+/=") {
				f.add(percent(b, unreservedKeep, false, true))
				f.add(percent(b, unreservedKeep, false, false))
			}
		}
	}
	return f.list
}

// formSet collects distinct forms in order.
type formSet struct {
	list []string
	seen map[string]bool
}

func (f *formSet) addRaw(s string) {
	f.seen = map[string]bool{s: true}
	f.list = append(f.list, s)
}

func (f *formSet) add(s string) {
	if len(s) < minDerived || f.seen[s] {
		return
	}
	f.seen[s] = true
	f.list = append(f.list, s)
}

// Escape sets: the bytes an encoder leaves as they are (besides ALPHA and
// DIGIT, which every one of them keeps). nil encodes every byte.
var (
	unreservedKeep   = []byte("-._~")
	uriComponentKeep = []byte("-._~!'()*")
	// url.QueryEscape keeps these (and writes space as '+').
	queryKeep = []byte("-._~")
	// url.PathEscape keeps these.
	pathKeep = []byte("-._~$&+,;=:@")
	// JavaScript's encodeURI keeps these.
	uriKeep = []byte("-._~!'()*;,/?:@&=+$#")
)

// percent encodes s, keeping alphanumerics and keep (every byte when keep is
// nil), space as '+' when plus, hex digits upper case when up.
func percent(s string, keep []byte, plus, up bool) string {
	digits := "0123456789abcdef"
	if up {
		digits = "0123456789ABCDEF"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case keep != nil && (isAlnum(c) || slices.Contains(keep, c)):
			b.WriteByte(c)
		case c == ' ' && plus:
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&15])
		}
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// jsonStyle is one way a JSON encoder escapes a string.
type jsonStyle struct {
	slash bool // "/" as "\/" (PHP, some Java)
	html  bool // <, >, & as \u003c... (Go's default)
	all   bool // every character as \uXXXX
	ascii bool // non-ASCII as \uXXXX (Python's ensure_ascii, Java)
	up    bool // upper-case hex digits in \u escapes
}

var jsonStyles = func() []jsonStyle {
	var out []jsonStyle
	for _, up := range []bool{false, true} {
		out = append(out, jsonStyle{all: true, up: up})
		for _, slash := range []bool{false, true} {
			for _, html := range []bool{false, true} {
				for _, ascii := range []bool{false, true} {
					out = append(out, jsonStyle{slash: slash, html: html, ascii: ascii, up: up})
				}
			}
		}
	}
	return out
}()

func jsonEscape(s string, st jsonStyle) string {
	var b strings.Builder
	u := func(r rune) {
		h := strconv.FormatInt(int64(r), 16)
		if st.up {
			h = strings.ToUpper(h)
		}
		b.WriteString(`\u`)
		b.WriteString(strings.Repeat("0", 4-len(h)))
		b.WriteString(h)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			// Invalid UTF-8: encoders write U+FFFD.
			r = utf8.RuneError
		}
		i += size
		switch {
		case st.all || (st.ascii && r >= utf8.RuneSelf) || (st.html && (r == '<' || r == '>' || r == '&')) || r == 0x2028 || r == 0x2029:
			if r > 0xFFFF {
				r1, r2 := utf16.EncodeRune(r)
				u(r1)
				u(r2)
			} else {
				u(r)
			}
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '/' && st.slash:
			b.WriteString(`\/`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			u(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// htmlStyle is one way an HTML encoder writes a string.
type htmlStyle int

const (
	htmlGo      htmlStyle = iota // html.EscapeString: &amp; &#39; &lt; &gt; &#34;
	htmlNamed                    // &amp; &apos; &lt; &gt; &quot;
	htmlDecimal                  // every character as &#N;
	htmlHexLow                   // every character as &#xh;
	htmlHexUp                    // every character as &#XH;
)

var htmlStyles = []htmlStyle{htmlGo, htmlNamed, htmlDecimal, htmlHexLow, htmlHexUp}

func htmlEscape(s string, st htmlStyle) string {
	var b strings.Builder
	for _, r := range s {
		switch st {
		case htmlDecimal:
			b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
		case htmlHexLow:
			b.WriteString("&#x" + strconv.FormatInt(int64(r), 16) + ";")
		case htmlHexUp:
			b.WriteString("&#X" + strings.ToUpper(strconv.FormatInt(int64(r), 16)) + ";")
		default:
			named := st == htmlNamed
			switch r {
			case '&':
				b.WriteString("&amp;")
			case '<':
				b.WriteString("&lt;")
			case '>':
				b.WriteString("&gt;")
			case '"':
				if named {
					b.WriteString("&quot;")
				} else {
					b.WriteString("&#34;")
				}
			case '\'':
				if named {
					b.WriteString("&apos;")
				} else {
					b.WriteString("&#39;")
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// base64Forms returns the base64 of secret standing alone (padded and
// unpadded) and the characters that the secret alone determines when it
// sits at offset 0, 1 or 2 (mod 3) of a longer encoded stream.
func base64Forms(secret []byte, enc *base64.Encoding) []string {
	out := []string{enc.EncodeToString(secret), enc.WithPadding(base64.NoPadding).EncodeToString(secret)}
	raw := enc.WithPadding(base64.NoPadding)
	for k := range 3 {
		buf := make([]byte, k+len(secret))
		copy(buf[k:], secret)
		e := raw.EncodeToString(buf)
		// Character j carries bits [6j, 6j+6) of the stream: it depends on
		// the secret alone when those bits lie within bytes [k, k+n).
		start := (8*k + 5) / 6
		end := 8 * (k + len(secret)) / 6
		if end > start {
			out = append(out, e[start:end])
		}
	}
	return out
}
