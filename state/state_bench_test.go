package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// stateWithTokens returns a view holding n tokens of one agent, and one
// minted token (value and id) among them.
func stateWithTokens(b *testing.B, n int) (*State, crypto.Secret, string) {
	b.Helper()
	s := New()
	s.PutAgent(store.Agent{Name: "bot"})
	now := time.Now()
	for i := range n - 1 {
		s.PutToken(store.Token{ID: fmt.Sprintf("id%010d", i), Agent: "bot", Hash: []byte{byte(i)}, CreatedAt: now})
	}
	value, id, hash, err := crypto.MintToken()
	if err != nil {
		b.Fatal(err)
	}
	s.PutToken(store.Token{ID: id, Agent: "bot", Hash: hash, CreatedAt: now})
	return s, value, id
}

// BenchmarkTokenLookup checks that identifying a gateway token does not
// grow with the number of tokens stored: parse, look up, verify the hash.
func BenchmarkTokenLookup(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			s, value, _ := stateWithTokens(b, n)
			raw := value.Reveal()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				id, err := crypto.ParseToken(string(raw))
				if err != nil {
					b.Fatal(err)
				}
				t := s.Token(id)
				if t == nil || !crypto.VerifyToken(raw, t.Hash) {
					b.Fatal("token not found")
				}
			}
		})
	}
}

// BenchmarkStateTokenWrite checks that publishing a minted or revoked token
// to the in-memory view does not grow with the number of tokens stored.
func BenchmarkStateTokenWrite(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			s, _, id := stateWithTokens(b, n)
			t := *s.Token(id)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				t.RevokedAt = time.Now()
				s.PutToken(t)
			}
		})
	}
}
