package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Agent-facing error types. They are a stable contract: SDKs and agents
// branch on the type, never on the message.
const (
	errUnauthenticated = "agw_unauthenticated"  // 401
	errForbidden       = "agw_forbidden"        // 403
	errBadRequest      = "agw_bad_request"      // 400
	errMisdirected     = "agw_misdirected"      // 421
	errRateLimited     = "agw_rate_limited"     // 429, with Retry-After
	errUpstream        = "agw_upstream_error"   // 502
	errUpstreamTimeout = "agw_upstream_timeout" // 504
	errIdPUnavailable  = "agw_idp_unavailable"  // 503: no usable key from the IdP; retry later
)

// policyNote ends every policy denial, so that an agent (or the model
// driving it) reads the refusal as a deliberate decision rather than a
// network fault to route around.
const policyNote = " This is a policy decision of the agw gateway, not a network or backend fault; retrying, or reaching the backend by another route, will not help. Ask the gateway operator to change the grant."

// requestIDHeader carries the request id on every response, so an operator
// can find the audit record an agent reports.
const requestIDHeader = "X-Agw-Request-Id"

// denial is a refusal decided by the gateway: the status and type the agent
// sees, the message it reads, and the shorter reason the audit keeps.
// Neither ever holds a credential.
type denial struct {
	status int
	typ    string
	msg    string // for the agent; "" means reason
	reason string // for the audit record
	// retryAfter, when positive, is sent as Retry-After (seconds).
	retryAfter int
}

func (d *denial) message() string {
	if d.msg != "" {
		return d.msg
	}
	return d.reason
}

func deny(status int, typ, reason string) *denial {
	return &denial{status: status, typ: typ, reason: reason}
}

// policyDenial is a 403 that names the rule and says retrying will not help.
func policyDenial(reason string) *denial {
	return &denial{status: http.StatusForbidden, typ: errForbidden, reason: reason, msg: reason + "." + policyNote}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError answers with the gateway's JSON error shape. The message must
// already be free of credentials: callers build it from names and redacted
// errors only.
func writeError(w http.ResponseWriter, status int, typ, msg, requestID string) {
	body, err := json.Marshal(errorBody{Error: errorDetail{Type: typ, Message: msg, RequestID: requestID}})
	if err != nil { // cannot happen with string fields
		body = []byte(`{"error":{"type":"` + typ + `","message":"internal error","request_id":"` + requestID + `"}}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(requestIDHeader, requestID)
	if status == http.StatusUnauthorized {
		h.Add("WWW-Authenticate", `Bearer realm="agw"`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
