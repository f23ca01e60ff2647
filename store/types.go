// Package store holds agw's domain types (backends, agents, grants, tokens,
// identity providers, sealed credentials and audit events), their validation,
// the sentinel errors every layer matches on, and the Store interface the
// daemon persists them through. It imports only the standard library.
package store

import (
	"time"
)

// InjectMode says how a backend's credential is put on the upstream request.
type InjectMode string

// The injection modes.
const (
	InjectHeader InjectMode = "header" // Header: Prefix+secret
	InjectBearer InjectMode = "bearer" // Authorization: Bearer secret
	InjectBasic  InjectMode = "basic"  // Authorization: Basic base64(BasicUser:secret)
	InjectQuery  InjectMode = "query"  // ?QueryParam=secret
	InjectOAuth2 InjectMode = "oauth2" // bearer token from a client-credentials grant; the secret is the client secret
)

// InjectModes lists the valid modes in the order help text shows them.
var InjectModes = []InjectMode{InjectHeader, InjectBearer, InjectBasic, InjectQuery, InjectOAuth2}

// OAuth2 configures a client-credentials token source for an oauth2 backend.
// The client secret is the backend's sealed credential.
type OAuth2 struct {
	TokenURL string            `json:"token_url"`
	ClientID string            `json:"client_id"`
	Scopes   []string          `json:"scopes,omitempty"`
	Params   map[string]string `json:"params,omitempty"` // extra token request parameters (audience, resource)
}

// Backend is a real API that agents reach through the gateway.
type Backend struct {
	Name string `json:"name"`
	// Hosts are the names agents call (lower case, no trailing dot). A leading
	// "*." matches exactly one more label, as in TLS certificates.
	Hosts []string `json:"hosts"`
	// Upstream is where requests are forwarded ("https://10.0.0.5:8443").
	// Empty means the requested host itself on port 443, resolved through the
	// upstream resolvers.
	Upstream string `json:"upstream,omitempty"`
	// UpstreamCA is extra PEM roots trusted for the upstream, beside the system's.
	UpstreamCA string `json:"upstream_ca,omitempty"`
	// AllowPlainHTTP must be set for an http:// upstream.
	AllowPlainHTTP bool `json:"allow_plain_http,omitempty"`
	// Timeout bounds the wait for the upstream's response headers; zero means the default.
	Timeout Duration `json:"timeout,omitempty"`

	Inject     InjectMode `json:"inject"`
	Header     string     `json:"header,omitempty"`      // header mode: header name
	Prefix     string     `json:"prefix,omitempty"`      // header mode: value prefix, e.g. "Token "
	QueryParam string     `json:"query_param,omitempty"` // query mode: parameter name
	BasicUser  string     `json:"basic_user,omitempty"`  // basic mode: user name
	OAuth2     *OAuth2    `json:"oauth2,omitempty"`      // oauth2 mode

	// Rate and Burst limit requests to this backend across all agents.
	Rate  string `json:"rate,omitempty"` // "N/s", "N/m" or "N/h"; empty is unlimited
	Burst int    `json:"burst,omitempty"`
	// NoScrub turns off the redaction of reflected credentials in responses.
	NoScrub bool `json:"no_scrub,omitempty"`

	CredentialVersion int       `json:"credential_version"`
	CredentialSetAt   time.Time `json:"credential_set_at"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// Credential is one version of a backend's secret, sealed with age to the
// daemon's identity. Only the daemon can open it.
type Credential struct {
	Backend   string    `json:"backend"`
	Version   int       `json:"version"`
	Sealed    []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// Agent is a workload that calls backends through the gateway.
type Agent struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Disabled    bool   `json:"disabled"`
	// IdP and Subject bind the agent to an identity-provider claim value;
	// both empty for an agent that uses gateway tokens only.
	IdP     string `json:"idp,omitempty"`
	Subject string `json:"subject,omitempty"`

	Rate          string `json:"rate,omitempty"` // across all backends
	Burst         int    `json:"burst,omitempty"`
	MaxConcurrent int    `json:"max_concurrent,omitempty"` // 0 is unlimited

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Grant lets one agent call one backend with the listed methods on paths
// matching the listed patterns. Anything not granted is denied.
type Grant struct {
	Agent   string   `json:"agent"`
	Backend string   `json:"backend"`
	Methods []string `json:"methods"` // upper case; "*" is every method
	Paths   []string `json:"paths"`   // glob patterns on the normalised path; "/**" is every path
	Rate    string   `json:"rate,omitempty"`
	Burst   int      `json:"burst,omitempty"`

	CreatedAt time.Time `json:"created_at"`
}

// Token is a gateway token's stored half: its public id and the hash of the
// whole token. The token itself is shown once, at mint, and never stored.
type Token struct {
	ID        string    `json:"id"`
	Agent     string    `json:"agent"`
	Label     string    `json:"label,omitempty"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never
	RevokedAt time.Time `json:"revoked_at,omitzero"` // zero: not revoked
}

// Active reports whether the token may be used at now.
func (t *Token) Active(now time.Time) bool {
	if !t.RevokedAt.IsZero() {
		return false
	}
	return t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)
}

// IdP is an OpenID Connect issuer whose access tokens identify agents.
type IdP struct {
	Name     string `json:"name"`
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// Claim names the token claim that identifies the agent (cid, azp, appid, sub).
	Claim     string    `json:"claim"`
	CreatedAt time.Time `json:"created_at"`
}

// Passthrough is a host (exact, or "*.base") the proxy listener opens
// plain tunnels to: agw does not terminate their TLS and injects nothing.
type Passthrough struct {
	Host      string    `json:"host"`
	CreatedAt time.Time `json:"created_at"`
}

// Normalize lower-cases the host and drops one trailing dot.
func (p *Passthrough) Normalize() { p.Host = NormalizeHost(p.Host) }

// Validate checks the host as a backend host is checked: a DNS name or a
// wildcard "*.base"; IP addresses are refused.
func (p *Passthrough) Validate() error { return ValidateHost(p.Host) }

// Audit event kinds.
const (
	KindRequest = "request" // a request through the gateway
	KindTLS     = "tls"     // a refused TLS handshake
	KindTunnel  = "tunnel"  // a proxy-listener tunnel refused or passed through
	KindAdmin   = "admin"   // a change made through the admin API
)

// ViaProxy is AuditEvent.Via for what arrived through the proxy listener.
const ViaProxy = "proxy"

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
)

// AuditEvent is one record of the audit trail. It never holds a credential,
// token, query value or body.
type AuditEvent struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	RequestID string    `json:"request_id,omitempty"`

	Agent      string `json:"agent,omitempty"`
	AuthMethod string `json:"auth_method,omitempty"` // token, jwt
	TokenID    string `json:"token_id,omitempty"`
	IdP        string `json:"idp,omitempty"`
	Subject    string `json:"subject,omitempty"`
	JTI        string `json:"jti,omitempty"`
	Client     string `json:"client,omitempty"` // ip:port
	// Via names the way in when it is not DNS steering: "proxy" for the
	// proxy listener (ViaProxy).
	Via string `json:"via,omitempty"`

	Backend           string  `json:"backend,omitempty"`
	Method            string  `json:"method,omitempty"`
	Host              string  `json:"host,omitempty"`
	Path              string  `json:"path,omitempty"` // query values removed
	Status            int     `json:"status,omitempty"`
	Decision          string  `json:"decision,omitempty"`
	Reason            string  `json:"reason,omitempty"`
	UpstreamMillis    float64 `json:"upstream_ms,omitempty"`
	TotalMillis       float64 `json:"total_ms,omitempty"`
	BytesIn           int64   `json:"bytes_in,omitempty"`
	BytesOut          int64   `json:"bytes_out,omitempty"`
	CredentialVersion int     `json:"credential_version,omitempty"`
	Redactions        int     `json:"redactions,omitempty"`

	// Admin events.
	Action  string `json:"action,omitempty"` // e.g. backend.add, token.mint
	Target  string `json:"target,omitempty"` // e.g. backend name, token id
	PeerUID int    `json:"peer_uid,omitempty"`
	PeerPID int    `json:"peer_pid,omitempty"`

	// Replica names the writer whose hash chain holds the record, where
	// the store keeps one chain per writer (cluster mode); empty otherwise.
	Replica string `json:"replica,omitempty"`

	// Tamper evidence: Hash covers the record and PrevHash.
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// AuditCheckpoint is a signed statement of the audit chain's head (its
// newest record and hash) at a moment, kept outside the store; see package
// audit.
type AuditCheckpoint struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	// Writer names the chain, where a store keeps one per writer.
	Writer string `json:"writer,omitempty"`
	// KeyID is the first 16 hex digits of the SHA-256 of the public key.
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // base64 Ed25519
}

// AuditQuery selects audit events. Zero fields do not filter.
type AuditQuery struct {
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
	AfterSeq uint64    `json:"after_seq,omitempty"` // only events with Seq > AfterSeq
	Agent    string    `json:"agent,omitempty"`
	Backend  string    `json:"backend,omitempty"`
	Decision string    `json:"decision,omitempty"`
	Kind     string    `json:"kind,omitempty"`
	Status   int       `json:"status,omitempty"`
	// Last, when positive, returns only the newest Last matching events
	// (still in ascending order).
	Last int `json:"last,omitempty"`
	// Limit, when positive, stops after Limit events.
	Limit int `json:"limit,omitempty"`
	// BeforeSeq, when positive, keeps only events with Seq < BeforeSeq;
	// with AfterSeq it re-reads a range of sequence numbers.
	BeforeSeq uint64 `json:"before_seq,omitempty"`
}

// Match reports whether ev passes the query's field filters (not Last/Limit).
func (q *AuditQuery) Match(ev *AuditEvent) bool {
	switch {
	case !q.Since.IsZero() && ev.Time.Before(q.Since):
		return false
	case !q.Until.IsZero() && !ev.Time.Before(q.Until):
		return false
	case q.AfterSeq != 0 && ev.Seq <= q.AfterSeq:
		return false
	case q.BeforeSeq != 0 && ev.Seq >= q.BeforeSeq:
		return false
	case q.Agent != "" && ev.Agent != q.Agent:
		return false
	case q.Backend != "" && ev.Backend != q.Backend:
		return false
	case q.Decision != "" && ev.Decision != q.Decision:
		return false
	case q.Kind != "" && ev.Kind != q.Kind:
		return false
	case q.Status != 0 && ev.Status != q.Status:
		return false
	}
	return true
}

// Snapshot is everything the daemon keeps in memory, read once at start.
type Snapshot struct {
	// Revision is the store revision the snapshot is consistent with:
	// Watch from it to keep the snapshot current.
	Revision    Revision
	Backends    []Backend
	Credentials []Credential // the current version of each backend's credential
	Agents      []Agent
	Grants      []Grant
	Tokens      []Token
	IdPs        []IdP
	Passthrough []Passthrough
}
