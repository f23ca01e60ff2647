package jwt

import (
	"context"
	"testing"
)

func benchSetup(b *testing.B) (*Verifier, string, *testIdP) {
	keys := testKeys()
	clk := newFakeClock()
	p := newTestIdP(b, "")
	p.setKeys(key("k1", keys[0]))
	v := newTestVerifier(clk)
	tok := mint(b, keys[0], "k1", claimsFor(p, clk.Now()))
	if _, err := v.Verify(context.Background(), p.store("sub"), tok); err != nil {
		b.Fatal(err)
	}
	return v, tok, p
}

// BenchmarkVerifyCached is the hot path: a token already verified.
func BenchmarkVerifyCached(b *testing.B) {
	v, tok, p := benchSetup(b)
	idp := p.store("sub")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, idp, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached is a first sighting: parse, RSA-2048 verify,
// claims, with keys already fetched.
func BenchmarkVerifyUncached(b *testing.B) {
	v, tok, p := benchSetup(b)
	v.verified = newVerifiedCache(0)
	idp := p.store("sub")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, idp, tok); err != nil {
			b.Fatal(err)
		}
	}
}
