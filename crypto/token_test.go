package crypto

import (
	"bytes"
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
	"testing"
)

func mustToken(t testing.TB) (string, string, []byte) {
	t.Helper()
	tok, id, hash, err := MintToken()
	if err != nil {
		t.Fatal(err)
	}
	return string(tok.Reveal()), id, hash
}

// refChecksum computes the checksum independently of putChecksum: big.Int
// prints base62 as 0-9a-zA-Z, so swapping the case of letters gives the
// token alphabet 0-9A-Za-z.
func refChecksum(body string) string {
	s := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(body)))).Text(62)
	s = strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, s)
	return strings.Repeat("0", 6-len(s)) + s
}

func TestMintToken(t *testing.T) {
	t.Parallel()
	tok, id, hash := mustToken(t)
	if len(tok) != 65 || TokenLen != 65 {
		t.Fatalf("token is %d characters, want 65", len(tok))
	}
	if !strings.HasPrefix(tok, "agw_") || !LooksLikeToken(tok) {
		t.Fatal("token lacks the agw_ prefix")
	}
	if strings.ContainsAny(tok[4:], "-_") {
		t.Fatal("token body contains - or _")
	}
	if got := tok[59:]; got != refChecksum(tok[:59]) {
		t.Fatalf("checksum %q, want %q", got, refChecksum(tok[:59]))
	}
	if id != tok[4:16] || !ValidTokenID(id) {
		t.Fatalf("id %q is not characters 5-16 of the token", id)
	}
	got, err := ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got != id {
		t.Fatalf("ParseToken id = %q, want %q", got, id)
	}
	if !bytes.Equal(hash, HashToken([]byte(tok))) || len(hash) != 32 {
		t.Fatal("MintToken hash differs from HashToken")
	}
}

func TestParseTokenGolden(t *testing.T) {
	t.Parallel()
	// A fixed token pins the format: changing the alphabet, the layout or
	// the checksum breaks every token already handed out.
	body := "agw_" + "0123456789AB" + "CDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
	tok := body + refChecksum(body)
	id, err := ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id != "0123456789AB" {
		t.Fatalf("id = %q", id)
	}
	const golden = "agw_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs2cnUE8" // checksum cross-checked with Python zlib.crc32
	if tok != golden {
		t.Fatalf("token = %s, want %s", tok, golden)
	}
}

func TestVerifyToken(t *testing.T) {
	t.Parallel()
	tok, _, hash := mustToken(t)
	other, _, otherHash := mustToken(t)
	tests := []struct {
		name  string
		token string
		hash  []byte
		want  bool
	}{
		{"own hash", tok, hash, true},
		{"other token", other, hash, false},
		{"other hash", tok, otherHash, false},
		{"truncated hash", tok, hash[:31], false},
		{"empty hash", tok, nil, false},
		{"one char changed", tok[:20] + string(tok[20]^1) + tok[21:], hash, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := VerifyToken([]byte(tt.token), tt.hash); got != tt.want {
				t.Fatalf("VerifyToken = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestParseTokenSingleChange changes each character of a token to every
// other base62 character: the checksum must catch all of them.
func TestParseTokenSingleChange(t *testing.T) {
	t.Parallel()
	tok, _, _ := mustToken(t)
	tests := []struct {
		part     string
		from, to int
	}{
		{"id", 4, 16},
		{"secret", 16, 59},
		{"checksum", 59, 65},
	}
	for _, tt := range tests {
		t.Run(tt.part, func(t *testing.T) {
			t.Parallel()
			b := []byte(tok)
			for i := tt.from; i < tt.to; i++ {
				orig := b[i]
				for j := 0; j < len(base62); j++ {
					if base62[j] == orig {
						continue
					}
					b[i] = base62[j]
					_, err := ParseToken(string(b))
					if !errors.Is(err, ErrMalformedToken) {
						t.Fatalf("changing position %d to %q: error %v, want ErrMalformedToken", i, base62[j], err)
					}
					if !strings.Contains(err.Error(), "checksum") {
						t.Fatalf("changing position %d: error %q does not blame the checksum", i, err)
					}
				}
				b[i] = orig
			}
		})
	}
}

func TestParseTokenMalformed(t *testing.T) {
	t.Parallel()
	tok, _, _ := mustToken(t)
	with := func(i int, c byte) string {
		b := []byte(tok)
		b[i] = c
		return string(b)
	}
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"empty", "", "agw_"},
		{"no prefix", tok[4:], "agw_"},
		{"other prefix", "ghp_" + tok[4:], "agw_"},
		{"upper-case prefix", "AGW_" + tok[4:], "agw_"},
		{"jwt", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "agw_"},
		{"bearer kept", "Bearer " + tok, "agw_"},
		{"one short", tok[:64], "64 bytes"},
		{"one long", tok + "0", "66 bytes"},
		{"only prefix", "agw_", "4 bytes"},
		{"trailing newline", tok + "\n", "66 bytes"},
		{"dash in id", with(5, '-'), "id has a character"},
		{"underscore in secret", with(30, '_'), "secret has a character"},
		{"space in secret", with(16, ' '), "secret has a character"},
		{"plus in checksum", with(64, '+'), "checksum has a character"},
		{"non-ascii byte", with(40, 0xff), "secret has a character"},
		{"nul byte", with(4, 0), "id has a character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := ParseToken(tt.input)
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("error = %v, want ErrMalformedToken", err)
			}
			if id != "" {
				t.Fatalf("returned id %q with an error", id)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q does not say %q", msg, tt.want)
			}
			assertNoTokenEcho(t, msg, tt.input)
		})
	}
}

// assertNoTokenEcho fails if msg contains any 8-character run of input
// after the prefix: an error must not carry even part of a token.
func assertNoTokenEcho(t *testing.T, msg, input string) {
	t.Helper()
	body := strings.TrimPrefix(input, TokenPrefix)
	for i := 0; i+8 <= len(body); i++ {
		if strings.Contains(msg, body[i:i+8]) {
			t.Fatalf("error %q echoes part of the token (%q)", msg, body[i:i+8])
		}
	}
}

func TestMintTokenUnique(t *testing.T) {
	t.Parallel()
	const n = 1000
	tokens := make(map[string]bool, n)
	ids := make(map[string]bool, n)
	for range n {
		tok, id, _ := mustToken(t)
		if tokens[tok] || ids[id] {
			t.Fatalf("duplicate token or id after %d mints", len(tokens))
		}
		if _, err := ParseToken(tok); err != nil {
			t.Fatalf("minted token does not parse: %v", err)
		}
		tokens[tok], ids[id] = true, true
	}
}

func TestMintTokenUsesWholeAlphabet(t *testing.T) {
	t.Parallel()
	// 200 tokens give 11000 random characters; a generator that skipped part
	// of the alphabet (a modulo or slicing mistake) would leave some unseen.
	seen := map[byte]bool{}
	for range 200 {
		tok, _, _ := mustToken(t)
		for i := 4; i < 59; i++ {
			seen[tok[i]] = true
		}
	}
	if len(seen) != 62 {
		t.Fatalf("saw %d distinct characters in token bodies, want 62", len(seen))
	}
}

func TestLooksLikeToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"agw_x", true},
		{"agw_", true},
		{"AGW_x", false},
		{"eyJhbGciOiJIUzI1NiJ9.e30.sig", false},
		{"", false},
		{" agw_x", false},
	}
	for _, tt := range tests {
		if got := LooksLikeToken(tt.in); got != tt.want {
			t.Errorf("LooksLikeToken(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidTokenID(t *testing.T) {
	t.Parallel()
	tok, id, _ := mustToken(t)
	tests := []struct {
		in   string
		want bool
	}{
		{id, true},
		{tok, false},
		{id[:11], false},
		{id[:11] + "-", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidTokenID(tt.in); got != tt.want {
			t.Errorf("ValidTokenID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func BenchmarkMintToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := MintToken(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseToken(b *testing.B) {
	tok, _, _ := mustToken(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseToken(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	tok, _, hash := mustToken(b)
	tb := []byte(tok)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyToken(tb, hash) {
			b.Fatal("VerifyToken failed")
		}
	}
}

func TestChecksumMatchesStdlib(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "a", "agw_", "123456789", strings.Repeat("agw_Zz9", 40)} {
		if got, want := checksum(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("checksum(%q) = %#x, want %#x", s, got, want)
		}
	}
}
