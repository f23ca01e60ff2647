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
func (s *Store) PutGrant(ctx context.Context, g *store.Grant, ev store.AuditEvent) error {
	ng := *g
	ng.Methods = slices.Clone(g.Methods)
	ng.Paths = slices.Clone(g.Paths)
	ng.Normalize()
	if err := ng.Validate(); err != nil {
		return err
	}
	err := s.mutate(ctx, "put grant", ev, func(txn *badger.Txn, now time.Time) error {
		if err := mustExist(txn, agentKey(ng.Agent), "agent", ng.Agent); err != nil {
			return err
		}
		b, found, err := getBackend(txn, ng.Backend)
		if err != nil {
			return err
		}
		if !found {
			return notFound("backend", ng.Backend)
		}
		// An orphan granting a deleted backend of the same name is not
		// replaced but overwritten: the new grant starts afresh, and the
		// cleaner leaves its index entry alone.
		var old grantRecord
		found, err = getJSON(txn, grantKey(ng.Agent, ng.Backend), &old)
		if err != nil {
			return err
		}
		ng.CreatedAt = now
		if found && old.BackendGen == b.Gen {
			ng.CreatedAt = old.CreatedAt
		}
		if err := setJSON(txn, grantKey(ng.Agent, ng.Backend), grantRecord{Grant: ng, BackendGen: b.Gen}); err != nil {
			return err
		}
		return txn.Set(grantByBackendKey(ng.Backend, ng.Agent), nil)
	})
	if err != nil {
		return err
	}
	*g = ng
	return nil
}

// DeleteGrant removes the grant for (agent, backend); ErrNotFound if none,
// or if it granted a deleted backend (the cleaner removes those).
func (s *Store) DeleteGrant(ctx context.Context, agent, backend string, ev store.AuditEvent) error {
	return s.mutate(ctx, "delete grant", ev, func(txn *badger.Txn, now time.Time) error {
		_, live, err := liveGrant(txn, agent, backend)
		if err != nil {
			return err
		}
		if !live {
			return fmt.Errorf("grant for agent %q on backend %q: %w", agent, backend, store.ErrNotFound)
		}
		return deleteAll(txn, grantKey(agent, backend), grantByBackendKey(backend, agent))
	})
}

// CreateToken stores a minted token's hash. ErrNotFound if the agent does not
// exist, ErrExists if the id is taken.
func (s *Store) CreateToken(ctx context.Context, t *store.Token, ev store.AuditEvent) error {
	nt := *t
	if err := nt.Validate(); err != nil {
		return err
	}
	err := s.mutate(ctx, "create token", ev, func(txn *badger.Txn, now time.Time) error {
		a, found, err := getAgent(txn, nt.Agent)
		if err != nil {
			return err
		}
		if !found {
			return notFound("agent", nt.Agent)
		}
		// An orphan of a deleted agent does not hold its id: it is
		// overwritten, and the cleaner drops only its stale index entry.
		if _, live, err := liveToken(txn, nt.ID); err != nil {
			return err
		} else if live {
			return alreadyExists("token", nt.ID)
		}
		nt.CreatedAt = now
		if err := setJSON(txn, tokenKey(nt.ID), tokenRecordOf(&nt, a.Gen)); err != nil {
			return err
		}
		return txn.Set(tokenByAgentKey(nt.Agent, nt.ID), nil)
	})
	if err != nil {
		return err
	}
	*t = nt
	return nil
}

// RevokeToken marks a token revoked at at (now if zero) and returns it.
// Revoking a revoked token keeps the first revocation time.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, ev store.AuditEvent) (*store.Token, error) {
	var rec tokenRecord
	err := s.mutate(ctx, "revoke token", ev, func(txn *badger.Txn, now time.Time) error {
		var live bool
		var err error
		if rec, live, err = liveToken(txn, id); err != nil {
			return err
		}
		if !live {
			return notFound("token", id)
		}
		if !rec.RevokedAt.IsZero() {
			return nil
		}
		rec.RevokedAt = at.UTC()
		if at.IsZero() {
			rec.RevokedAt = now
		}
		return setJSON(txn, tokenKey(id), rec)
	})
	if err != nil {
		return nil, err
	}
	t := rec.token()
	return &t, nil
}
