package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// CreateBackend adds b with its first credential c (version 1 on both).
// ErrExists if the name is taken or a host belongs to another backend.
func (s *Store) CreateBackend(ctx context.Context, b *store.Backend, c *store.Credential, ev store.AuditEvent) (store.Revision, error) {
	nb := *b
	nb.Hosts = slices.Clone(b.Hosts)
	nb.Normalize()
	if err := nb.Validate(); err != nil {
		return 0, err
	}
	if err := checkCredential(c, nb.Name); err != nil {
		return 0, err
	}
	nc := *c
	nc.Backend = nb.Name
	nc.Sealed = slices.Clone(c.Sealed)
	rev, err := s.mutate(ctx, "create backend", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		if found, err := exists(ctx, tx, `SELECT true FROM backends WHERE name = $1`, nb.Name); err != nil || found {
			return nil, cmp(err, alreadyExists("backend", nb.Name))
		}
		nb.CreatedAt, nb.UpdatedAt, nb.CredentialSetAt = now, now, now
		nb.CredentialVersion = 1
		nc.Version, nc.CreatedAt = 1, now
		if err := putBackend(ctx, tx, &nb); err != nil {
			return nil, err
		}
		if err := claimHosts(ctx, tx, nb.Name, nb.Hosts); err != nil {
			return nil, err
		}
		if err := putCredential(ctx, tx, &nc); err != nil {
			return nil, err
		}
		return []store.Change{backendChange(nb), credentialChange(nc)}, nil
	})
	if err != nil {
		return 0, err
	}
	*b, *c = nb, nc
	return rev, nil
}

// cmp returns err if it is set, else alt.
func cmp(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

func backendChange(b store.Backend) store.Change {
	return store.Change{Kind: store.KindBackend, Name: b.Name, Backend: &b}
}

func credentialChange(c store.Credential) store.Change {
	return store.Change{Kind: store.KindCredential, Name: c.Backend, Credential: &c}
}

// checkCredential validates a credential for backend.
func checkCredential(c *store.Credential, backend string) error {
	if c == nil || len(c.Sealed) == 0 {
		return &store.FieldError{Field: "secret", Reason: "a sealed credential is required"}
	}
	if c.Backend != "" && c.Backend != backend {
		return &store.FieldError{Field: "backend", Value: c.Backend, Reason: fmt.Sprintf("the credential is for another backend than %q", backend)}
	}
	return nil
}

func putBackend(ctx context.Context, tx pgx.Tx, b *store.Backend) error {
	doc, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode backend %q: %w", b.Name, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO backends (name, credential_version, doc) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET credential_version = excluded.credential_version, doc = excluded.doc`,
		b.Name, b.CredentialVersion, doc)
	return err
}

func putCredential(ctx context.Context, tx pgx.Tx, c *store.Credential) error {
	doc, err := json.Marshal(c) // Sealed is json:"-": it goes in its own column
	if err != nil {
		return fmt.Errorf("encode credential of %q: %w", c.Backend, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO credentials (backend, version, sealed, doc) VALUES ($1, $2, $3, $4)`,
		c.Backend, c.Version, c.Sealed, doc)
	return err
}

// claimHosts registers hosts to backend, failing with ErrExists naming the
// host and its owner if another backend holds one.
func claimHosts(ctx context.Context, tx pgx.Tx, backend string, hosts []string) error {
	for _, h := range hosts {
		var owner string
		err := tx.QueryRow(ctx, `SELECT backend FROM hosts WHERE host = $1`, h).Scan(&owner)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO hosts (host, backend) VALUES ($1, $2)`, h, backend); err != nil {
				return err
			}
		case err != nil:
			return err
		case owner != backend:
			return fmt.Errorf("host %q belongs to backend %q: %w", h, owner, store.ErrExists)
		}
	}
	return nil
}

// getBackend reads a backend, locking its row until the transaction ends.
func getBackend(ctx context.Context, tx pgx.Tx, name string) (store.Backend, bool, error) {
	var b store.Backend
	found, err := getDoc(ctx, tx, &b, `SELECT doc FROM backends WHERE name = $1 FOR UPDATE`, name)
	return b, found, err
}

// UpdateBackend replaces b's configuration, keeping its credential, creation
// time and credential version; the host registrations follow the new list.
func (s *Store) UpdateBackend(ctx context.Context, b *store.Backend, ev store.AuditEvent) (store.Revision, error) {
	nb := *b
	nb.Hosts = slices.Clone(b.Hosts)
	nb.Normalize()
	if err := nb.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "update backend", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		old, found, err := getBackend(ctx, tx, nb.Name)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("backend", nb.Name)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM hosts WHERE backend = $1 AND NOT host = ANY($2)`, nb.Name, nb.Hosts); err != nil {
			return nil, err
		}
		if err := claimHosts(ctx, tx, nb.Name, nb.Hosts); err != nil {
			return nil, err
		}
		nb.CreatedAt, nb.UpdatedAt = old.CreatedAt, now
		nb.CredentialVersion, nb.CredentialSetAt = old.CredentialVersion, old.CredentialSetAt
		if err := putBackend(ctx, tx, &nb); err != nil {
			return nil, err
		}
		return []store.Change{backendChange(nb)}, nil
	})
	if err != nil {
		return 0, err
	}
	*b = nb
	return rev, nil
}

// RotateCredential stores c as the backend's next credential version and
// returns the updated backend. Earlier versions stay stored (sealed); Load
// serves only the current one.
func (s *Store) RotateCredential(ctx context.Context, c *store.Credential, ev store.AuditEvent) (*store.Backend, store.Revision, error) {
	if c == nil {
		return nil, 0, checkCredential(nil, "")
	}
	if err := store.ValidateName("backend", c.Backend); err != nil {
		return nil, 0, err
	}
	if err := checkCredential(c, c.Backend); err != nil {
		return nil, 0, err
	}
	nc := *c
	nc.Sealed = slices.Clone(c.Sealed)
	var b store.Backend
	rev, err := s.mutate(ctx, "rotate credential", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		var found bool
		var err error
		if b, found, err = getBackend(ctx, tx, nc.Backend); err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("backend", nc.Backend)
		}
		b.CredentialVersion++
		b.CredentialSetAt, b.UpdatedAt = now, now
		nc.Version, nc.CreatedAt = b.CredentialVersion, now
		if err := putCredential(ctx, tx, &nc); err != nil {
			return nil, err
		}
		if err := putBackend(ctx, tx, &b); err != nil {
			return nil, err
		}
		return []store.Change{backendChange(b), credentialChange(nc)}, nil
	})
	if err != nil {
		return nil, 0, err
	}
	*c = nc
	return &b, rev, nil
}

// DeleteBackend removes a backend with its hosts, credential versions and
// grants (foreign keys cascade) in one transaction.
func (s *Store) DeleteBackend(ctx context.Context, name string, ev store.AuditEvent) (store.Revision, error) {
	return s.mutate(ctx, "delete backend", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM backends WHERE name = $1`, name)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, notFound("backend", name)
		}
		return []store.Change{{Kind: store.KindBackend, Deleted: true, Name: name}}, nil
	})
}

// getDoc scans the single jsonb column of query's first row into v.
func getDoc(ctx context.Context, tx pgx.Tx, v any, query string, args ...any) (bool, error) {
	var doc []byte
	err := tx.QueryRow(ctx, query, args...).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(doc, v); err != nil {
		return false, fmt.Errorf("decode stored row: %w", err)
	}
	return true, nil
}

// exists reports whether query returns a row.
func exists(ctx context.Context, tx pgx.Tx, query string, args ...any) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, query, args...).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
