package badgerstore

import (
	"context"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// CreatePassthrough lists a host for pass-through tunnels; ErrExists if it
// is listed already.
func (s *Store) CreatePassthrough(ctx context.Context, p *store.Passthrough, ev store.AuditEvent) (store.Revision, error) {
	np := *p
	np.Normalize()
	if err := np.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "create passthrough", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		if err := mustNotExist(txn, passthroughKey(np.Host), "passthrough host", np.Host); err != nil {
			return nil, err
		}
		np.CreatedAt = now
		if err := setJSON(txn, passthroughKey(np.Host), &np); err != nil {
			return nil, err
		}
		cp := np
		return []store.Change{{Kind: store.KindPassthrough, Name: np.Host, Passthrough: &cp}}, nil
	})
	if err != nil {
		return 0, err
	}
	*p = np
	return rev, nil
}

// DeletePassthrough removes a listed host; ErrNotFound if it is not listed.
func (s *Store) DeletePassthrough(ctx context.Context, host string, ev store.AuditEvent) (store.Revision, error) {
	host = store.NormalizeHost(host)
	return s.mutate(ctx, "delete passthrough", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		if err := mustExist(txn, passthroughKey(host), "passthrough host", host); err != nil {
			return nil, err
		}
		if err := txn.Delete(passthroughKey(host)); err != nil {
			return nil, err
		}
		return []store.Change{deleted(store.KindPassthrough, host)}, nil
	})
}
