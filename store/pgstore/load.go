package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// Load reads every backend with its current credential, and every agent,
// grant, token and IdP, from one repeatable-read snapshot, together with
// the revision that snapshot is consistent with: a transaction is visible in
// it exactly when its revision is at most Snapshot.Revision, since
// revisions are taken in commit order.
func (s *Store) Load(ctx context.Context) (*store.Snapshot, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	snap := &store.Snapshot{}
	err = s.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT revision FROM revision`).Scan(&snap.Revision); err != nil {
			return err
		}
		var err error
		if snap.Backends, err = docs[store.Backend](ctx, tx, `SELECT doc FROM backends ORDER BY name`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT c.doc, c.sealed FROM credentials c
			JOIN backends b ON b.name = c.backend AND b.credential_version = c.version ORDER BY c.backend`)
		if err != nil {
			return err
		}
		snap.Credentials, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Credential, error) {
			var c store.Credential
			var doc []byte
			if err := row.Scan(&doc, &c.Sealed); err != nil {
				return c, err
			}
			return c, json.Unmarshal(doc, &c)
		})
		if err != nil {
			return err
		}
		if len(snap.Credentials) != len(snap.Backends) {
			return fmt.Errorf("%d backends but %d current credentials: a credential version is missing from the database",
				len(snap.Backends), len(snap.Credentials))
		}
		if snap.Agents, err = docs[store.Agent](ctx, tx, `SELECT doc FROM agents ORDER BY name`); err != nil {
			return err
		}
		if snap.Grants, err = docs[store.Grant](ctx, tx, `SELECT doc FROM grants ORDER BY agent, backend`); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT doc, hash FROM tokens ORDER BY id`)
		if err != nil {
			return err
		}
		snap.Tokens, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Token, error) {
			var t store.Token
			var doc []byte
			if err := row.Scan(&doc, &t.Hash); err != nil {
				return t, err
			}
			return t, json.Unmarshal(doc, &t)
		})
		if err != nil {
			return err
		}
		snap.IdPs, err = docs[store.IdP](ctx, tx, `SELECT doc FROM idps ORDER BY name`)
		if err != nil {
			return err
		}
		snap.Passthrough, err = docs[store.Passthrough](ctx, tx, `SELECT doc FROM passthrough ORDER BY host`)
		return err
	})
	// Empty is nil, as in a Snapshot built by hand.
	snap.Backends, snap.Credentials, snap.Agents = orNil(snap.Backends), orNil(snap.Credentials), orNil(snap.Agents)
	snap.Grants, snap.Tokens, snap.IdPs = orNil(snap.Grants), orNil(snap.Tokens), orNil(snap.IdPs)
	snap.Passthrough = orNil(snap.Passthrough)
	if err != nil {
		return nil, translate("load", err)
	}
	return snap, nil
}

// docs decodes the single jsonb column of every row query returns.
func docs[T any](ctx context.Context, tx pgx.Tx, query string) ([]T, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
		var v T
		var doc []byte
		if err := row.Scan(&doc); err != nil {
			return v, err
		}
		return v, json.Unmarshal(doc, &v)
	})
}

func orNil[T any](xs []T) []T {
	if len(xs) == 0 {
		return nil
	}
	return xs
}
