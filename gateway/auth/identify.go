// Package auth identifies the agent behind a request: a gateway token, an
// IdP access token or a Basic-auth password, read from wherever the
// backend's SDKs put a key, with failed attempts throttled.
package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/gateway/auth/jwt"
	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/limit"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// KeyHeaders are the headers where SDKs commonly put an API key, beside the
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
var KeyHeaders = []string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key", "X-Api-Token", "X-Auth-Token", "Private-Token"}

// Identity is who made a request.
type Identity struct {
	Agent      *store.Agent
	AuthMethod string // "token" or "jwt"
	TokenID    string
	IdP        string
	Subject    string
	JTI        string
	Credential string // the agent's credential as presented, for stripping; never logged
}

// Config is what an Identifier reads and verifies with.
type Config struct {
	State *state.State
	// IdP verifies JWTs; nil refuses them.
	IdP IdPVerifier
	// Throttle counts failed authentications; nil throttles nothing.
	Throttle *limit.AuthThrottle
}

// Identifier finds the agent behind requests.
type Identifier struct {
	state    *state.State
	idp      IdPVerifier
	throttle *limit.AuthThrottle
}

// New returns an Identifier for cfg.
func New(cfg Config) *Identifier {
	return &Identifier{state: cfg.State, idp: cfg.IdP, throttle: cfg.Throttle}
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
	for _, h := range KeyHeaders {
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

// Identify finds the agent behind a request for backend b. It never puts
// the credential into a denial. Every failure that proved no identity is
// counted against the credential presented (or, without one, the client
// address), and one that failed too often gets 429.
func (a *Identifier) Identify(ctx context.Context, r *http.Request, b *store.Backend, now time.Time) (Identity, *deny.Denial) {
	var buf [4]string
	return a.identifyThrottled(ctx, r.RemoteAddr, credentialCandidates(r, b, buf[:]), b, now)
}

// IdentifyTunneled identifies a request that arrived through a proxy
// tunnel whose handshake carried the gateway token tunnelCred (already
// checked once when the tunnel opened). A request that carries no
// credential of its own is identified by the tunnel's token, checked again
// now so that a token revoked while the tunnel is open is refused. A
// request that carries one is identified by it, as any request, and must
// belong to the same agent as the tunnel's token.
func (a *Identifier) IdentifyTunneled(ctx context.Context, r *http.Request, b *store.Backend, now time.Time, tunnelCred string) (Identity, *deny.Denial) {
	var buf [4]string
	cands := credentialCandidates(r, b, buf[:])
	if len(cands) == 0 {
		return a.identifyThrottled(ctx, r.RemoteAddr, []string{tunnelCred}, b, now)
	}
	ident, d := a.identifyThrottled(ctx, r.RemoteAddr, cands, b, now)
	if d != nil {
		return ident, d
	}
	tid, td := a.identifyToken(tunnelCred, now)
	if td != nil {
		return tid, td
	}
	if tid.Agent.Name != ident.Agent.Name {
		return ident, deny.New(http.StatusUnauthorized, deny.Unauthenticated,
			"the request's credential and the proxy tunnel's token belong to different agents; use one agent's token for both")
	}
	return ident, nil
}

// AuthenticateTunnel checks the gateway token a client gave in its proxy
// handshake and returns its identity; failures count in the auth-failure
// throttle like any other.
func (a *Identifier) AuthenticateTunnel(ctx context.Context, cred string, now time.Time) (Identity, *deny.Denial) {
	if !crypto.LooksLikeToken(cred) {
		return Identity{}, deny.New(http.StatusUnauthorized, deny.Unauthenticated,
			"the proxy credential must be an agw gateway token (the Proxy-Authorization or SOCKS5 password)")
	}
	return a.identifyThrottled(ctx, "", []string{cred}, nil, now)
}

// identifyThrottled identifies from cands and counts a failure that proved
// no identity against the credential presented (or, with none, the client
// address): past its budget it gets 429 instead of being told why it
// failed. Checking after the lookup costs a valid credential nothing, and
// tells a repeated bad one nothing new.
func (a *Identifier) identifyThrottled(ctx context.Context, remoteAddr string, cands []string, b *store.Backend, now time.Time) (Identity, *deny.Denial) {
	ident, d := a.identify(ctx, cands, b, now)
	if d == nil || a.throttle == nil || d.Status != http.StatusUnauthorized || ident.AuthMethod != "" || ident.TokenID != "" {
		return ident, d
	}
	key := limit.AddressKey(remoteAddr)
	if len(cands) > 0 {
		key = limit.CredentialKey(cands[0])
	}
	if td := a.throttle.Blocked(ctx, key, now); td != nil {
		return Identity{}, td
	}
	a.throttle.Fail(ctx, key, now)
	return ident, d
}

func (a *Identifier) identify(ctx context.Context, cands []string, b *store.Backend, now time.Time) (Identity, *deny.Denial) {
	if len(cands) == 0 {
		return Identity{}, deny.New(http.StatusUnauthorized, deny.Unauthenticated,
			"no credential: send your agw gateway token as the API key (Authorization: Bearer, the backend's key header or Basic-auth password)")
	}
	cred := cands[0]
	for _, c := range cands[1:] {
		if c != cred {
			return Identity{}, deny.New(http.StatusUnauthorized, deny.Unauthenticated,
				"ambiguous credentials: the request carries different credentials in different places; send only the gateway token")
		}
	}
	switch {
	case crypto.LooksLikeToken(cred):
		return a.identifyToken(cred, now)
	case jwt.LooksLikeJWT(cred):
		if a.idp == nil {
			return Identity{}, deny.New(http.StatusUnauthorized, deny.Unauthenticated,
				"IdP tokens are not configured for this backend")
		}
		return a.identifyJWT(ctx, b, cred)
	default:
		return Identity{}, deny.New(http.StatusUnauthorized, deny.Unauthenticated,
			"the credential is not an agw gateway token; use a token minted with `agw token mint`, never a backend key")
	}
}

func (a *Identifier) identifyToken(tok string, now time.Time) (Identity, *deny.Denial) {
	id, err := crypto.ParseToken(tok)
	if err != nil {
		return Identity{}, deny.New(http.StatusUnauthorized, deny.Unauthenticated, "malformed gateway token")
	}
	t := a.state.Token(id)
	if t == nil || t.Agent == "" || !crypto.VerifyToken([]byte(tok), t.Hash) {
		return Identity{}, deny.New(http.StatusUnauthorized, deny.Unauthenticated, "unknown gateway token")
	}
	// Only someone holding the whole token gets told why it no longer works.
	if !t.RevokedAt.IsZero() {
		return Identity{TokenID: id}, deny.New(http.StatusUnauthorized, deny.Unauthenticated, "gateway token "+id+" is revoked")
	}
	if !t.Active(now) {
		return Identity{TokenID: id}, deny.New(http.StatusUnauthorized, deny.Unauthenticated, "gateway token "+id+" has expired")
	}
	ag := a.state.Agent(t.Agent)
	ident := Identity{AuthMethod: "token", TokenID: id, Credential: tok}
	if ag == nil {
		return ident, deny.New(http.StatusUnauthorized, deny.Unauthenticated, "gateway token "+id+" belongs to no agent")
	}
	ident.Agent = ag
	if ag.Disabled {
		return ident, deny.Policy("agent disabled")
	}
	return ident, nil
}

func (a *Identifier) identifyJWT(ctx context.Context, b *store.Backend, raw string) (Identity, *deny.Denial) {
	res, err := a.idp.VerifyJWT(ctx, b, raw)
	ident := Identity{IdP: res.IdP, Subject: res.Subject, JTI: res.JTI, Credential: raw}
	if res.Subject != "" {
		// The token verified (the verifier names a subject only then),
		// even if it identifies no agent: not a failed authentication.
		ident.AuthMethod = "jwt"
	}
	if err != nil {
		return ident, jwtDenial(ctx, err)
	}
	ag := a.state.Agent(res.Agent)
	if ag == nil {
		return ident, deny.New(http.StatusUnauthorized, deny.Unauthenticated, "the IdP token identifies no agent")
	}
	ident.Agent = ag
	if ag.Disabled {
		return ident, deny.Policy("agent disabled")
	}
	return ident, nil
}

// jwtDenial answers a refused IdP token with the status the verifier chose
// (401, or 503 when the IdP's keys cannot be obtained: the token may be
// fine, so the agent is told to retry rather than to get another), its
// stable reason in the audit record and its public message to the agent.
func jwtDenial(ctx context.Context, err error) *deny.Denial {
	d := &deny.Denial{Status: http.StatusUnauthorized, Type: deny.Unauthenticated, Reason: "jwt_rejected"}
	var je *jwt.Error
	var jr *jwtRefusal
	switch {
	case errors.As(err, &je):
		d.Status, d.Reason, d.Msg = je.Status, je.Reason, je.Public()
	case errors.As(err, &jr):
		d.Status, d.Reason, d.Msg = jr.Status, jr.Reason, jr.Public()
	case ctx.Err() != nil:
		d.Reason, d.Msg = "jwt_verification_cancelled", "the request ended before its IdP token was verified"
	default:
		var pub interface{ Public() string }
		if errors.As(err, &pub) {
			d.Msg = pub.Public()
		}
	}
	prefix := "IdP token rejected"
	switch d.Status {
	case http.StatusServiceUnavailable:
		d.Type, prefix = deny.IdPUnavailable, "IdP token not verified"
	case http.StatusForbidden:
		d.Type = deny.Forbidden
	default:
		d.Status = http.StatusUnauthorized
	}
	if d.Msg != "" {
		d.Msg = prefix + " (" + d.Reason + "): " + d.Msg
	} else {
		d.Msg = prefix + " (" + d.Reason + ")"
	}
	return d
}
