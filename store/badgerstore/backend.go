package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

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
	rev, err := s.mutate(ctx, "create backend", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		if err := mustNotExist(txn, backendKey(nb.Name), "backend", nb.Name); err != nil {
			return nil, err
		}
		if err := claimHosts(txn, nb.Name, nb.Hosts); err != nil {
			return nil, err
		}
		gen, err := nextGen(txn)
		if err != nil {
			return nil, err
		}
		nb.CreatedAt, nb.UpdatedAt, nb.CredentialSetAt = now, now, now
		nb.CredentialVersion = 1
		nc.Version, nc.CreatedAt = 1, now
		if err := setJSON(txn, backendKey(nb.Name), backendRecord{Backend: nb, Gen: gen}); err != nil {
			return nil, err
		}
		if err := setJSON(txn, credKey(nb.Name, 1), credRecord{Backend: nc.Backend, Version: 1, Sealed: nc.Sealed, CreatedAt: now, Gen: gen}); err != nil {
			return nil, err
		}
		return []store.Change{backendPut(nb), credentialPut(nc)}, nil
	})
	if err != nil {
		return 0, err
	}
	*b, *c = nb, nc
	return rev, nil
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

// claimHosts registers hosts to backend, failing with ErrExists naming the
// host and its owner if another backend holds one.
func claimHosts(txn *badger.Txn, backend string, hosts []string) error {
	for _, h := range hosts {
		owner, ok, err := getString(txn, hostKey(h))
		if err != nil {
			return err
		}
		if ok && owner != backend {
			return fmt.Errorf("host %q belongs to backend %q: %w", h, owner, store.ErrExists)
		}
		if err := txn.Set(hostKey(h), []byte(backend)); err != nil {
			return err
		}
	}
	return nil
}

// UpdateBackend replaces b's configuration, keeping its credential, creation
// time and credential version; host index entries follow the new host list.
func (s *Store) UpdateBackend(ctx context.Context, b *store.Backend, ev store.AuditEvent) (store.Revision, error) {
	nb := *b
	nb.Hosts = slices.Clone(b.Hosts)
	nb.Normalize()
	if err := nb.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "update backend", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		old, found, err := getBackend(txn, nb.Name)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("backend", nb.Name)
		}
		for _, h := range old.Hosts {
			if !slices.Contains(nb.Hosts, h) {
				if err := txn.Delete(hostKey(h)); err != nil {
					return nil, err
				}
			}
		}
		if err := claimHosts(txn, nb.Name, nb.Hosts); err != nil {
			return nil, err
		}
		nb.CreatedAt, nb.UpdatedAt = old.CreatedAt, now
		nb.CredentialVersion, nb.CredentialSetAt = old.CredentialVersion, old.CredentialSetAt
		if err := setJSON(txn, backendKey(nb.Name), backendRecord{Backend: nb, Gen: old.Gen}); err != nil {
			return nil, err
		}
		return []store.Change{backendPut(nb)}, nil
	})
	if err != nil {
		return 0, err
	}
	*b = nb
	return rev, nil
}

// RotateCredential stores c as the backend's next credential version and
// returns the updated backend. Earlier versions stay on disk; Load serves
// only the current one.
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
	var b store.Backend
	rev, err := s.mutate(ctx, "rotate credential", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		rec, found, err := getBackend(txn, nc.Backend)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("backend", nc.Backend)
		}
		b = rec.Backend
		b.CredentialVersion++
		b.CredentialSetAt, b.UpdatedAt = now, now
		nc.Version, nc.CreatedAt = b.CredentialVersion, now
		// The version key may hold an orphan of a deleted backend of the
		// same name; this overwrites it with the current generation.
		if err := setJSON(txn, credKey(b.Name, nc.Version), credRecord{Backend: b.Name, Version: nc.Version, Sealed: nc.Sealed, CreatedAt: now, Gen: rec.Gen}); err != nil {
			return nil, err
		}
		if err := setJSON(txn, backendKey(b.Name), backendRecord{Backend: b, Gen: rec.Gen}); err != nil {
			return nil, err
		}
		return []store.Change{backendPut(b), credentialPut(nc)}, nil
	})
	if err != nil {
		return nil, 0, err
	}
	*c = nc
	return &b, rev, nil
}

// DeleteBackend removes a backend and its host index entries in one small
// transaction, whatever the number of its credential versions (one per
// rotation) and grants (one per agent granted it). Both carry the backend's
// generation: they are unreachable from the commit on, a re-created backend
// of the same name does not inherit them, and the cleaner removes them
// afterwards in bounded batches (cleanup.go).
func (s *Store) DeleteBackend(ctx context.Context, name string, ev store.AuditEvent) (store.Revision, error) {
	rev, err := s.mutate(ctx, "delete backend", ev, func(txn *badger.Txn, now time.Time) ([]store.Change, error) {
		b, found, err := getBackend(txn, name)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("backend", name)
		}
		if err := txn.Delete(backendKey(name)); err != nil {
			return nil, err
		}
		for _, h := range b.Hosts {
			if err := txn.Delete(hostKey(h)); err != nil {
				return nil, err
			}
		}
		if err := txn.Set(backendGoneKey(name), binary.BigEndian.AppendUint64(nil, b.Gen)); err != nil {
			return nil, err
		}
		return []store.Change{deleted(store.KindBackend, name)}, nil
	})
	if err != nil {
		return 0, err
	}
	s.kickCleaner()
	return rev, nil
}
