package auth

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/agw-dev/agw/gateway/auth/jwt"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// Audit reasons for IdP tokens that jwt does not decide itself. Like
// jwt's, they are stable: add new ones freely, rename none.
const (
	ReasonUnknownIssuer  = "jwt_unknown_issuer"  // no registered IdP has the token's issuer
	ReasonUnknownSubject = "jwt_unknown_subject" // the token verified, but no agent is bound to its claim value
)

// JWTVerifier is the gateway's IdPVerifier: jwt's signature and claim
// checks against the IdPs registered in the in-memory state, then the
// claim value mapped to an agent. It holds no copy of the configuration, so
// an IdP or agent added, changed or removed counts from the next request.
type JWTVerifier struct {
	state *state.State
	v     *jwt.Verifier

	verified, rejected, unavailable atomic.Uint64
}

var _ IdPVerifier = (*JWTVerifier)(nil)

// NewJWTVerifier verifies against the IdPs in st with v, which the daemon
// keeps for its lifetime (it caches keys and verified tokens).
func NewJWTVerifier(st *state.State, v *jwt.Verifier) *JWTVerifier {
	return &JWTVerifier{state: st, v: v}
}

// jwtRefusal is a token refused by the gateway's own rules (no IdP for its
// issuer, no agent for its subject). Like *jwt.Error it carries a stable
// audit reason, an HTTP status and a message for the agent, and never the
// token.
type jwtRefusal struct {
	Reason string
	Status int
	msg    string
}

func (e *jwtRefusal) Error() string  { return "jwt: " + e.msg }
func (e *jwtRefusal) Public() string { return e.msg }

// VerifyJWT picks the registered IdPs whose issuer the token names (several
// may share an issuer with different audiences or claims) and verifies the
// token against each in name order. The first IdP that verifies it and binds
// its claim value to an agent wins. When none does, the error is the most
// telling one: an IdP that verified the token but knows no agent for it
// (jwt_unknown_subject), else any refusal other than a wrong audience (the
// audience tells which IdP entry the token was meant for), else the last.
//
// On failure the identity names the IdP tried, and, only once the token
// verified, its subject and jti: claims of an unverified token are the
// caller's word and stay out of the audit trail.
func (iv *JWTVerifier) VerifyJWT(ctx context.Context, _ *store.Backend, raw string) (IdPIdentity, error) {
	id, err := iv.verify(ctx, raw)
	var je *jwt.Error
	switch {
	case err == nil:
		iv.verified.Add(1)
	case errors.As(err, &je) && je.Status == http.StatusServiceUnavailable:
		iv.unavailable.Add(1)
	default:
		iv.rejected.Add(1)
	}
	return id, err
}

func (iv *JWTVerifier) verify(ctx context.Context, raw string) (IdPIdentity, error) {
	iss, ok := jwt.IssuerOf(raw)
	if !ok {
		return IdPIdentity{}, &jwtRefusal{Reason: jwt.ReasonMalformed, Status: http.StatusUnauthorized,
			msg: "the token has no readable iss claim"}
	}
	var (
		tried   bool
		best    IdPIdentity
		bestErr error
		telling bool         // bestErr is more than a wrong audience
		unknown *IdPIdentity // the first IdP that verified the token but binds no agent to it
	)
	for _, p := range iv.state.ListIdPs() {
		if p.Issuer != iss {
			continue
		}
		tried = true
		claims, err := iv.v.Verify(ctx, p, raw)
		if err != nil {
			if ctx.Err() != nil {
				return IdPIdentity{IdP: p.Name}, err
			}
			var je *jwt.Error
			wrongAud := errors.As(err, &je) && je.Reason == jwt.ReasonWrongAudience
			if bestErr == nil || (!telling && !wrongAud) {
				best, bestErr, telling = IdPIdentity{IdP: p.Name}, err, !wrongAud
			}
			continue
		}
		id := IdPIdentity{IdP: p.Name, Subject: claims.Subject, JTI: claims.JTI}
		if a := iv.state.AgentBySubject(p.Name, claims.Subject); a != nil {
			id.Agent = a.Name
			return id, nil
		}
		if unknown == nil {
			unknown = &id
		}
	}
	switch {
	case !tried:
		return IdPIdentity{}, &jwtRefusal{Reason: ReasonUnknownIssuer, Status: http.StatusUnauthorized,
			msg: "the token's issuer is not a registered IdP; ask the gateway operator to add it with `agw idp add`"}
	case unknown != nil:
		return *unknown, &jwtRefusal{Reason: ReasonUnknownSubject, Status: http.StatusUnauthorized,
			msg: "the token is valid but identifies no agent of IdP " + unknown.IdP + "; ask the gateway operator to register it with `agw agent add NAME --idp " + unknown.IdP + " --subject VALUE`"}
	default:
		return best, bestErr
	}
}

// IdPStats counts IdP token verifications since start, for metrics.
type IdPStats struct {
	Verified    uint64 // tokens that identified an agent
	Rejected    uint64 // refused: 401 (bad token, unknown issuer or subject)
	Unavailable uint64 // failed closed: 503, no usable key from the IdP
}

// Stats returns the JWT verification counters; zero for a nil verifier.
func (iv *JWTVerifier) Stats() IdPStats {
	if iv == nil {
		return IdPStats{}
	}
	return IdPStats{Verified: iv.verified.Load(), Rejected: iv.rejected.Load(), Unavailable: iv.unavailable.Load()}
}
