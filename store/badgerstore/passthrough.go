package badgerstore

import (
	"context"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/dgraph-io/badger/v4"
)

// CreatePassthrough lists a host for pass-through tunnels; ErrExists if it
// is listed already.
func (s *Store) CreatePassthrough(ctx context.Context, p *store.Passthrough, ev store.AuditEvent) error {
	np := *p
	np.Normalize()
	if err := np.Validate(); err != nil {
		return err
	}
	err := s.mutate(ctx, "create passthrough", ev, func(txn *badger.Txn, now time.Time) error {
		if err := mustNotExist(txn, passthroughKey(np.Host), "passthrough host", np.Host); err != nil {
			return err
		}
		np.CreatedAt = now
		return setJSON(txn, passthroughKey(np.Host), &np)
	})
	if err != nil {
		return err
	}
	*p = np
	return nil
}

// DeletePassthrough removes a listed host; ErrNotFound if it is not listed.
func (s *Store) DeletePassthrough(ctx context.Context, host string, ev store.AuditEvent) error {
	host = store.NormalizeHost(host)
	return s.mutate(ctx, "delete passthrough", ev, func(txn *badger.Txn, now time.Time) error {
		if err := mustExist(txn, passthroughKey(host), "passthrough host", host); err != nil {
			return err
		}
		return txn.Delete(passthroughKey(host))
	})
}
