package jwt

import (
	"strings"
	"testing"
)

// FuzzJWTHeader: the cheap pre-checks on a presented JWT never panic, a
// string without three dot-separated parts is never taken for a JWT, and
// an issuer read from one is bounded (JSON decoding may turn an invalid
// byte into a 3-byte replacement character, never more).
func FuzzJWTHeader(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0.c2ln")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJ.eyJ.")
	f.Fuzz(func(t *testing.T, s string) {
		looks := LooksLikeJWT(s)
		if looks && strings.Count(s, ".") != 2 {
			t.Fatalf("LooksLikeJWT(%q) with %d dots", s, strings.Count(s, "."))
		}
		if iss, ok := IssuerOf(s); ok && len(iss) > 3*len(s) {
			t.Fatalf("IssuerOf(%q) = %q, longer than the token", s, iss)
		}
	})
}
