// Package admin is the contract of agw's admin API: HTTP+JSON over the
// daemon's Unix socket. It holds the paths, the request and response types and
// the typed Client the CLI and the TUI use. The server half lives in package
// gateway. Errors travel as JSON and come back out of the Client as the store
// package's sentinel errors, so callers match them with errors.Is.
package admin

import (
	"net/netip"
	"time"

	"github.com/agw-dev/agw/store"
)

// API paths. Names in braces are path parameters.
const (
	PathStatus      = "/v1/status"
	PathBackends    = "/v1/backends"
	PathBackend     = "/v1/backends/{name}"
	PathRotate      = "/v1/backends/{name}/rotate"
	PathAgents      = "/v1/agents"
	PathAgent       = "/v1/agents/{name}"
	PathGrants      = "/v1/grants"
	PathGrant       = "/v1/grants/{agent}/{backend}"
	PathTokens      = "/v1/tokens"
	PathTokenRevoke = "/v1/tokens/{id}/revoke"
	PathIdPs        = "/v1/idps"
	PathIdP         = "/v1/idps/{name}"
	PathPassthrough = "/v1/passthrough"
	PathPassHost    = "/v1/passthrough/{host}"
	PathAudit       = "/v1/audit"
	PathAuditVerify = "/v1/audit/verify"
	// PathAuditCheckpoint signs the audit chain's head now (POST).
	PathAuditCheckpoint = "/v1/audit/checkpoint"
	PathCA              = "/v1/ca"
	PathDNSExport       = "/v1/dns/export"
)

// Status describes the running daemon.
type Status struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	DataDir   string    `json:"data_dir"`
	Listeners Listeners `json:"listeners"`
	Counts    Counts    `json:"counts"`
	Gateway   Traffic   `json:"gateway"`
	DNS       DNSStats  `json:"dns"`
	// AuditQueue is the number of audit records waiting to be written.
	AuditQueue int `json:"audit_queue"`
	// Revision is the store revision the gateway's view has applied, and
	// ConfirmedAt when the store's change feed last confirmed it current.
	Revision    uint64    `json:"revision"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	// Stale, when set, says why agent requests are refused: the view could
	// not be confirmed current within --max-staleness.
	Stale string `json:"stale,omitempty"`
	// Replicas lists the cluster's replicas (cluster mode only).
	Replicas []Replica `json:"replicas,omitempty"`
	// RateLimit says where rate limits are decided.
	RateLimit RateLimitStatus `json:"rate_limit"`
}

// RateLimitStatus says where rate limits are decided: "local" (this
// process), or "redis" (shared by every replica); Degraded when Redis is
// unreachable and each replica decides locally at limit ÷ replicas, with
// the reason.
type RateLimitStatus struct {
	Backend   string `json:"backend"`
	Degraded  bool   `json:"degraded"`
	Reason    string `json:"reason,omitempty"`
	Fallbacks uint64 `json:"fallbacks,omitempty"` // decisions taken locally while degraded
}

// Listeners are the daemon's bound addresses ("" when off).
type Listeners struct {
	Admin   string `json:"admin"`
	HTTPS   string `json:"https"`
	DNS     string `json:"dns"`
	Metrics string `json:"metrics,omitempty"`
	Proxy   string `json:"proxy,omitempty"` // the proxy listener (CONNECT and SOCKS5)
}

// Counts of configured objects.
type Counts struct {
	Backends int `json:"backends"`
	Agents   int `json:"agents"`
	Grants   int `json:"grants"`
	Tokens   int `json:"tokens"` // active tokens
	IdPs     int `json:"idps"`
}

// Traffic counts gateway requests since start.
type Traffic struct {
	Requests     uint64 `json:"requests"`
	Allowed      uint64 `json:"allowed"`
	Denied       uint64 `json:"denied"`
	TLSRefused   uint64 `json:"tls_refused"`
	UpstreamErrs uint64 `json:"upstream_errors"`
}

// DNSStats counts DNS queries since start.
type DNSStats struct {
	Queries     uint64 `json:"queries"`
	Intercepted uint64 `json:"intercepted"`
	Forwarded   uint64 `json:"forwarded"`
	Failures    uint64 `json:"failures"`
}

// SecretInput carries a secret from the CLI to the daemon. It is write-only:
// no response type contains one, and it is never logged.
type SecretInput struct {
	Value string `json:"value"`
}

// AddBackendRequest registers a backend with its first credential.
type AddBackendRequest struct {
	Backend store.Backend `json:"backend"`
	Secret  SecretInput   `json:"secret"`
}

// RotateRequest replaces a backend's credential with a new version.
type RotateRequest struct {
	Secret SecretInput `json:"secret"`
}

// BackendDetail is a backend with what refers to it, for `backend show`.
type BackendDetail struct {
	store.Backend
	Grants   []store.Grant `json:"grants"`
	Warnings []string      `json:"warnings,omitempty"`
}

// AgentDetail is an agent with its grants and tokens, for `agent show`.
type AgentDetail struct {
	store.Agent
	Grants []store.Grant `json:"grants"`
	Tokens []store.Token `json:"tokens"`
}

// AgentSummary is one row of `agent list`.
type AgentSummary struct {
	store.Agent
	Tokens int `json:"tokens"` // active tokens
	Grants int `json:"grants"`
	// LastSeen is the time of the agent's last request through the gateway
	// since the daemon started (zero if none).
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// UpdateAgentRequest changes an agent's settings; nil fields are unchanged.
type UpdateAgentRequest struct {
	Disabled      *bool   `json:"disabled,omitempty"`
	Description   *string `json:"description,omitempty"`
	Rate          *string `json:"rate,omitempty"`
	Burst         *int    `json:"burst,omitempty"`
	MaxConcurrent *int    `json:"max_concurrent,omitempty"`
}

// UpdateBackendRequest changes a backend's settings (not its credential);
// nil fields are unchanged.
type UpdateBackendRequest struct {
	Rate    *string         `json:"rate,omitempty"`
	Burst   *int            `json:"burst,omitempty"`
	Timeout *store.Duration `json:"timeout,omitempty"`
	NoScrub *bool           `json:"no_scrub,omitempty"`

	Hosts          []string          `json:"hosts,omitempty"`
	Upstream       *string           `json:"upstream,omitempty"`
	UpstreamCA     *string           `json:"upstream_ca,omitempty"`
	AllowPlainHTTP *bool             `json:"allow_plain_http,omitempty"`
	Inject         *store.InjectMode `json:"inject,omitempty"`
	Header         *string           `json:"header,omitempty"`
	Prefix         *string           `json:"prefix,omitempty"`
	QueryParam     *string           `json:"query_param,omitempty"`
	BasicUser      *string           `json:"basic_user,omitempty"`
	OAuth2         *store.OAuth2     `json:"oauth2,omitempty"`
}

// MintRequest asks for a new gateway token.
type MintRequest struct {
	Agent string         `json:"agent"`
	TTL   store.Duration `json:"ttl,omitempty"` // zero: no expiry
	Label string         `json:"label,omitempty"`
}

// MintedToken is the only response that carries a secret: the new token,
// shown once. Nothing can show it again.
type MintedToken struct {
	store.Token
	Value string `json:"token"`
}

// AuditVerifyResult reports a walk of the audit hash chain.
type AuditVerifyResult struct {
	Checked int    `json:"checked"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
	// Checkpoints is how many signed checkpoints the trail was checked
	// against (the gateway's own and any sent with the request).
	Checkpoints int `json:"checkpoints"`
}

// AuditVerifyRequest may carry checkpoints kept elsewhere (from `agw audit
// checkpoint`) to verify the trail against, beside the gateway's own.
type AuditVerifyRequest struct {
	Checkpoints []store.AuditCheckpoint `json:"checkpoints,omitempty"`
}

// StreamMessage is one line of the audit stream: an event, or a notice that
// the reader fell too far behind and the stream skipped ahead. The skipped
// records, Missed of them (counted by sequence number, before the stream's
// filters), are exactly those with MissedFrom <= Seq <= MissedTo; they stay
// stored, and a query with AfterSeq MissedFrom-1 and BeforeSeq MissedTo+1
// and the same filters re-reads the ones the stream would have sent.
type StreamMessage struct {
	Event      *store.AuditEvent `json:"event,omitempty"`
	Missed     uint64            `json:"missed,omitempty"`
	MissedFrom uint64            `json:"missed_from,omitempty"`
	MissedTo   uint64            `json:"missed_to,omitempty"`
}

// ErrorBody is every error response: {"error":{"code":...,"message":...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail names the error class (a stable code) and says what to do.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Stable error codes and the sentinel each maps to.
const (
	CodeNotFound  = "not_found"
	CodeExists    = "exists"
	CodeInvalid   = "invalid"
	CodeConflict  = "conflict"
	CodeForbidden = "forbidden"
	CodeInternal  = "internal"
)

// Replica is one replica of a cluster as agw status shows it.
type Replica struct {
	ID            string         `json:"id"`
	Addresses     []netip.Addr   `json:"addresses"`
	Version       string         `json:"version"`
	LastHeartbeat time.Time      `json:"last_heartbeat"`
	Age           store.Duration `json:"age"`
	Live          bool           `json:"live"`
	Self          bool           `json:"self,omitempty"` // the replica that answered
}
