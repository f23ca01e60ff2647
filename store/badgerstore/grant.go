package badgerstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// PutGrant creates or replaces the grant for (g.Agent, g.Backend); a
// replaced grant keeps its creation time. ErrNotFound names the missing agent
// or backend.
func (s *Store) PutGrant(ctx context.Context, g *store.Grant, ev store.AuditEvent) (store.Revision, error) {
	ng := *g
	ng.Methods = slices.Clone(g.Methods)
	ng.Paths = slices.Clone(g.Paths)
	ng.Normalize()
	if err := ng.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "put grant", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		if err := mustExist(txn, agentKey(ng.Agent), "agent", ng.Agent); err != nil {
			return nil, err
		}
		b, found, err := getBackend(txn, ng.Backend)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("backend", ng.Backend)
		}
		// An orphan granting a deleted backend of the same name is not
		// replaced but overwritten: the new grant starts afresh, and the
		// cleaner leaves its index entry alone.
		var old grantRecord
		found, err = getJSON(txn, grantKey(ng.Agent, ng.Backend), &old)
		if err != nil {
			return nil, err
		}
		ng.CreatedAt = now
		if found && old.BackendGen == b.Gen {
			ng.CreatedAt = old.CreatedAt
		}
		if err := setJSON(txn, grantKey(ng.Agent, ng.Backend), grantRecord{Grant: ng, BackendGen: b.Gen}); err != nil {
			return nil, err
		}
		if err := txn.Set(grantByBackendKey(ng.Backend, ng.Agent), nil); err != nil {
			return nil, err
		}
		return []store.Change{grantPut(ng)}, nil
	})
	if err != nil {
		return 0, err
	}
	*g = ng
	return rev, nil
}

// DeleteGrant removes the grant for (agent, backend); ErrNotFound if none,
// or if it granted a deleted backend (the cleaner removes those).
func (s *Store) DeleteGrant(ctx context.Context, agent, backend string, ev store.AuditEvent) (store.Revision, error) {
	return s.mutate(ctx, "delete grant", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		_, live, err := liveGrant(txn, agent, backend)
		if err != nil {
			return nil, err
		}
		if !live {
			return nil, fmt.Errorf("grant for agent %q on backend %q: %w", agent, backend, store.ErrNotFound)
		}
		if err := deleteAll(txn, grantKey(agent, backend), grantByBackendKey(backend, agent)); err != nil {
			return nil, err
		}
		return []store.Change{grantDeleted(agent, backend)}, nil
	})
}

// CreateToken stores a minted token's hash. ErrNotFound if the agent does not
// exist, ErrExists if the id is taken.
func (s *Store) CreateToken(ctx context.Context, t *store.Token, ev store.AuditEvent) (store.Revision, error) {
	nt := *t
	if err := nt.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "create token", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		a, found, err := getAgent(txn, nt.Agent)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("agent", nt.Agent)
		}
		// An orphan of a deleted agent does not hold its id: it is
		// overwritten, and the cleaner drops only its stale index entry.
		if _, live, err := liveToken(txn, nt.ID); err != nil {
			return nil, err
		} else if live {
			return nil, alreadyExists("token", nt.ID)
		}
		nt.CreatedAt = now
		if err := setJSON(txn, tokenKey(nt.ID), tokenRecordOf(&nt, a.Gen)); err != nil {
			return nil, err
		}
		if err := txn.Set(tokenByAgentKey(nt.Agent, nt.ID), nil); err != nil {
			return nil, err
		}
		return []store.Change{tokenPut(nt)}, nil
	})
	if err != nil {
		return 0, err
	}
	*t = nt
	return rev, nil
}

// RevokeToken marks a token revoked at at (now if zero) and returns it.
// Revoking a revoked token keeps the first revocation time; it is still a
// revision of its own (its audit event is), whose change carries the token
// unchanged.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, ev store.AuditEvent) (*store.Token, store.Revision, error) {
	var rec tokenRecord
	rev, err := s.mutate(ctx, "revoke token", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		var live bool
		var err error
		if rec, live, err = liveToken(txn, id); err != nil {
			return nil, err
		}
		if !live {
			return nil, notFound("token", id)
		}
		if rec.RevokedAt.IsZero() {
			rec.RevokedAt = at.UTC()
			if at.IsZero() {
				rec.RevokedAt = now
			}
			if err := setJSON(txn, tokenKey(id), rec); err != nil {
				return nil, err
			}
		}
		return []store.Change{tokenPut(rec.token())}, nil
	})
	if err != nil {
		return nil, 0, err
	}
	t := rec.token()
	return &t, rev, nil
}
