package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	rev, err := s.mutate(ctx, "create passthrough", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		if found, err := exists(ctx, tx, `SELECT true FROM passthrough WHERE host = $1`, np.Host); err != nil || found {
			return nil, cmp(err, alreadyExists("passthrough host", np.Host))
		}
		np.CreatedAt = now
		doc, err := json.Marshal(&np)
		if err != nil {
			return nil, fmt.Errorf("encode passthrough %q: %w", np.Host, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO passthrough (host, doc) VALUES ($1, $2)`, np.Host, doc); err != nil {
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
	return s.mutate(ctx, "delete passthrough", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM passthrough WHERE host = $1`, host)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, notFound("passthrough host", host)
		}
		return []store.Change{{Kind: store.KindPassthrough, Deleted: true, Name: host}}, nil
	})
}
