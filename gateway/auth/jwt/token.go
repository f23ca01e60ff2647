package jwt

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
)

// maxTokenLen bounds what agw will parse. Real access tokens are 1-4 KiB;
// anything far larger is refused before any decoding or key lookup.
const maxTokenLen = 16 << 10

// onlyAlg is the one signature algorithm agw accepts. It is also the only one
// okta-jwt-verifier-golang accepts; checking it here, on the correctly
// decoded header, means an HS256 token keyed with the RSA public key (the
// classic algorithm-confusion forgery), ES256 or "none" never reach a key.
const onlyAlg = "RS256"

// LooksLikeJWT reports whether s has the shape of a compact JWS: three
// base64url parts whose first decodes to a JSON object. The signature part
// may be empty so that "alg": "none" tokens reach Verify and are audited as
// such rather than as unknown credentials.
func LooksLikeJWT(s string) bool {
	h, p, sig, ok := splitToken(s)
	if !ok || h == "" || p == "" || !isBase64URL(h) || !isBase64URL(p) || !isBase64URL(sig) {
		return false
	}
	hdr, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return false
	}
	return strings.HasPrefix(strings.TrimLeft(string(hdr), " \t\r\n"), "{")
}

// IssuerOf returns the token's unverified "iss" claim, without a trailing
// slash (the form store.IdP keeps issuers in), so the caller can pick which
// IdP to verify the token against. Nothing else may be read into it: the
// token is not verified yet.
func IssuerOf(token string) (string, bool) {
	if len(token) > maxTokenLen {
		return "", false
	}
	_, p, _, ok := splitToken(token)
	if !ok {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return "", false
	}
	var c struct {
		Iss any `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return "", false
	}
	iss, _ := c.Iss.(string)
	iss = strings.TrimSuffix(iss, "/")
	return iss, iss != ""
}

// splitToken splits a compact JWS into its three parts.
func splitToken(s string) (header, payload, sig string, ok bool) {
	header, rest, ok1 := strings.Cut(s, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return "", "", "", false
	}
	return header, payload, sig, true
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseHeader is agw's replacement for the library's header pre-check
// (jwtverifier.isValidJwt), which decodes the header with standard base64
// and so refuses every valid header whose base64url form contains '-' or
// '_'. It decodes base64url as RFC 7515 requires and enforces the same
// rules: alg RS256, a kid present. It returns the kid and the unverified
// payload (used only to refuse foreign issuers early).
func parseHeader(token string) (kid string, unverified []byte, err *Error) {
	if len(token) > maxTokenLen {
		return "", nil, newError(ReasonMalformed, "the token is too large to be a JWT", nil)
	}
	h, p, sig, ok := splitToken(token)
	if !ok || h == "" || p == "" {
		return "", nil, newError(ReasonMalformed, "the token is not a JWT (expected three dot-separated parts)", nil)
	}
	if !isBase64URL(h) || !isBase64URL(p) || !isBase64URL(sig) {
		return "", nil, newError(ReasonMalformed, "the token is not base64url-encoded", nil)
	}
	raw, derr := base64.RawURLEncoding.DecodeString(h)
	if derr != nil {
		return "", nil, newError(ReasonMalformed, "the token header is not valid base64url", nil)
	}
	var hdr struct {
		Alg  any             `json:"alg"`
		Kid  any             `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if json.Unmarshal(raw, &hdr) != nil {
		return "", nil, newError(ReasonMalformed, "the token header is not a JSON object", nil)
	}
	alg, _ := hdr.Alg.(string)
	if alg != onlyAlg {
		return "", nil, newError(ReasonAlgNotAllowed, "the token is signed with "+quoteShort(alg)+"; the gateway accepts only RS256", nil)
	}
	// No critical header extension is understood, so any is refused (RFC 7515 §4.1.11).
	if hdr.Crit != nil {
		return "", nil, newError(ReasonMalformed, "the token header lists critical extensions the gateway does not support", nil)
	}
	kid, _ = hdr.Kid.(string)
	if kid == "" {
		return "", nil, newError(ReasonMalformed, "the token header has no key id (kid)", nil)
	}
	if sig == "" {
		return "", nil, newError(ReasonBadSignature, "the token is not signed", nil)
	}
	unverified, derr = base64.RawURLEncoding.DecodeString(p)
	if derr != nil {
		return "", nil, newError(ReasonMalformed, "the token payload is not valid base64url", nil)
	}
	return kid, unverified, nil
}

// quoteShort quotes a value taken from a token for an error message,
// truncated so a hostile token cannot flood logs.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
