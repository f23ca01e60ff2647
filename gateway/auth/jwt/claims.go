package jwt

import (
	"math"
	"strings"
	"time"

	"github.com/agw-dev/agw/store"
)

// Claims is what a verified token established, for identification and audit.
type Claims struct {
	Issuer    string    // iss, as the token has it
	Subject   string    // the value of the IdP's identifying claim (store.IdP.Claim)
	JTI       string    // jti, if present
	TenantID  string    // tid (Entra ID), if present
	ExpiresAt time.Time // exp
}

// maxNumericDate is the last second of year 9999; later values are treated
// as malformed rather than risk overflow in time arithmetic.
const maxNumericDate = 253402300799

// checkClaims applies agw's claim rules to a payload whose signature has been
// verified. All time checks use the verifier's clock and leeway: the
// library's own checks read time.Now and cannot be driven by the gateway's
// clock, and it does not check nbf at all.
func checkClaims(idp *store.IdP, c map[string]any, now time.Time, leeway time.Duration) (*Claims, *Error) {
	iss, ok := c["iss"].(string)
	if !ok || iss == "" {
		return nil, missing("iss")
	}
	if !sameIssuer(iss, idp.Issuer) {
		return nil, wrongIssuer(iss, idp.Issuer)
	}

	switch aud := c["aud"].(type) {
	case nil:
		return nil, missing("aud")
	case string:
		if aud != idp.Audience {
			return nil, wrongAudience(aud, idp.Audience)
		}
	case []any:
		found := false
		for _, a := range aud {
			if s, ok := a.(string); ok && s == idp.Audience {
				found = true
				break
			}
		}
		if !found {
			return nil, wrongAudience("", idp.Audience)
		}
	default:
		return nil, newError(ReasonMalformed, "the token's aud claim is neither a string nor a list of strings", nil)
	}

	exp, err := numericDate(c, "exp", true)
	if err != nil {
		return nil, err
	}
	if !now.Before(exp.Add(leeway)) {
		return nil, newError(ReasonExpired, "the token expired at "+exp.UTC().Format(time.RFC3339)+"; get a fresh one from the IdP", nil)
	}
	nbf, err := numericDate(c, "nbf", false)
	if err != nil {
		return nil, err
	}
	if !nbf.IsZero() && nbf.After(now.Add(leeway)) {
		return nil, newError(ReasonNotYetValid, "the token is not valid before "+nbf.UTC().Format(time.RFC3339)+"; check the clocks of the IdP and the gateway", nil)
	}
	iat, err := numericDate(c, "iat", true)
	if err != nil {
		return nil, err
	}
	if iat.After(now.Add(leeway)) {
		return nil, newError(ReasonIssuedInFuture, "the token was issued in the future ("+iat.UTC().Format(time.RFC3339)+"); check the clocks of the IdP and the gateway", nil)
	}

	claim := idp.Claim
	if claim == "" {
		claim = "sub"
	}
	sub, _ := c[claim].(string)
	if sub == "" {
		return nil, missing(claim)
	}
	jti, _ := c["jti"].(string)
	tid, _ := c["tid"].(string)
	return &Claims{Issuer: iss, Subject: sub, JTI: jti, TenantID: tid, ExpiresAt: exp}, nil
}

// sameIssuer compares issuer identifiers ignoring one trailing slash: store
// normalises issuers without it, while some IdPs (Entra ID v1 tokens,
// Auth0) put it in iss.
func sameIssuer(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

// numericDate reads a JWT NumericDate claim. A required claim that is absent
// is ReasonMissingClaim; an optional one gives the zero time.
func numericDate(c map[string]any, name string, required bool) (time.Time, *Error) {
	v, present := c[name]
	if !present || v == nil {
		if required {
			return time.Time{}, missing(name)
		}
		return time.Time{}, nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, newError(ReasonMalformed, "the token's "+name+" claim is not a valid NumericDate", nil)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

func missing(name string) *Error {
	return newError(ReasonMissingClaim, "the token has no "+name+" claim, which the gateway requires", nil)
}

func wrongIssuer(got, want string) *Error {
	return newError(ReasonWrongIssuer, "the token was issued by "+quoteShort(got)+", not by this IdP ("+quoteShort(want)+")", nil)
}

func wrongAudience(got, want string) *Error {
	msg := "the token is not meant for the gateway: its audience must be " + quoteShort(want)
	if got != "" {
		msg += ", not " + quoteShort(got)
	}
	return newError(ReasonWrongAudience, msg+"; request a token for the gateway, never one for the backend itself", nil)
}
