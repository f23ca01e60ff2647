package store

import (
	"context"
	"time"
)

// Store persists agw's configuration, sealed credentials and audit trail.
//
// Every mutation is one transaction: it validates references inside the
// transaction, writes the object and the admin audit event ev together, and
// either all of it lands or none of it does. ev is the admin event describing
// the change (Kind, Action, Target, peer); the store assigns its Seq and chain
// hash. Errors wrap the package's sentinels (ErrNotFound, ErrExists,
// ErrInvalid, ErrConflict).
//
// Mutations take the object by pointer and may fill server-side fields
// (timestamps, versions) on success. Each returns the Revision its
// transaction committed: the daemon's in-memory projection (built from Load
// and kept current by Watch) has seen the write once it has applied that
// revision.
type Store interface {
	// Load reads everything the daemon serves from memory, and the revision
	// the snapshot is consistent with.
	Load(ctx context.Context) (*Snapshot, error)
	// Watch calls fn, in revision order and without gaps, with every change
	// set committed after the revision after, then with each new one as it
	// commits, until ctx is done (it then returns ctx.Err()) or fn returns
	// an error (returned as is). While the feed is healthy it also calls fn
	// at least once per HeartbeatInterval with an empty ChangeSet whose
	// Revision is the newest committed revision, so the caller can prove its
	// projection fresh. ErrCompacted (wrapped) means the store no longer
	// holds the history after that revision: Load again and watch from the
	// snapshot's revision. Any other error means the feed broke; the caller
	// may call Watch again from the last revision it applied.
	Watch(ctx context.Context, after Revision, fn func(ChangeSet) error) error

	// CreateBackend adds a backend with its first credential (version 1).
	// ErrExists if the name is taken or a host is registered to another backend.
	CreateBackend(ctx context.Context, b *Backend, c *Credential, ev AuditEvent) (Revision, error)
	// UpdateBackend replaces a backend's configuration, keeping its credential.
	UpdateBackend(ctx context.Context, b *Backend, ev AuditEvent) (Revision, error)
	// RotateCredential stores a new credential version for a backend and
	// returns the updated backend; c.Version is assigned.
	RotateCredential(ctx context.Context, c *Credential, ev AuditEvent) (*Backend, Revision, error)
	// DeleteBackend removes a backend, its credentials and every grant to it.
	DeleteBackend(ctx context.Context, name string, ev AuditEvent) (Revision, error)

	// CreateAgent adds an agent; ErrNotFound if its IdP does not exist,
	// ErrExists if another agent has the same IdP subject.
	CreateAgent(ctx context.Context, a *Agent, ev AuditEvent) (Revision, error)
	// UpdateAgent replaces an agent's settings (enable/disable, limits).
	UpdateAgent(ctx context.Context, a *Agent, ev AuditEvent) (Revision, error)
	// DeleteAgent removes an agent, its grants and its tokens.
	DeleteAgent(ctx context.Context, name string, ev AuditEvent) (Revision, error)

	// PutGrant creates or replaces the grant for (g.Agent, g.Backend);
	// ErrNotFound if either does not exist.
	PutGrant(ctx context.Context, g *Grant, ev AuditEvent) (Revision, error)
	// DeleteGrant removes the grant for (agent, backend).
	DeleteGrant(ctx context.Context, agent, backend string, ev AuditEvent) (Revision, error)

	// CreateToken stores a minted token's hash; ErrNotFound if the agent
	// does not exist.
	CreateToken(ctx context.Context, t *Token, ev AuditEvent) (Revision, error)
	// RevokeToken marks a token revoked at the given time and returns it.
	RevokeToken(ctx context.Context, id string, at time.Time, ev AuditEvent) (*Token, Revision, error)

	// CreateIdP adds an identity provider.
	CreateIdP(ctx context.Context, p *IdP, ev AuditEvent) (Revision, error)
	// DeleteIdP removes an identity provider; ErrConflict while agents use it.
	DeleteIdP(ctx context.Context, name string, ev AuditEvent) (Revision, error)

	// CreatePassthrough lists a host for pass-through tunnels; ErrExists
	// if it is listed already.
	CreatePassthrough(ctx context.Context, p *Passthrough, ev AuditEvent) (Revision, error)
	// DeletePassthrough removes a listed host; ErrNotFound if it is not.
	DeletePassthrough(ctx context.Context, host string, ev AuditEvent) (Revision, error)

	// AppendAudit appends events in order, assigning each its Seq and hash.
	AppendAudit(ctx context.Context, evs []AuditEvent) error
	// QueryAudit calls fn for each event matching q in ascending Seq order
	// until fn returns false.
	QueryAudit(ctx context.Context, q AuditQuery, fn func(AuditEvent) bool) error
	// LastAuditSeq returns the newest event's sequence number (0 if none).
	LastAuditSeq(ctx context.Context) (uint64, error)
	// VerifyAudit checks the audit trail's hash chain (every chain, where
	// the store keeps one per writer) and the indexes behind the Agent and
	// Backend filters. It returns how many records it checked; an error
	// wrapping ErrAuditTampered names the first bad record (and its chain).
	VerifyAudit(ctx context.Context) (checked int, err error)
	// PruneAudit removes the audit events older than before, keeping the
	// chain verifiable from the oldest record kept, and returns how many it
	// removed.
	PruneAudit(ctx context.Context, before time.Time) (removed int, err error)

	// Close flushes and closes the store.
	Close() error
}
