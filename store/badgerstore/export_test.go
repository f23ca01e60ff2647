package badgerstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore/internal/auditvalue"
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

// AuditJSON returns the canonical JSON of record seq, nil if absent.
func (s *Store) AuditJSON(seq uint64) ([]byte, error) {
	v, err := s.RawGet(auditKey(seq))
	if err != nil || v == nil {
		return nil, err
	}
	return auditvalue.Decode(nil, v)
}

// SetAuditJSON stores js as record seq behind the store's back, compressed
// as the store writes it or, if uncompressed, as stores wrote it before.
func (s *Store) SetAuditJSON(seq uint64, js []byte, uncompressed bool) error {
	if !uncompressed {
		js = auditvalue.Append(nil, js)
	}
	return s.RawSet(auditKey(seq), js)
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

// IndexSeqs returns every sequence number the audit index under prefix
// (ea/<agent>/ or eb/<backend>/) lists, in key order.
func (s *Store) IndexSeqs(prefix string) (seqs []uint64, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if seqs, err = readGroup(seqs, it.Item()); err != nil {
				return err
			}
		}
		return nil
	})
	return seqs, err
}

// IndexKeys returns the keys under prefix.
func (s *Store) IndexKeys(prefix string) (keys [][]byte, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		keys = keysWithPrefix(txn, []byte(prefix))
		return nil
	})
	return keys, err
}

// IndexValue is the value of an audit index entry listing seqs (ascending).
func IndexValue(seqs []uint64) []byte { return appendGroup(nil, seqs) }

// SeqKey is prefix followed by seq, as index keys end.
func SeqKey(prefix string, seq uint64) []byte { return withSeq([]byte(prefix), seq) }

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
// The tokens get their agent's current generation.
func (s *Store) BulkTokens(tokens []store.Token) error {
	gens := map[string]uint64{}
	err := s.db.View(func(txn *badger.Txn) error {
		for _, t := range tokens {
			if _, ok := gens[t.Agent]; ok {
				continue
			}
			a, _, err := getAgent(txn, t.Agent)
			if err != nil {
				return err
			}
			gens[t.Agent] = a.Gen
		}
		return nil
	})
	if err != nil {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range tokens {
		t := &tokens[i]
		if err := setBatchJSON(wb, tokenKey(t.ID), tokenRecordOf(t, gens[t.Agent])); err != nil {
			return err
		}
		if err := wb.Set(tokenByAgentKey(t.Agent, t.ID), nil); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// BulkAgents creates agents, unchecked and without audit events, through
// a write batch: each gets the next generation, as CreateAgent gives it.
func (s *Store) BulkAgents(names []string) error {
	if len(names) == 0 {
		return nil
	}
	var first uint64
	err := s.db.Update(func(txn *badger.Txn) error {
		var err error
		if first, err = nextGen(txn); err != nil {
			return err
		}
		return txn.Set(keyGen, binary.BigEndian.AppendUint64(nil, first+uint64(len(names))-1))
	})
	if err != nil {
		return err
	}
	now := s.stamp()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i, name := range names {
		a := store.Agent{Name: name, CreatedAt: now, UpdatedAt: now}
		if err := setBatchJSON(wb, agentKey(name), agentRecord{Agent: a, Gen: first + uint64(i)}); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// BulkGrants grants backend to every agent named, unchecked and without
// audit events, through a write batch; the grants get the backend's
// current generation, as PutGrant gives them.
func (s *Store) BulkGrants(backend string, agents []string) error {
	var gen uint64
	err := s.db.View(func(txn *badger.Txn) error {
		b, _, err := getBackend(txn, backend)
		gen = b.Gen
		return err
	})
	if err != nil {
		return err
	}
	now := s.stamp()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, agent := range agents {
		g := store.Grant{Agent: agent, Backend: backend, CreatedAt: now}
		g.Normalize()
		if err := setBatchJSON(wb, grantKey(agent, backend), grantRecord{Grant: g, BackendGen: gen}); err != nil {
			return err
		}
		if err := wb.Set(grantByBackendKey(backend, agent), nil); err != nil {
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

// PauseCleaner holds the cleaner back from now on, so a test can leave a
// cleanup unfinished.
func (s *Store) PauseCleaner() { s.cleanPaused.Store(true) }

// ResumeCleaner lets a paused cleaner go on and wakes it.
func (s *Store) ResumeCleaner() {
	s.cleanPaused.Store(false)
	s.kickCleaner()
}

// Cleaned is how many cleanups of deleted agents and backends finished.
func (s *Store) Cleaned() uint64 { return s.cleaned.Load() }

// Dirty reports audit records committed but not yet synced.
func (s *Store) Dirty() bool { return s.dirty.Load() }

// MaxBatchCount is how many keys one transaction holds.
func (s *Store) MaxBatchCount() int64 { return s.db.MaxBatchCount() }

// BulkCredentials writes credential versions 2..n+1 of backend behind the
// store's back (the backend record still names its current version).
func (s *Store) BulkCredentials(backend string, n int) error {
	var gen uint64
	err := s.db.View(func(txn *badger.Txn) error {
		b, _, err := getBackend(txn, backend)
		gen = b.Gen
		return err
	})
	if err != nil {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for v := 2; v <= n+1; v++ {
		if err := setBatchJSON(wb, credKey(backend, v), credRecord{Backend: backend, Version: v, Sealed: []byte("old"), Gen: gen}); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// WithSmallValueLog makes Badger's value log files 1 MiB, so a test fills
// several quickly, and has any second level-0 table compacted, so Compact
// has work to do on a small store.
func WithSmallValueLog(o Options) Options {
	return withTune(o, func(b badger.Options) badger.Options {
		return b.WithValueLogFileSize(1 << 20).WithNumLevelZeroTables(1)
	})
}

// WithSmallMemTable opens with a 2 MiB memtable instead of 32 MiB: the
// same store, only quicker to open and limited to transactions of a few
// thousand keys, which the conformance suite never nears.
func WithSmallMemTable(o Options) Options {
	return withTune(o, func(b badger.Options) badger.Options { return b.WithMemTableSize(2 << 20) })
}

// WithInlineValues keeps every value in the LSM tree, as stores written
// before valueThreshold did.
func WithInlineValues(o Options) Options {
	return withTune(o, func(b badger.Options) badger.Options { return b.WithValueThreshold(1 << 20) })
}

func withTune(o Options, fn func(badger.Options) badger.Options) Options {
	prev := o.tune
	o.tune = func(b badger.Options) badger.Options {
		if prev != nil {
			b = prev(b)
		}
		return fn(b)
	}
	return o
}

// Compact pushes every table of the LSM tree into one level, so deletes
// meet what they delete and the value log learns what is dead. It does not
// flush the memtable; Close does.
func (s *Store) Compact() error { return s.db.Flatten(2) }

// CollectValueLog runs the value log collector once and returns how many
// files it rewrote.
func (s *Store) CollectValueLog() int { return s.collectValueLog() }

// CompactChanges drops the change history up to and including keepAfter,
// as the compactor does once the history outgrows its bound.
func (s *Store) CompactChanges(keepAfter store.Revision) error { return s.compactHistory(keepAfter) }

// ChangeFloor is the newest revision compacted out of the change history.
func (s *Store) ChangeFloor() store.Revision { return store.Revision(s.floor.Load()) }
