package badgerstore

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// Load reads every backend with its current credential, and every agent,
// grant, token and IdP, and the revision they are at, from one consistent
// read transaction. Tokens of
// deleted agents and grants of deleted backends that still await cleanup
// are left out.
func (s *Store) Load(ctx context.Context) (*store.Snapshot, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	snap := &store.Snapshot{}
	err = s.db.View(func(txn *badger.Txn) error {
		var err error
		if snap.Revision, err = getRevision(txn, keyRevision); err != nil {
			return err
		}
		backendGens := map[string]uint64{}
		if err := eachJSON(txn, prefixBackend, func(_ []byte, b *backendRecord) error {
			snap.Backends = append(snap.Backends, b.Backend)
			backendGens[b.Name] = b.Gen
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
			if !found || rec.Gen != backendGens[b.Name] {
				return fmt.Errorf("backend %q: credential version %d is missing from the store", b.Name, b.CredentialVersion)
			}
			snap.Credentials = append(snap.Credentials, rec.credential())
		}
		agentGens := map[string]uint64{}
		if err := eachJSON(txn, prefixAgent, func(_ []byte, a *agentRecord) error {
			snap.Agents = append(snap.Agents, a.Agent)
			agentGens[a.Name] = a.Gen
			return nil
		}); err != nil {
			return err
		}
		if err := eachJSON(txn, prefixGrant, func(_ []byte, g *grantRecord) error {
			// Grants of a deleted backend likewise.
			if gen, ok := backendGens[g.Backend]; ok && gen == g.BackendGen {
				snap.Grants = append(snap.Grants, g.Grant)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := eachJSON(txn, prefixToken, func(_ []byte, r *tokenRecord) error {
			// Orphans of a deleted agent wait for the cleaner; they are
			// not tokens any more.
			if gen, ok := agentGens[r.Agent]; ok && gen == r.AgentGen {
				snap.Tokens = append(snap.Tokens, r.token())
			}
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
