package badgerstore

import (
	"github.com/dgraph-io/badger/v4"
)

// tagGrants upgrades grants written before schema version 3, which carry no
// generation, to carry their backend's. Such a store deleted a backend's
// grants with it, so every grant there is live, but its backend may have a
// generation already (generations came before version 3): untagged, the
// grant would read as an orphan. It runs at Open, before anything else
// writes, in transactions of cleanBatch grants, and tagging a tagged grant
// changes nothing, so an upgrade cut short is simply run again.
func (s *Store) tagGrants() error {
	gens := map[string]uint64{}
	err := s.db.View(func(txn *badger.Txn) error {
		return eachJSON(txn, prefixBackend, func(_ []byte, b *backendRecord) error {
			gens[b.Name] = b.Gen
			return nil
		})
	})
	if err != nil {
		return err
	}
	for from := prefixGrant; from != nil; {
		err := s.db.Update(func(txn *badger.Txn) error {
			var next []byte
			var keys [][]byte
			var recs []grantRecord
			opts := badger.DefaultIteratorOptions
			opts.PrefetchValues = false
			opts.Prefix = prefixGrant
			it := txn.NewIterator(opts)
			for it.Seek(from); it.Valid(); it.Next() {
				item := it.Item()
				if len(keys) == cleanBatch {
					next = item.KeyCopy(nil)
					break
				}
				var g grantRecord
				if err := item.Value(func(b []byte) error { return decode(item.Key(), b, &g) }); err != nil {
					it.Close()
					return err
				}
				keys = append(keys, item.KeyCopy(nil))
				recs = append(recs, g)
			}
			it.Close()
			from = next
			for i, g := range recs {
				gen, ok := gens[g.Backend]
				if !ok || gen == g.BackendGen {
					continue
				}
				g.BackendGen = gen
				if err := setJSON(txn, keys[i], g); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
