package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/gateway/jwtauth"
	"github.com/agw-dev/agw/store"
)

// keyHeaders are the headers where SDKs commonly put an API key, beside the
// backend's own credential header and Authorization. The gateway reads the
// agent's credential from any of them and strips all of them from every
// forwarded request, so a key sent where the backend does not look for it
// still never leaves the gateway:
//
//	X-Api-Key       Anthropic, many REST APIs
//	Api-Key         Azure OpenAI, Azure AI Search
//	X-Goog-Api-Key  Google APIs (Gemini)
//	X-Api-Token     various
//	X-Auth-Token    OpenStack, various
//	Private-Token   GitLab
var keyHeaders = []string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key", "X-Api-Token", "X-Auth-Token", "Private-Token"}

// identity is who made a request.
type identity struct {
	agent      *store.Agent
	authMethod string // "token" or "jwt"
	tokenID    string
	idp        string
	subject    string
	jti        string
	credential string // the agent's credential as presented, for stripping; never logged
}

// IdPVerifier verifies a JWT an agent presents for a backend and names the
// agent it identifies. It is the seam where identity-provider support plugs
// in; with none configured, JWTs are refused.
type IdPVerifier interface {
	// VerifyJWT returns the identified agent's name with the IdP, subject
	// and token id (jti) to audit, or an error the agent may read (it must
	// not contain the token).
	VerifyJWT(ctx context.Context, b *store.Backend, raw string) (IdPIdentity, error)
}

// IdPIdentity is what an IdPVerifier established.
type IdPIdentity struct {
	Agent, IdP, Subject, JTI string
}

// credentialCandidates collects every credential value the request carries
// in the places the gateway reads, in a fixed order. Empty values are
// skipped. It does not look at query parameters unless the backend uses
// query injection.
func credentialCandidates(r *http.Request, b *store.Backend, buf []string) []string {
	out := buf[:0]
	add := func(v string) {
		v = strings.TrimSpace(v)
		if v != "" {
			out = append(out, v)
		}
	}
	hdrName := ""
	if b.Inject == store.InjectHeader && b.Header != "" {
		hdrName = http.CanonicalHeaderKey(b.Header)
		if hdrName != "Authorization" {
			for _, v := range r.Header[hdrName] {
				if p, ok := cutPrefixFold(v, b.Prefix); ok {
					v = p
				}
				add(v)
			}
		}
	}
	for _, v := range r.Header["Authorization"] {
		if p, ok := cutPrefixFold(v, b.Prefix); ok && hdrName == "Authorization" && b.Prefix != "" {
			add(p)
		} else {
			add(authorizationCredential(v))
		}
	}
	for _, h := range keyHeaders {
		if h == hdrName {
			continue
		}
		for _, v := range r.Header[h] {
			add(v)
		}
	}
	if b.Inject == store.InjectQuery && b.QueryParam != "" && r.URL.RawQuery != "" {
		forEachQueryParam(r.URL.RawQuery, func(k, v string) {
			if k == b.QueryParam {
				add(v)
			}
		})
	}
	return out
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// authorizationCredential extracts the credential from an Authorization
// value: the token of "Bearer", the password of "Basic" (git over HTTPS
// sends base64(user:token); a gateway token sent as the user name with an
// empty password is accepted too), the parameter of any other scheme.
func authorizationCredential(v string) string {
	v = strings.TrimSpace(v)
	scheme, param, ok := strings.Cut(v, " ")
	if !ok {
		return v
	}
	param = strings.TrimSpace(param)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return param
	case strings.EqualFold(scheme, "Basic"):
		dec, err := base64.StdEncoding.DecodeString(param)
		if err != nil {
			return param // not base64: still the agent's credential to refuse and strip
		}
		user, pass, _ := strings.Cut(string(dec), ":")
		if pass == "" && crypto.LooksLikeToken(user) {
			return user
		}
		return pass
	default:
		return param
	}
}

// forEachQueryParam calls fn with every decoded key and value of a raw
// query, in order, skipping pairs that do not decode.
func forEachQueryParam(raw string, fn func(k, v string)) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		fn(k, v)
	}
}

// identify finds the agent behind a request. It never puts the credential
// into a denial.
func (p *proxy) identify(ctx context.Context, r *http.Request, b *store.Backend, now time.Time) (identity, *denial) {
	var buf [4]string
	cands := credentialCandidates(r, b, buf[:])
	if len(cands) == 0 {
		return identity{}, deny(http.StatusUnauthorized, errUnauthenticated,
			"no credential: send your agw gateway token as the API key (Authorization: Bearer, the backend's key header or Basic-auth password)")
	}
	cred := cands[0]
	for _, c := range cands[1:] {
		if c != cred {
			return identity{}, deny(http.StatusUnauthorized, errUnauthenticated,
				"ambiguous credentials: the request carries different credentials in different places; send only the gateway token")
		}
	}
	switch {
	case crypto.LooksLikeToken(cred):
		return p.identifyToken(cred, now)
	case jwtauth.LooksLikeJWT(cred):
		if p.idp == nil {
			return identity{}, deny(http.StatusUnauthorized, errUnauthenticated,
				"IdP tokens are not configured for this backend")
		}
		return p.identifyJWT(ctx, b, cred)
	default:
		return identity{}, deny(http.StatusUnauthorized, errUnauthenticated,
			"the credential is not an agw gateway token; use a token minted with `agw token mint`, never a backend key")
	}
}

func (p *proxy) identifyToken(tok string, now time.Time) (identity, *denial) {
	id, err := crypto.ParseToken(tok)
	if err != nil {
		return identity{}, deny(http.StatusUnauthorized, errUnauthenticated, "malformed gateway token")
	}
	t := p.state.token(id)
	if t == nil || t.Agent == "" || !crypto.VerifyToken([]byte(tok), t.Hash) {
		return identity{}, deny(http.StatusUnauthorized, errUnauthenticated, "unknown gateway token")
	}
	// Only someone holding the whole token gets told why it no longer works.
	if !t.RevokedAt.IsZero() {
		return identity{tokenID: id}, deny(http.StatusUnauthorized, errUnauthenticated, "gateway token "+id+" is revoked")
	}
	if !t.Active(now) {
		return identity{tokenID: id}, deny(http.StatusUnauthorized, errUnauthenticated, "gateway token "+id+" has expired")
	}
	a := p.state.agent(t.Agent)
	ident := identity{authMethod: "token", tokenID: id, credential: tok}
	if a == nil {
		return ident, deny(http.StatusUnauthorized, errUnauthenticated, "gateway token "+id+" belongs to no agent")
	}
	ident.agent = a
	if a.Disabled {
		return ident, policyDenial("agent disabled")
	}
	return ident, nil
}

func (p *proxy) identifyJWT(ctx context.Context, b *store.Backend, raw string) (identity, *denial) {
	res, err := p.idp.VerifyJWT(ctx, b, raw)
	ident := identity{idp: res.IdP, subject: res.Subject, jti: res.JTI, credential: raw}
	if res.Subject != "" {
		// The token verified (the verifier names a subject only then),
		// even if it identifies no agent: not a failed authentication.
		ident.authMethod = "jwt"
	}
	if err != nil {
		return ident, jwtDenial(ctx, err)
	}
	a := p.state.agent(res.Agent)
	if a == nil {
		return ident, deny(http.StatusUnauthorized, errUnauthenticated, "the IdP token identifies no agent")
	}
	ident.agent = a
	if a.Disabled {
		return ident, policyDenial("agent disabled")
	}
	return ident, nil
}

// jwtDenial answers a refused IdP token with the status the verifier chose
// (401, or 503 when the IdP's keys cannot be obtained: the token may be
// fine, so the agent is told to retry rather than to get another), its
// stable reason in the audit record and its public message to the agent.
func jwtDenial(ctx context.Context, err error) *denial {
	d := &denial{status: http.StatusUnauthorized, typ: errUnauthenticated, reason: "jwt_rejected"}
	var je *jwtauth.Error
	var jr *jwtRefusal
	switch {
	case errors.As(err, &je):
		d.status, d.reason, d.msg = je.Status, je.Reason, je.Public()
	case errors.As(err, &jr):
		d.status, d.reason, d.msg = jr.Status, jr.Reason, jr.Public()
	case ctx.Err() != nil:
		d.reason, d.msg = "jwt_verification_cancelled", "the request ended before its IdP token was verified"
	default:
		var pub interface{ Public() string }
		if errors.As(err, &pub) {
			d.msg = pub.Public()
		}
	}
	prefix := "IdP token rejected"
	switch d.status {
	case http.StatusServiceUnavailable:
		d.typ, prefix = errIdPUnavailable, "IdP token not verified"
	case http.StatusForbidden:
		d.typ = errForbidden
	default:
		d.status = http.StatusUnauthorized
	}
	if d.msg != "" {
		d.msg = prefix + " (" + d.reason + "): " + d.msg
	} else {
		d.msg = prefix + " (" + d.reason + ")"
	}
	return d
}
