package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// CreateAgent adds an agent. ErrNotFound if its IdP does not exist, ErrExists
// if the name is taken or another agent holds the same IdP subject.
func (s *Store) CreateAgent(ctx context.Context, a *store.Agent, ev store.AuditEvent) (store.Revision, error) {
	na := *a
	na.Normalize()
	if err := na.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "create agent", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		if err := mustNotExist(txn, agentKey(na.Name), "agent", na.Name); err != nil {
			return nil, err
		}
		if err := bindSubject(txn, &na); err != nil {
			return nil, err
		}
		gen, err := nextGen(txn)
		if err != nil {
			return nil, err
		}
		na.CreatedAt, na.UpdatedAt = now, now
		if err := setJSON(txn, agentKey(na.Name), agentRecord{Agent: na, Gen: gen}); err != nil {
			return nil, err
		}
		return []store.Change{agentPut(na)}, nil
	})
	if err != nil {
		return 0, err
	}
	*a = na
	return rev, nil
}

// bindSubject checks a's IdP exists and claims its subject index entry.
func bindSubject(txn *badger.Txn, a *store.Agent) error {
	if a.IdP == "" {
		return nil
	}
	if err := mustExist(txn, idpKey(a.IdP), "idp", a.IdP); err != nil {
		return err
	}
	owner, ok, err := getString(txn, subjectKey(a.IdP, a.Subject))
	if err != nil {
		return err
	}
	if ok && owner != a.Name {
		return fmt.Errorf("subject %q of idp %q belongs to agent %q: %w", a.Subject, a.IdP, owner, store.ErrExists)
	}
	return txn.Set(subjectKey(a.IdP, a.Subject), []byte(a.Name))
}

// UpdateAgent replaces an agent's settings, keeping its creation time.
func (s *Store) UpdateAgent(ctx context.Context, a *store.Agent, ev store.AuditEvent) (store.Revision, error) {
	na := *a
	na.Normalize()
	if err := na.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "update agent", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		old, found, err := getAgent(txn, na.Name)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("agent", na.Name)
		}
		if old.IdP != "" && (old.IdP != na.IdP || old.Subject != na.Subject) {
			if err := txn.Delete(subjectKey(old.IdP, old.Subject)); err != nil {
				return nil, err
			}
		}
		if err := bindSubject(txn, &na); err != nil {
			return nil, err
		}
		na.CreatedAt, na.UpdatedAt = old.CreatedAt, now
		if err := setJSON(txn, agentKey(na.Name), agentRecord{Agent: na, Gen: old.Gen}); err != nil {
			return nil, err
		}
		return []store.Change{agentPut(na)}, nil
	})
	if err != nil {
		return 0, err
	}
	*a = na
	return rev, nil
}

// DeleteAgent removes an agent, its subject binding and its grants in one
// transaction, whatever the number of its tokens: the tokens carry the
// agent's generation, so they are unreachable from the commit on (every read
// ignores a token whose agent is gone or re-created), and the cleaner
// removes their keys afterwards in bounded batches (cleanup.go). Grants are
// bounded by the number of backends, so they go here, orphans of deleted
// backends among them.
func (s *Store) DeleteAgent(ctx context.Context, name string, ev store.AuditEvent) (store.Revision, error) {
	rev, err := s.mutate(ctx, "delete agent", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		a, found, err := getAgent(txn, name)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("agent", name)
		}
		if err := txn.Delete(agentKey(name)); err != nil {
			return nil, err
		}
		if a.IdP != "" {
			if err := txn.Delete(subjectKey(a.IdP, a.Subject)); err != nil {
				return nil, err
			}
		}
		gp := grantPrefix(name)
		for _, k := range keysWithPrefix(txn, gp) {
			if err := deleteAll(txn, k, grantByBackendKey(tailOf(k, gp), name)); err != nil {
				return nil, err
			}
		}
		if err := txn.Set(agentGoneKey(name), binary.BigEndian.AppendUint64(nil, a.Gen)); err != nil {
			return nil, err
		}
		// One change: a projection drops the agent's grants and tokens itself.
		return []store.Change{deleted(store.KindAgent, name)}, nil
	})
	if err != nil {
		return 0, err
	}
	s.kickCleaner()
	return rev, nil
}

// CreateIdP adds an identity provider; ErrExists if the name is taken.
func (s *Store) CreateIdP(ctx context.Context, p *store.IdP, ev store.AuditEvent) (store.Revision, error) {
	np := *p
	np.Normalize()
	if err := np.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "create idp", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		if err := mustNotExist(txn, idpKey(np.Name), "idp", np.Name); err != nil {
			return nil, err
		}
		np.CreatedAt = now
		if err := setJSON(txn, idpKey(np.Name), &np); err != nil {
			return nil, err
		}
		return []store.Change{idpPut(np)}, nil
	})
	if err != nil {
		return 0, err
	}
	*p = np
	return rev, nil
}

// DeleteIdP removes an identity provider; ErrConflict naming the agents that
// still use it.
func (s *Store) DeleteIdP(ctx context.Context, name string, ev store.AuditEvent) (store.Revision, error) {
	return s.mutate(ctx, "delete idp", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		if err := mustExist(txn, idpKey(name), "idp", name); err != nil {
			return nil, err
		}
		var users []string
		opts := badger.DefaultIteratorOptions
		opts.Prefix = subjectPrefix(name)
		it := txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return nil, err
			}
			users = append(users, string(v))
		}
		it.Close()
		if len(users) > 0 {
			const show = 10
			list := users
			if len(list) > show {
				list = list[:show]
			}
			more := ""
			if len(users) > show {
				more = fmt.Sprintf(" and %d more", len(users)-show)
			}
			return nil, fmt.Errorf("idp %q is used by agent(s) %s%s; remove them or move them to another idp first: %w",
				name, strings.Join(list, ", "), more, store.ErrConflict)
		}
		if err := txn.Delete(idpKey(name)); err != nil {
			return nil, err
		}
		return []store.Change{deleted(store.KindIdP, name)}, nil
	})
}
