package badgerstore

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// Load reads every backend with its current credential, and every agent,
// grant, token and IdP, from one consistent read transaction.
func (s *Store) Load(ctx context.Context) (*store.Snapshot, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	snap := &store.Snapshot{}
	err = s.db.View(func(txn *badger.Txn) error {
		if err := eachJSON(txn, prefixBackend, func(_ []byte, b *store.Backend) error {
			snap.Backends = append(snap.Backends, *b)
			return nil
		}); err != nil {
			return err
		}
		for _, b := range snap.Backends {
			var rec credRecord
			found, err := getJSON(txn, credKey(b.Name, b.CredentialVersion), &rec)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("backend %q: credential version %d is missing from the store", b.Name, b.CredentialVersion)
			}
			snap.Credentials = append(snap.Credentials, rec.credential())
		}
		if err := eachJSON(txn, prefixAgent, func(_ []byte, a *store.Agent) error {
			snap.Agents = append(snap.Agents, *a)
			return nil
		}); err != nil {
			return err
		}
		if err := eachJSON(txn, prefixGrant, func(_ []byte, g *store.Grant) error {
			snap.Grants = append(snap.Grants, *g)
			return nil
		}); err != nil {
			return err
		}
		if err := eachJSON(txn, prefixToken, func(_ []byte, r *tokenRecord) error {
			snap.Tokens = append(snap.Tokens, r.token())
			return nil
		}); err != nil {
			return err
		}
		return eachJSON(txn, prefixIdP, func(_ []byte, p *store.IdP) error {
			snap.IdPs = append(snap.IdPs, *p)
			return nil
		})
	})
	if err != nil {
		return nil, s.translate("load", err)
	}
	return snap, nil
}
