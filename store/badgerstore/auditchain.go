package badgerstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// pruneBatch bounds how many records one prune transaction removes, so a
// prune never hits Badger's transaction limit and appends wait only briefly.
const pruneBatch = 2000

func tampered(seq uint64, format string, args ...any) error {
	return fmt.Errorf("audit seq %d: %s: %w", seq, fmt.Sprintf(format, args...), store.ErrAuditTampered)
}

// VerifyAudit walks the audit hash chain from the oldest kept record (whose
// PrevHash must equal the prune anchor) to the newest, and returns how many
// records it checked. A failure wraps store.ErrAuditTampered and names the
// first bad seq: an edited record fails its hash, a removed record leaves a
// gap, a reordered record sits under another seq or breaks the link. It then
// checks that the agent and backend indexes list exactly the records naming
// them, so filtered queries see what the chain holds; a failure there names
// the index.
func (s *Store) VerifyAudit(ctx context.Context) (checked int, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	// Take the head and the read snapshot together, so records appended
	// meanwhile are neither seen nor expected.
	s.mu.Lock()
	head := s.head
	txn := s.db.NewTransaction(false)
	s.mu.Unlock()
	defer txn.Discard()

	var anchor auditHead
	if _, err := getJSON(txn, keyAuditAnchor, &anchor); err != nil {
		return 0, s.translate("verify audit", err)
	}
	prints, err := newIndexPrints()
	if err != nil {
		return 0, fmt.Errorf("verify audit: %w", err)
	}
	want, prev := anchor.Seq+1, anchor.Hash
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefixAudit
	it := txn.NewIterator(opts)
	closeIt := sync.OnceFunc(it.Close)
	defer closeIt()
	names := nameCache{} // s.names is the appenders', under s.mu
	for it.Rewind(); it.Valid(); it.Next() {
		if checked%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return checked, err
			}
		}
		item := it.Item()
		seq := seqOf(item.Key())
		if seq != want {
			return checked, tampered(want, "record missing (next stored record is seq %d)", seq)
		}
		var ev store.AuditEvent
		if err := item.Value(func(b []byte) error { return decodeEvent(item.Key(), b, &ev) }); err != nil {
			return checked, tampered(seq, "record unreadable: %v", err)
		}
		if ev.Seq != seq {
			return checked, tampered(seq, "record claims seq %d (moved or reordered)", ev.Seq)
		}
		if ev.PrevHash != prev {
			return checked, tampered(seq, "previous-hash link broken (a record before it was removed, replaced or reordered)")
		}
		stored := ev.Hash
		ev.Hash = ""
		canonical, err := json.Marshal(&ev)
		if err != nil {
			return checked, fmt.Errorf("verify audit: %w", err)
		}
		if chainHash(prev, canonical) != stored {
			return checked, tampered(seq, "hash mismatch (record edited)")
		}
		prev, want = stored, seq+1
		checked++
		prints.record(names, &ev)
	}
	closeIt()
	if want-1 < head.Seq {
		return checked, tampered(want, "records %d to %d missing from the end", want, head.Seq)
	}
	if head.Seq > 0 && prev != head.Hash {
		return checked, tampered(head.Seq, "newest record does not match the one this process appended")
	}
	if err := prints.scan(ctx, txn, anchor.Seq, want-1); err != nil {
		return checked, err
	}
	return checked, nil
}

// PruneAudit removes the oldest audit records, in order, while their Time is
// before the given time; it stops at the first record at or after it, so the
// kept records stay one unbroken chain. Each batch of up to pruneBatch
// records commits in its own transaction together with the anchor
// (meta/audit-anchor: seq and hash of the last removed record) that
// VerifyAudit starts from. The records' disk space comes back as compaction
// and the value log collector get to it (valuelog.go), not at once.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (removed int, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		n, done, err := s.pruneBatch(before)
		removed += n
		if err != nil {
			return removed, s.translate("prune audit", err)
		}
		if done {
			if removed > 0 {
				s.kickCollector()
			}
			return removed, nil
		}
	}
}

// pruneBatch removes up to pruneBatch records; done reports that no more are due.
func (s *Store) pruneBatch(before time.Time) (n int, done bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.db.Update(func(txn *badger.Txn) error {
		var dead [][]byte
		indexes := map[string]bool{} // the pruned records' index prefixes
		var anchor auditHead
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixAudit
		it := txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			if n == pruneBatch {
				break
			}
			item := it.Item()
			var ev store.AuditEvent
			if err := item.Value(func(b []byte) error { return decodeEvent(item.Key(), b, &ev) }); err != nil {
				it.Close()
				return err
			}
			if !ev.Time.Before(before) {
				done = true
				break
			}
			dead = append(dead, item.KeyCopy(nil))
			if s.names.indexable(ev.Agent) {
				indexes[string(auditByAgentPrefix(ev.Agent))] = true
			}
			if s.names.indexable(ev.Backend) {
				indexes[string(auditByBackendPrefix(ev.Backend))] = true
			}
			anchor = auditHead{Seq: seqOf(item.Key()), Hash: ev.Hash}
			n++
		}
		if !it.Valid() {
			done = true
		}
		it.Close()
		if n == 0 {
			return nil
		}
		if err := deleteAll(txn, dead...); err != nil {
			return err
		}
		for prefix := range indexes {
			if err := pruneIndex(txn, []byte(prefix), anchor.Seq); err != nil {
				return err
			}
		}
		if err := pruneTimeIndex(txn, anchor.Seq); err != nil {
			return err
		}
		return setJSON(txn, keyAuditAnchor, anchor)
	})
	if err != nil {
		return 0, true, err
	}
	s.dirty.Store(true)
	return n, done, nil
}
