package scrub

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
)

const canary = "sk-canary-7f3a9c1e5b2d4f60QQ"

// special has every character some encoder treats specially.
const special = `s3cr3t/+=&x <"'>\~!*()é`

// chunks is a body that arrives in the given reads.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	if len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	return n, nil
}

func chunked(parts ...string) *chunks {
	c := &chunks{}
	for _, p := range parts {
		c.parts = append(c.parts, []byte(p))
	}
	return c
}

func scrubAll(t *testing.T, s *Set, src io.Reader) (string, int) {
	t.Helper()
	r := s.NewReader(src)
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), r.Redactions()
}

// encodings are the forms an echoing backend produces, written the way
// real encoders write them (not by Forms), so a gap in Forms shows.
func encodings(secret string) map[string]string {
	goJSON, _ := json.Marshal(secret)
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(secret)
	every := func(f func(rune) string) string {
		var b strings.Builder
		for _, r := range secret {
			b.WriteString(f(r))
		}
		return b.String()
	}
	b := []byte(secret)
	return map[string]string{
		"raw":                    secret,
		"query escape":           url.QueryEscape(secret),
		"query escape lower":     lowerHex(url.QueryEscape(secret)),
		"path escape":            url.PathEscape(secret),
		"path escape lower":      lowerHex(url.PathEscape(secret)),
		"percent every byte":     every(func(r rune) string { return pctAll(string(r), "%02X") }),
		"percent every byte low": every(func(r rune) string { return pctAll(string(r), "%02x") }),
		"json go":                string(goJSON[1 : len(goJSON)-1]),
		"json no html escape":    strings.TrimSuffix(plain.String(), "\n")[1 : len(strings.TrimSuffix(plain.String(), "\n"))-1],
		"json slash escaped":     strings.ReplaceAll(string(goJSON[1:len(goJSON)-1]), "/", `\/`),
		"json every char \\u":    every(func(r rune) string { return jsonU(r, "%04x") }),
		"json every char \\U":    every(func(r rune) string { return jsonU(r, "%04X") }),
		"html escape":            html.EscapeString(secret),
		"html decimal":           every(func(r rune) string { return "&#" + itoa(int(r)) + ";" }),
		"html hex":               every(func(r rune) string { return "&#x" + hex.EncodeToString([]byte{byte(r >> 8), byte(r)})[2:] + ";" }),
		"hex":                    hex.EncodeToString(b),
		"HEX":                    strings.ToUpper(hex.EncodeToString(b)),
		"base64 std":             base64.StdEncoding.EncodeToString(b),
		"base64 std raw":         base64.RawStdEncoding.EncodeToString(b),
		"base64 url":             base64.URLEncoding.EncodeToString(b),
		"base64 url raw":         base64.RawURLEncoding.EncodeToString(b),
		"base64 in query":        url.QueryEscape(base64.StdEncoding.EncodeToString(b)),
	}
}

func lowerHex(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b.WriteString(strings.ToLower(s[i : i+3]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func pctAll(s, f string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString("%" + strings.TrimSpace(sprintf(f, s[i])))
	}
	return b.String()
}

func jsonU(r rune, f string) string {
	if r > 0xffff {
		return ""
	}
	return `\u` + sprintf(f, r)
}

// TestEveryForm: each encoding of the secret, inside text, split across
// two writes at every byte, is replaced by one marker and nothing of it
// remains.
func TestEveryForm(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{canary, special} {
		set := New([]byte(secret))
		for name, form := range encodings(secret) {
			t.Run(name, func(t *testing.T) {
				if name == "json every char \\u" || name == "json every char \\U" {
					if strings.ContainsFunc(secret, func(r rune) bool { return r > 0xffff }) {
						t.Skip("astral runes")
					}
				}
				body := "before " + form + " after"
				for i := 0; i <= len(body); i++ {
					out, n := scrubAll(t, set, chunked(body[:i], body[i:]))
					if out != "before "+Marker+" after" || n != 1 {
						t.Fatalf("%s of %q split at %d: got %q (%d)", name, secret, i, out, n)
					}
				}
			})
		}
	}
}

// A secret inside a longer base64 stream, at each of the three alignments,
// padded or not, in both alphabets, is found.
func TestBase64Alignments(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		for pre := range 6 {
			for post := range 6 {
				data := []byte(strings.Repeat("p", pre) + canary + strings.Repeat("q", post))
				e := enc.EncodeToString(data)
				if !set.Contains([]byte(e)) {
					t.Errorf("base64 %q of %d+secret+%d not found", e, pre, post)
				}
				if out, _ := set.String(e); strings.Contains(out, enc.EncodeToString([]byte(canary))[4:12]) {
					t.Errorf("base64 %q left a piece: %q", e, out)
				}
			}
		}
	}
}

// Basic credentials: the base64 of user:secret is caught whole.
func TestBasicCredential(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary), []byte("user:"+canary))
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + canary))
	out, n := set.String("Authorization: Basic " + basic)
	if out != "Authorization: Basic "+Marker || n != 1 {
		t.Errorf("got %q (%d)", out, n)
	}
}

func TestNilAndEmpty(t *testing.T) {
	t.Parallel()
	if New() != nil || New(nil, []byte{}) != nil {
		t.Fatal("no secret built a Set")
	}
	var s *Set
	if out, n := s.String(canary); out != canary || n != 0 {
		t.Error("nil Set changed text")
	}
	out, n := scrubAll(t, s, strings.NewReader(canary))
	if out != canary || n != 0 {
		t.Error("nil Set reader changed text")
	}
}

func TestStreamTable(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	r := Marker
	for _, tc := range []struct {
		name  string
		parts []string
		want  string
		n     int
	}{
		{"none", []string{`{"ok":true}`}, `{"ok":true}`, 0},
		{"empty", nil, "", 0},
		{"whole", []string{canary}, r, 1},
		{"start", []string{canary + " tail"}, r + " tail", 1},
		{"end", []string{"head " + canary}, "head " + r, 1},
		{"many", []string{canary + canary + "," + canary}, r + r + "," + r, 3},
		{"many across reads", []string{canary[:5], canary[5:] + "x" + canary[:20], canary[20:]}, r + "x" + r, 2},
		{"short prefix at end is released", []string{"x " + canary[:3]}, "x " + canary[:3], 0},
		{"long prefix at end is redacted", []string{"x " + canary[:10]}, "x " + r, 1},
		{"one byte withheld", []string{"x " + canary[:len(canary)-1]}, "x " + r, 1},
		{"prefix then mismatch", []string{"x " + canary[:10], "Z" + canary[11:]}, "x " + canary[:10] + "Z" + canary[11:], 0},
		{"overlapping prefix", []string{"sk-sk-canary-", canary[len("sk-canary-"):]}, "sk-" + r, 1},
		{"byte by byte", strings.Split("a"+canary+"b", ""), "a" + r + "b", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, n := scrubAll(t, set, chunked(tc.parts...))
			if out != tc.want || n != tc.n {
				t.Errorf("got %q (%d), want %q (%d)", out, n, tc.want, tc.n)
			}
		})
	}
}

// Overlapping forms (the secret inside its Basic pair, a self-overlapping
// secret) become one marker, and a run of matches never grows the held
// tail past MaxHeld.
func TestOverlapsAndBound(t *testing.T) {
	t.Parallel()
	set := New([]byte("abcabc"))
	st := set.NewStream()
	var out []byte
	for range 10000 {
		out = st.Write(out, []byte("abc"))
		if len(st.held) > set.MaxHeld() {
			t.Fatalf("held %d bytes, bound %d", len(st.held), set.MaxHeld())
		}
	}
	out = st.Flush(out, true)
	if string(out) != Marker || st.Redactions() != 1 {
		t.Errorf("self-overlapping run: %q (%d)", out, st.Redactions())
	}
}

func TestSmallBuffers(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	body := strings.Repeat("x", 5000) + canary + strings.Repeat("y", 5000) + canary
	r := set.NewReader(iotest.HalfReader(strings.NewReader(body)))
	out, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(body, canary, Marker); string(out) != want || r.Redactions() != 2 {
		t.Errorf("one byte at a time: %d redactions, equal %v", r.Redactions(), string(out) == want)
	}
}

// A read error that cuts the body drops what was held rather than
// releasing a partial match.
func TestReaderErrorDropsHeld(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	r := set.NewReader(io.MultiReader(strings.NewReader("a "+canary[:12]), iotest.ErrReader(io.ErrUnexpectedEOF)))
	out, err := io.ReadAll(r)
	if err != io.ErrUnexpectedEOF || string(out) != "a " {
		t.Errorf("got %q, %v", out, err)
	}
}
