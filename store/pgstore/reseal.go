package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// Ping checks that the database answers, for readiness and status.
func (s *Store) Ping(ctx context.Context) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if err := s.pool.Ping(ctx); err != nil {
		return translate("ping database", err)
	}
	return nil
}

// Reseal replaces every sealed value the database holds (each version of
// each backend's credential, and the CA key) with reseal's result, in one
// configuration transaction with the admin event ev: a replica sees either
// all old or all new ciphertext, never a mix. reseal gets ciphertext and
// must return ciphertext (it opens with the old identity and seals to the
// new); a result that is not age ciphertext aborts the whole change with
// ErrInvalid. The change set carries each backend's current credential, so
// projections pick up the new ciphertext. It returns how many values it
// resealed.
func (s *Store) Reseal(ctx context.Context, reseal func(sealed []byte) ([]byte, error), ev store.AuditEvent) (store.Revision, int, error) {
	var n int
	rev, err := s.mutate(ctx, "reseal", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		n = 0
		rows, err := tx.Query(ctx, `SELECT c.backend, c.version, c.sealed, c.doc, b.credential_version = c.version
			FROM credentials c JOIN backends b ON b.name = c.backend ORDER BY c.backend, c.version FOR UPDATE OF c`)
		if err != nil {
			return nil, err
		}
		type cred struct {
			c       store.Credential
			current bool
		}
		creds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (cred, error) {
			var c cred
			var doc []byte
			if err := row.Scan(&c.c.Backend, &c.c.Version, &c.c.Sealed, &doc, &c.current); err != nil {
				return c, err
			}
			return c, json.Unmarshal(doc, &c.c)
		})
		if err != nil {
			return nil, err
		}
		var changes []store.Change
		for _, c := range creds {
			sealed, err := resealOne(reseal, c.c.Sealed, fmt.Sprintf("credential version %d of backend %q", c.c.Version, c.c.Backend))
			if err != nil {
				return nil, err
			}
			if _, err := tx.Exec(ctx, `UPDATE credentials SET sealed = $3 WHERE backend = $1 AND version = $2`, c.c.Backend, c.c.Version, sealed); err != nil {
				return nil, err
			}
			n++
			if c.current {
				nc := c.c
				nc.Sealed = sealed
				changes = append(changes, credentialChange(nc))
			}
		}
		var key []byte
		err = tx.QueryRow(ctx, `SELECT sealed_key FROM ca FOR UPDATE`).Scan(&key)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return nil, err
		default:
			sealed, err := resealOne(reseal, key, "the CA key")
			if err != nil {
				return nil, err
			}
			if _, err := tx.Exec(ctx, `UPDATE ca SET sealed_key = $1`, sealed); err != nil {
				return nil, err
			}
			n++
		}
		return changes, nil
	})
	if err != nil {
		return 0, 0, err
	}
	return rev, n, nil
}

func resealOne(reseal func([]byte) ([]byte, error), old []byte, what string) ([]byte, error) {
	sealed, err := reseal(old)
	if err != nil {
		return nil, fmt.Errorf("reseal %s: %w", what, err)
	}
	for _, h := range ageHeaders {
		if bytes.HasPrefix(sealed, h) {
			return sealed, nil
		}
	}
	return nil, &store.FieldError{Field: "sealed value", Reason: fmt.Sprintf("resealing %s did not give age ciphertext; nothing was changed", what)}
}
