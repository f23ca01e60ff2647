package badgerstore

import (
	"encoding/json"
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// Test-only access to the raw keys, for tampering and bulk loading.

var (
	AuditKey       = auditKey
	SchemaKey      = keySchema
	AuditAnchorKey = keyAuditAnchor
)

// RawGet returns the value at k, nil if absent.
func (s *Store) RawGet(k []byte) ([]byte, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	return v, err
}

// RawSet writes k behind the store's back.
func (s *Store) RawSet(k, v []byte) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) })
}

// RawDelete deletes k behind the store's back.
func (s *Store) RawDelete(k []byte) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Delete(k) })
}

// CountPrefix counts keys under prefix.
func (s *Store) CountPrefix(prefix string) (n int, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		n = len(keysWithPrefix(txn, []byte(prefix)))
		return nil
	})
	return n, err
}

// CredentialVersion reads one stored credential version, current or not.
func (s *Store) CredentialVersion(backend string, version int) (store.Credential, bool, error) {
	var rec credRecord
	var found bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		found, err = getJSON(txn, credKey(backend, version), &rec)
		return err
	})
	return rec.credential(), found, err
}

// BulkTokens writes tokens with their index entries, unchecked and without
// audit events, through a write batch: fixtures for large stores.
func (s *Store) BulkTokens(tokens []store.Token) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range tokens {
		t := &tokens[i]
		if err := setBatchJSON(wb, tokenKey(t.ID), tokenRecordOf(t)); err != nil {
			return err
		}
		if err := wb.Set(tokenByAgentKey(t.Agent, t.ID), nil); err != nil {
			return err
		}
	}
	return wb.Flush()
}

func setBatchJSON(wb *badger.WriteBatch, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return wb.Set(k, b)
}
