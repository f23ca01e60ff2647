package crypto

import (
	"strings"
	"testing"
)

// FuzzParseToken: a token that parses has the gateway's shape and its id
// is a valid token id; nothing else parses, and nothing panics.
func FuzzParseToken(f *testing.F) {
	tok, _, _, _ := MintToken()
	f.Add(string(tok.Reveal()))
	f.Add("agw_")
	f.Add("agw_" + strings.Repeat("z", TokenLen))
	f.Add("sk-live-123")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseToken(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(s, TokenPrefix) || len(s) != TokenLen || !ValidTokenID(id) || !strings.HasPrefix(s[len(TokenPrefix):], id) {
			t.Fatalf("ParseToken(%q) accepted, id %q", s, id)
		}
	})
}
