// Package deny holds the gateway's refusals: the Denial a pipeline stage
// returns and the JSON error body an agent reads for it.
package deny

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Agent-facing error types. They are a stable contract: SDKs and agents
// branch on the type, never on the message.
const (
	Unauthenticated = "agw_unauthenticated"  // 401
	Forbidden       = "agw_forbidden"        // 403
	BadRequest      = "agw_bad_request"      // 400
	Misdirected     = "agw_misdirected"      // 421
	RateLimited     = "agw_rate_limited"     // 429, with Retry-After
	Upstream        = "agw_upstream_error"   // 502
	UpstreamTimeout = "agw_upstream_timeout" // 504
	IdPUnavailable  = "agw_idp_unavailable"  // 503: no usable key from the IdP; retry later
	Unavailable     = "agw_unavailable"      // 503: the gateway cannot decide safely (a dependency is down); retry later
)

// PolicyNote ends every policy denial, so that an agent (or the model
// driving it) reads the refusal as a deliberate decision rather than a
// network fault to route around.
const PolicyNote = " This is a policy decision of the agw gateway, not a network or backend fault; retrying, or reaching the backend by another route, will not help. Ask the gateway operator to change the grant."

// RequestIDHeader carries the request id on every response, so an operator
// can find the audit record an agent reports.
const RequestIDHeader = "X-Agw-Request-Id"

// Denial is a refusal decided by the gateway: the status and type the agent
// sees, the message it reads, and the shorter reason the audit keeps.
// Neither ever holds a credential.
type Denial struct {
	Status int
	Type   string
	Msg    string // for the agent; "" means Reason
	Reason string // for the audit record
	// RetryAfter, when positive, is sent as Retry-After (seconds).
	RetryAfter int
	// Limit names the limit that refused a 429 (limit.Kind*), for metrics.
	Limit string
}

// Message is what the agent reads: Msg, or Reason when Msg is empty.
func (d *Denial) Message() string {
	if d.Msg != "" {
		return d.Msg
	}
	return d.Reason
}

// New is a refusal whose message is its audit reason.
func New(status int, typ, reason string) *Denial {
	return &Denial{Status: status, Type: typ, Reason: reason}
}

// Policy is a 403 that names the rule and says retrying will not help.
func Policy(reason string) *Denial {
	return &Denial{Status: http.StatusForbidden, Type: Forbidden, Reason: reason, Msg: reason + "." + PolicyNote}
}

// Body is the JSON document of every gateway error.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the error inside a Body.
type Detail struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// Write answers with the gateway's JSON error shape. The message must
// already be free of credentials: callers build it from names and redacted
// errors only.
func Write(w http.ResponseWriter, status int, typ, msg, requestID string) {
	body, err := json.Marshal(Body{Error: Detail{Type: typ, Message: msg, RequestID: requestID}})
	if err != nil { // cannot happen with string fields
		body = []byte(`{"error":{"type":"` + typ + `","message":"internal error","request_id":"` + requestID + `"}}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(RequestIDHeader, requestID)
	if status == http.StatusUnauthorized {
		h.Add("WWW-Authenticate", `Bearer realm="agw"`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
