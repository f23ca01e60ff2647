package badgerstore

import (
	"bytes"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The cleaner removes what DeleteAgent and DeleteBackend left unreachable:
// the tokens of a deleted agent, and the credential versions and grants of
// a deleted backend (see Generations in records.go). Each delete writes a
// marker (xa/<agent>, xb/<backend>) holding the deleted generation, in the
// same transaction. The cleaner walks each of the owner's dependent key
// ranges in turn, in batches of cleanBatch keys, each batch its own
// transaction under the write lock, so neither a transaction limit nor a
// long pause of audit appends is ever hit; it drops the marker in the batch
// that finishes the last range. Open starts it, so a cleanup interrupted by
// a stop or a crash is finished at the next start.

// cleanBatch bounds the keys one cleanup transaction visits.
const cleanBatch = 1000

// cleanRetry is the wait before a failed cleanup is tried again.
const cleanRetry = 5 * time.Second

// kickCleaner wakes the cleaner after a delete wrote a marker.
func (s *Store) kickCleaner() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Store) cleanLoop() {
	defer s.bg.Done()
	for {
		var retry <-chan time.Time
		if err := s.cleanPending(); err != nil {
			s.log.Error("remove keys of deleted agents and backends; will retry", "err", err, "retry_in", cleanRetry)
			retry = time.After(cleanRetry)
		}
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-retry:
		}
	}
}

// cleanKind is one owner kind whose dependents the cleaner removes.
type cleanKind struct {
	marker []byte
	// deps are the owner's dependent key ranges, walked in this order.
	deps []dependents
}

// dependents is one range of an owner's dependent keys.
type dependents struct {
	prefix func(owner string) []byte
	// stale reports, inside txn, which keys to delete for the dependent at k
	// of owner (none if it belongs to a live owner of its generation).
	stale func(txn *badger.Txn, owner string, k []byte) ([][]byte, error)
}

var cleanKinds = []cleanKind{
	{marker: prefixAgentGone, deps: []dependents{
		{prefix: tokenByAgentPrefix, stale: staleToken},
	}},
	{marker: prefixBackendGone, deps: []dependents{
		{prefix: credPrefix, stale: staleCredential},
		{prefix: grantByBackendPrefix, stale: staleGrant},
	}},
}

// staleToken: the index entry ta/<owner>/<id> goes unless its token is a
// live token of owner; the token record goes with it if it is owner's.
func staleToken(txn *badger.Txn, owner string, k []byte) ([][]byte, error) {
	id := tailOf(k, tokenByAgentPrefix(owner))
	rec, live, err := liveToken(txn, id)
	if err != nil {
		return nil, err
	}
	if rec.Agent != owner {
		return [][]byte{k}, nil // absent, or the id was reused by another agent
	}
	if live {
		return nil, nil // a token of the re-created agent
	}
	return [][]byte{k, tokenKey(id)}, nil
}

// staleCredential: a version goes unless it belongs to the live backend's
// generation.
func staleCredential(txn *badger.Txn, owner string, k []byte) ([][]byte, error) {
	var rec credRecord
	found, err := getJSON(txn, k, &rec)
	if err != nil || !found {
		return nil, err
	}
	b, found, err := getBackend(txn, owner)
	if err != nil {
		return nil, err
	}
	if found && b.Gen == rec.Gen {
		return nil, nil
	}
	return [][]byte{k}, nil
}

// staleGrant: the index entry gb/<owner>/<agent> goes with its grant record
// unless the record grants the live backend of its generation (a grant made
// after owner was re-created); an entry without a record goes alone.
func staleGrant(txn *badger.Txn, owner string, k []byte) ([][]byte, error) {
	agent := tailOf(k, grantByBackendPrefix(owner))
	found, live, err := liveGrant(txn, agent, owner)
	switch {
	case err != nil:
		return nil, err
	case !found:
		return [][]byte{k}, nil
	case live:
		return nil, nil
	}
	return [][]byte{k, grantKey(agent, owner)}, nil
}

// cleanPending finishes every marked cleanup, or stops early when the
// store is closing.
func (s *Store) cleanPending() error {
	for _, kind := range cleanKinds {
		var owners []string
		err := s.db.View(func(txn *badger.Txn) error {
			for _, k := range keysWithPrefix(txn, kind.marker) {
				owners = append(owners, tailOf(k, kind.marker))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, owner := range owners {
			if err := s.cleanOwner(kind, owner); err != nil {
				return err
			}
		}
	}
	return nil
}

// cleanOwner removes owner's stale dependents batch by batch, range by
// range. The marker goes only if it still holds the generation read when the
// walk started; a newer delete of the same name (its keys may sort before
// the walk's position, in any range) makes the walk start over.
func (s *Store) cleanOwner(kind cleanKind, owner string) error {
	markerKey := append(bytes.Clone(kind.marker), owner...)
walk:
	for {
		var mark []byte
		err := s.db.View(func(txn *badger.Txn) error {
			var err error
			mark, _, err = getRaw(txn, markerKey)
			return err
		})
		if err != nil || mark == nil {
			return err
		}
		for i, dep := range kind.deps {
			// Only the batch that ends the last range may drop the marker.
			var finish []byte
			if i == len(kind.deps)-1 {
				finish = markerKey
			}
			prefix := dep.prefix(owner)
			for from := prefix; from != nil; {
				select {
				case <-s.stop:
					return nil
				default:
				}
				if s.cleanPaused.Load() {
					return nil
				}
				next, again, err := s.cleanBatch(dep, owner, prefix, from, finish, mark)
				if err != nil {
					return err
				}
				if again {
					continue walk
				}
				from = next
			}
		}
		s.cleaned.Add(1)
		return nil
	}
}

// cleanBatch visits up to cleanBatch keys of dep's range from key from on,
// in one transaction under the write lock. next is where the following
// batch starts, nil once the range is done. If finish is not nil, the batch
// that ends the range also deletes the marker at finish, provided it still
// holds mark; again means it did not and the walk must start over.
func (s *Store) cleanBatch(dep dependents, owner string, prefix, from, finish, mark []byte) (next []byte, again bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.db.Update(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		var keys [][]byte
		for it.Seek(from); it.Valid() && len(keys) < cleanBatch; it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		if it.Valid() {
			next = it.Item().KeyCopy(nil)
		}
		it.Close()
		for _, k := range keys {
			dead, err := dep.stale(txn, owner, k)
			if err != nil {
				return err
			}
			if err := deleteAll(txn, dead...); err != nil {
				return err
			}
		}
		if next != nil || finish == nil {
			return nil
		}
		cur, _, err := getRaw(txn, finish)
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, mark) {
			again = true
			return nil
		}
		return txn.Delete(finish)
	})
	if err == nil {
		s.dirty.Store(true)
	}
	return next, again, err
}

// getRaw reads the value at k; found is false (and v nil) if k is absent.
func getRaw(txn *badger.Txn, k []byte) (v []byte, found bool, err error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err = item.ValueCopy(nil)
	if v == nil {
		v = []byte{}
	}
	return v, err == nil, err
}
