package badgerstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// Generations. Deleting an agent or backend must not cost time (or one
// transaction's worth of keys) proportional to its tokens, credential
// versions or grants. So every agent and backend carries a generation,
// unique across the store's life, that its dependents copy (an agent's
// tokens, a backend's credential versions and grants); a dependent whose
// owner is missing or has another generation is an orphan. Every read ignores orphans, so a delete
// makes them unreachable the moment it commits, and a re-created agent or
// backend of the same name never sees its predecessor's. The cleaner
// (cleanup.go) removes them afterwards. Records written before generations
// existed have generation 0 throughout. Grants written before schema
// version 3 had none although their backends may, so Open tags them
// (tagGrants).

// agentRecord is an Agent as stored, with its generation.
type agentRecord struct {
	store.Agent
	Gen uint64 `json:"gen,omitempty"`
}

// backendRecord is a Backend as stored, with its generation.
type backendRecord struct {
	store.Backend
	Gen uint64 `json:"gen,omitempty"`
}

// grantRecord is a Grant as stored, with the generation of its backend.
type grantRecord struct {
	store.Grant
	BackendGen uint64 `json:"backend_gen,omitempty"`
}

// nextGen takes the next generation number.
func nextGen(txn *badger.Txn) (uint64, error) {
	var last uint64
	item, err := txn.Get(keyGen)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return 0, err
	default:
		if err := item.Value(func(b []byte) error {
			if len(b) != 8 {
				return fmt.Errorf("decode %q: want 8 bytes, have %d", keyGen, len(b))
			}
			last = binary.BigEndian.Uint64(b)
			return nil
		}); err != nil {
			return 0, err
		}
	}
	last++
	return last, txn.Set(keyGen, binary.BigEndian.AppendUint64(nil, last))
}

// getAgent reads an agent record; found is false if there is none.
func getAgent(txn *badger.Txn, name string) (agentRecord, bool, error) {
	var r agentRecord
	found, err := getJSON(txn, agentKey(name), &r)
	return r, found, err
}

// getBackend reads a backend record; found is false if there is none.
func getBackend(txn *badger.Txn, name string) (backendRecord, bool, error) {
	var r backendRecord
	found, err := getJSON(txn, backendKey(name), &r)
	return r, found, err
}

// liveToken reads token id and reports whether it exists and belongs to a
// live agent of the generation it was minted for.
func liveToken(txn *badger.Txn, id string) (tokenRecord, bool, error) {
	var rec tokenRecord
	found, err := getJSON(txn, tokenKey(id), &rec)
	if err != nil || !found {
		return rec, false, err
	}
	a, found, err := getAgent(txn, rec.Agent)
	if err != nil || !found {
		return rec, false, err
	}
	return rec, a.Gen == rec.AgentGen, nil
}

// liveGrant reports whether the grant of agent on backend has a record
// (found) and whether that grants the live backend of its generation (live).
func liveGrant(txn *badger.Txn, agent, backend string) (found, live bool, err error) {
	var rec grantRecord
	found, err = getJSON(txn, grantKey(agent, backend), &rec)
	if err != nil || !found {
		return found, false, err
	}
	b, ok, err := getBackend(txn, backend)
	if err != nil || !ok {
		return true, false, err
	}
	return true, b.Gen == rec.BackendGen, nil
}

// credRecord is a Credential as stored: the domain type hides Sealed from
// JSON so it never reaches the admin API, but it must reach the disk.
type credRecord struct {
	Backend   string    `json:"backend"`
	Version   int       `json:"version"`
	Sealed    []byte    `json:"sealed"`
	CreatedAt time.Time `json:"created_at"`
	Gen       uint64    `json:"gen,omitempty"` // the backend's generation
}

func (r credRecord) credential() store.Credential {
	return store.Credential{Backend: r.Backend, Version: r.Version, Sealed: r.Sealed, CreatedAt: r.CreatedAt}
}

// tokenRecord is a Token as stored, hash included (see credRecord).
type tokenRecord struct {
	ID        string    `json:"id"`
	Agent     string    `json:"agent"`
	Label     string    `json:"label,omitempty"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	AgentGen  uint64    `json:"agent_gen,omitempty"`
}

func tokenRecordOf(t *store.Token, agentGen uint64) tokenRecord {
	return tokenRecord{ID: t.ID, Agent: t.Agent, Label: t.Label, Hash: t.Hash,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, AgentGen: agentGen}
}

func (r tokenRecord) token() store.Token {
	return store.Token{ID: r.ID, Agent: r.Agent, Label: r.Label, Hash: r.Hash,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt}
}

// getJSON decodes the value at k into v; found is false if k is absent.
func getJSON(txn *badger.Txn, k []byte, v any) (found bool, err error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error { return decode(k, b, v) })
}

func decode(k, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %q: %w", k, err)
	}
	return nil
}

func setJSON(txn *badger.Txn, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", k, err)
	}
	return txn.Set(k, b)
}

// exists reports whether k is present.
func exists(txn *badger.Txn, k []byte) (bool, error) {
	_, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// getString reads a small string value (an index entry's target).
func getString(txn *badger.Txn, k []byte) (string, bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err == nil, err
}

// keysWithPrefix returns copies of every key under prefix, values unread.
func keysWithPrefix(txn *badger.Txn, prefix []byte) [][]byte {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys
}

// eachJSON decodes every value under prefix into a fresh T and passes it to fn.
func eachJSON[T any](txn *badger.Txn, prefix []byte, fn func(k []byte, v *T) error) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		var v T
		if err := item.Value(func(b []byte) error { return decode(item.Key(), b, &v) }); err != nil {
			return err
		}
		if err := fn(item.Key(), &v); err != nil {
			return err
		}
	}
	return nil
}

func notFound(kind, name string) error { return fmt.Errorf("%s %q: %w", kind, name, store.ErrNotFound) }

func alreadyExists(kind, name string) error {
	return fmt.Errorf("%s %q: %w", kind, name, store.ErrExists)
}

// mustExist fails with ErrNotFound naming the object if k is absent.
func mustExist(txn *badger.Txn, k []byte, kind, name string) error {
	ok, err := exists(txn, k)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(kind, name)
	}
	return nil
}

// mustNotExist fails with ErrExists naming the object if k is present.
func mustNotExist(txn *badger.Txn, k []byte, kind, name string) error {
	ok, err := exists(txn, k)
	if err != nil {
		return err
	}
	if ok {
		return alreadyExists(kind, name)
	}
	return nil
}

// deleteAll deletes every key given.
func deleteAll(txn *badger.Txn, keys ...[]byte) error {
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
