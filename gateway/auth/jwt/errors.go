package jwt

import (
	"errors"
	"net/http"
)

// Reasons are the stable strings a rejection is audited under
// (store.AuditEvent.Reason). Scripts and dashboards match on them; add new
// ones freely, rename none.
const (
	ReasonMalformed      = "jwt_malformed"        // not a compact JWS agw can parse
	ReasonAlgNotAllowed  = "jwt_alg_not_allowed"  // header alg is not RS256
	ReasonUnknownKID     = "jwt_unknown_kid"      // no key of the issuer has the token's kid
	ReasonBadSignature   = "jwt_bad_signature"    // the signature does not verify
	ReasonWrongIssuer    = "jwt_wrong_issuer"     // iss is not the IdP's issuer
	ReasonWrongAudience  = "jwt_wrong_audience"   // aud does not name the gateway
	ReasonExpired        = "jwt_expired"          // exp has passed (beyond the leeway)
	ReasonNotYetValid    = "jwt_not_yet_valid"    // nbf is in the future (beyond the leeway)
	ReasonIssuedInFuture = "jwt_issued_in_future" // iat is in the future (beyond the leeway)
	ReasonMissingClaim   = "jwt_missing_claim"    // a required claim is absent or empty
	ReasonIdPUnavailable = "idp_unavailable"      // no usable key: discovery or JWKS could not be fetched
)

// ErrIdPUnavailable matches (errors.Is) a verification that failed closed
// because the issuer's discovery document or keys could not be obtained and
// none were cached. The proxy answers 503: the token may be fine.
var ErrIdPUnavailable = errors.New("identity provider unavailable")

// Error is a refused token. Reason is stable and goes to the audit record;
// Status is the HTTP status the proxy should answer with; Public is a message
// the agent may read. None of them ever contains the token.
type Error struct {
	Reason string
	Status int
	msg    string // for the agent: what is wrong and what to do
	err    error  // underlying cause, for logs only
}

func newError(reason, msg string, cause error) *Error {
	st := http.StatusUnauthorized
	if reason == ReasonIdPUnavailable {
		st = http.StatusServiceUnavailable
	}
	return &Error{Reason: reason, Status: st, msg: msg, err: cause}
}

// Error describes the refusal with its cause, for logs.
func (e *Error) Error() string {
	if e.err != nil {
		return "jwt: " + e.msg + ": " + e.err.Error()
	}
	return "jwt: " + e.msg
}

// Public is the refusal without internal detail, fit to show the agent.
func (e *Error) Public() string { return e.msg }

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

// Is reports whether target is ErrIdPUnavailable and this is that case.
func (e *Error) Is(target error) bool {
	return target == ErrIdPUnavailable && e.Reason == ReasonIdPUnavailable
}
