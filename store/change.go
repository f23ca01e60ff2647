package store

import "time"

// Revision numbers the committed configuration transactions of a store, from
// 1, in commit order. Zero is "before anything".
type Revision uint64

// HeartbeatInterval is the longest a healthy Watch goes without calling its
// callback: an empty ChangeSet carrying the newest revision proves the feed
// alive when nothing changes.
const HeartbeatInterval = time.Second

// ObjectKind names the kind of object a Change is about.
type ObjectKind string

// The kinds of objects the change feed carries.
const (
	KindBackend    ObjectKind = "backend"    // Name; Backend on put
	KindCredential ObjectKind = "credential" // Name is the backend; Credential (the new current version) on put
	KindAgent      ObjectKind = "agent"      // Name; Agent on put
	KindGrant      ObjectKind = "grant"      // GrantAgent and Name (the backend); Grant on put
	KindToken      ObjectKind = "token"      // Name is the token id; Token on put
	KindIdP        ObjectKind = "idp"        // Name; IdP on put
	// KindPassthrough: Name is the host; Passthrough on put.
	KindPassthrough ObjectKind = "passthrough"
)

// Change is one object written or deleted by a transaction. A put carries
// the object as stored (the field matching Kind); a delete carries only its
// key. Deleting a backend or an agent is one Change: what depended on it
// (grants, tokens, credentials) goes with it, and a projection drops those
// itself, so a delete costs the same however much depended on it.
type Change struct {
	Kind    ObjectKind `json:"kind"`
	Deleted bool       `json:"deleted,omitempty"`
	Name    string     `json:"name"`
	// GrantAgent is a grant's agent; Name is then its backend.
	GrantAgent string `json:"grant_agent,omitempty"`

	Backend     *Backend     `json:"backend,omitempty"`
	Credential  *Credential  `json:"credential,omitempty"`
	Agent       *Agent       `json:"agent,omitempty"`
	Grant       *Grant       `json:"grant,omitempty"`
	Token       *Token       `json:"token,omitempty"`
	IdP         *IdP         `json:"idp,omitempty"`
	Passthrough *Passthrough `json:"passthrough,omitempty"`
}

// ChangeSet is everything one transaction changed, under its revision. An
// empty Changes is a heartbeat: Revision is then the newest committed.
type ChangeSet struct {
	Revision Revision `json:"revision"`
	Changes  []Change `json:"changes,omitempty"`
}
