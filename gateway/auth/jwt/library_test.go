package jwt

import (
	"strings"
	"testing"

	jwtverifier "github.com/okta/okta-jwt-verifier-golang/v2"
)

// TestLibraryLimits pins down the behaviour of okta-jwt-verifier-golang
// v2.1.1 that this package works around, so an upgrade that fixes it is
// noticed and the workaround can be reconsidered.
func TestLibraryLimits(t *testing.T) {
	keys := testKeys()
	clk := newFakeClock() // real time: the library reads time.Now
	tests := []struct {
		name    string
		omitAlg bool
		token   func(p *testIdP) string
		wantErr string
	}{
		{
			name: "header pre-check refuses base64url '-' and '_'",
			token: func(p *testIdP) string {
				kid, hdr := headerWith(t)
				p.setKeys(key(kid, keys[0]))
				return mintHeader(t, keys[0], hdr, claimsFor(p, clk.Now()))
			},
			wantErr: "base64",
		},
		{
			name:    "keys without alg are not used",
			omitAlg: true,
			token: func(p *testIdP) string {
				p.setKeys(key("k1", keys[0]))
				return mint(t, keys[0], "k1", claimsFor(p, clk.Now()))
			},
			wantErr: "could not verify",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestIdP(t, "")
			p.set(func(p *testIdP) { p.omitAlg = tt.omitAlg })
			tok := tt.token(p)
			lib, err := (&jwtverifier.JwtVerifier{
				Issuer:           p.issuer,
				ClaimsToValidate: map[string]string{"aud": "api://agw"},
			}).New()
			if err != nil {
				t.Fatal(err)
			}
			_, err = lib.VerifyAccessToken(tok)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("library: err = %v, want one containing %q", err, tt.wantErr)
			}
			if _, err := newTestVerifier(clk).Verify(t.Context(), p.store("sub"), tok); err != nil {
				t.Errorf("agw: %v", err)
			}
		})
	}
}
