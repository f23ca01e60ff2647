package badgerstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore/internal/auditvalue"
)

// auditHead is the newest audit record: the next one chains from it.
type auditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// chainHash is hex(SHA-256(prevHash || canonical)), canonical being the
// event's JSON with Hash empty. sealEvent computes the same without the
// allocations.
func chainHash(prevHash string, canonical []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// sealEvent assigns ev its place after head and its hash, and returns its
// stored value: the JSON compressed (internal/auditvalue).
func sealEvent(head auditHead, ev *store.AuditEvent, now time.Time) ([]byte, error) {
	ev.Seq = head.Seq + 1
	if ev.Time.IsZero() {
		ev.Time = now
	}
	ev.Time = ev.Time.UTC()
	ev.PrevHash, ev.Hash = head.Hash, ""
	// The hash covers PrevHash then the canonical JSON, so both go in one
	// buffer; the stored JSON is the canonical JSON after PrevHash.
	buf := make([]byte, 0, 1024)
	buf = append(buf, ev.PrevHash...)
	buf, ok := appendEventJSON(buf, ev)
	if !ok {
		_, err := json.Marshal(ev)
		if err == nil {
			err = errors.New("unsupported value")
		}
		return nil, fmt.Errorf("encode audit event: %w", err)
	}
	sum := sha256.Sum256(buf)
	ev.Hash = hex.EncodeToString(sum[:])
	// Hash is the last field and was omitted (empty), so the stored JSON is
	// the canonical JSON with it appended: one encoding instead of two.
	// TestHashIsDocumentedFormula checks this equals a plain Marshal.
	stored := buf[len(ev.PrevHash) : len(buf)-1]
	stored = append(stored, `,"hash":"`...)
	stored = append(stored, ev.Hash...)
	stored = append(stored, `"}`...)
	return auditvalue.Append(nil, stored), nil
}

// decodeEvent decodes the stored audit record v at k, compressed or written
// before compression. Every read of an audit record goes through it.
func decodeEvent(k, v []byte, ev *store.AuditEvent) error {
	js, err := auditvalue.Decode(nil, v)
	if err != nil {
		return fmt.Errorf("decode %q: %w", k, err)
	}
	return decode(k, js, ev)
}

// appendEvent writes ev after head inside txn and returns the new head.
func appendEvent(txn *badger.Txn, names nameCache, head auditHead, ev *store.AuditEvent, now time.Time) (auditHead, error) {
	val, err := sealEvent(head, ev, now)
	if err != nil {
		return head, err
	}
	var kb keyBuf
	if err := txn.SetEntry(&badger.Entry{Key: kb.key(ev.Seq, "e/"), Value: val}); err != nil {
		return head, err
	}
	ib := newIndexBatch(names)
	if err := ib.add(txn, &kb, ev); err != nil {
		return head, err
	}
	if err := ib.flush(txn, &kb); err != nil {
		return head, err
	}
	ti := timeIndex{}
	ti.add(ev.Time, ev.Seq)
	if err := ti.flush(txn); err != nil {
		return head, err
	}
	return auditHead{Seq: ev.Seq, Hash: ev.Hash}, nil
}

// AppendAudit appends evs in order, assigning each its Seq, Time (now if
// zero) and chain hash, and writes them back into evs. A batch commits in one
// transaction, or in consecutive ones if it is larger than a transaction
// holds; on error the events before the failing transaction are stored.
// A returned batch is committed (it survives a process crash) but not yet
// synced: the background syncer makes it durable against power loss within
// the store's SyncInterval.
func (s *Store) AppendAudit(ctx context.Context, evs []store.AuditEvent) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Half of Badger's limits leaves room for its own per-entry overhead.
	maxSize, maxCount := s.db.MaxBatchSize()/2, s.db.MaxBatchCount()/2
	now := s.stamp()
	for start := 0; start < len(evs); {
		head := s.head
		var size, count int64
		txn := s.db.NewTransaction(true)
		ti := timeIndex{}
		ib := newIndexBatch(s.names)
		var kb keyBuf
		// Badger keeps the entries' pointers until the commit, so they
		// live in one slice that never grows.
		recs := make([]badger.Entry, len(evs)-start)
		end := start
		for ; end < len(evs); end++ {
			ev := evs[end]
			val, err := sealEvent(head, &ev, now)
			if err != nil {
				txn.Discard()
				return err
			}
			rec := &recs[end-start]
			*rec = badger.Entry{Key: kb.key(ev.Seq, "e/"), Value: val}
			// Counted as if every index entry were its own key: a group
			// never costs more than that.
			n := int64(1 + ib.entries(&ev))
			esize := int64(len(rec.Key)+len(rec.Value)+32) + (n-1)*128
			// Room is kept for the time index: at most one key per event.
			if end > start && (size+esize > maxSize || count+2*n > maxCount) {
				break
			}
			if err := txn.SetEntry(rec); err != nil {
				txn.Discard()
				return s.translate("append audit", err)
			}
			if err := ib.add(txn, &kb, &ev); err != nil {
				txn.Discard()
				return s.translate("append audit", err)
			}
			size, count = size+esize+48, count+n+1
			ti.add(ev.Time, ev.Seq)
			evs[end] = ev
			head = auditHead{Seq: ev.Seq, Hash: ev.Hash}
		}
		if err := ib.flush(txn, &kb); err != nil {
			txn.Discard()
			return s.translate("append audit", err)
		}
		if err := ti.flush(txn); err != nil {
			txn.Discard()
			return s.translate("append audit", err)
		}
		if err := txn.Commit(); err != nil {
			return s.translate("append audit", err)
		}
		s.dirty.Store(true) // synced by syncLoop, not per batch
		s.head = head
		start = end
	}
	return nil
}

// LastAuditSeq returns the newest event's sequence number (0 if none).
func (s *Store) LastAuditSeq(ctx context.Context) (uint64, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head.Seq, nil
}

// readHead finds the newest record, or the prune anchor when every record
// has been pruned.
func readHead(txn *badger.Txn) (auditHead, error) {
	opts := badger.DefaultIteratorOptions
	opts.Reverse = true
	opts.Prefix = prefixAudit
	it := txn.NewIterator(opts)
	defer it.Close()
	it.Seek(auditKey(math.MaxUint64))
	if it.Valid() {
		var ev store.AuditEvent
		if err := it.Item().Value(func(b []byte) error { return decodeEvent(it.Item().Key(), b, &ev) }); err != nil {
			return auditHead{}, err
		}
		return auditHead{Seq: seqOf(it.Item().Key()), Hash: ev.Hash}, nil
	}
	var anchor auditHead
	_, err := getJSON(txn, keyAuditAnchor, &anchor)
	return anchor, err
}

// auditRange returns the first and last stored sequence numbers (0, 0 if none).
func auditRange(txn *badger.Txn) (first, last uint64) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefixAudit
	it := txn.NewIterator(opts)
	it.Rewind()
	if it.Valid() {
		first = seqOf(it.Item().Key())
	}
	it.Close()
	opts.Reverse = true
	it = txn.NewIterator(opts)
	defer it.Close()
	it.Seek(auditKey(math.MaxUint64))
	if it.Valid() {
		last = seqOf(it.Item().Key())
	}
	return first, last
}

// eventAt reads the record of seq; found is false if there is none.
func eventAt(txn *badger.Txn, seq uint64) (ev store.AuditEvent, found bool, err error) {
	k := auditKey(seq)
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ev, false, nil
	}
	if err != nil {
		return ev, false, err
	}
	err = item.Value(func(b []byte) error { return decodeEvent(k, b, &ev) })
	return ev, true, err
}

// QueryAudit calls fn for each event matching q, in ascending Seq order,
// until fn returns false. Agent and Backend filters scan their index; Since
// and Until seek through the per-minute time index (audittime.go) and
// AfterSeq and BeforeSeq bound the walk directly, instead of scanning from the start; Last scans
// backwards from the newest match. fn runs inside a read transaction and must not
// call Close.
func (s *Store) QueryAudit(ctx context.Context, q store.AuditQuery, fn func(store.AuditEvent) bool) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	var tail []store.AuditEvent
	err = s.db.View(func(txn *badger.Txn) error {
		first, last := auditRange(txn)
		if last == 0 {
			return nil
		}
		lo, hi := max(q.AfterSeq, first-1), last // lo exclusive, hi inclusive
		if q.BeforeSeq > 0 {
			hi = min(hi, q.BeforeSeq-1)
		}
		if !q.Since.IsZero() {
			seq, ok := firstSeqSince(txn, q.Since)
			if !ok {
				return nil
			}
			lo = max(lo, seq-1)
		}
		if !q.Until.IsZero() {
			seq, ok := lastSeqUntil(txn, q.Until)
			if !ok {
				return nil
			}
			hi = min(hi, seq)
		}
		if lo >= hi {
			return nil
		}
		prefix, indexed := prefixAudit, false
		switch {
		case indexable(q.Agent):
			prefix, indexed = auditByAgentPrefix(q.Agent), true
		case indexable(q.Backend):
			prefix, indexed = auditByBackendPrefix(q.Backend), true
		}
		sc := scan{ctx: ctx, txn: txn, q: &q, prefix: prefix, indexed: indexed, lo: lo, hi: hi}
		if q.Last > 0 {
			tail, err = sc.backward(q.Last)
			return err
		}
		return sc.forward(fn)
	})
	if err != nil {
		return s.translate("query audit", err)
	}
	for i, ev := range tail {
		if q.Limit > 0 && i >= q.Limit {
			break
		}
		if !fn(ev) {
			break
		}
	}
	return nil
}

// scan walks audit records or one of their indexes between lo (exclusive)
// and hi (inclusive).
type scan struct {
	ctx     context.Context
	txn     *badger.Txn
	q       *store.AuditQuery
	prefix  []byte
	indexed bool
	lo, hi  uint64
}

func (sc *scan) iterator(reverse bool) *badger.Iterator {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = sc.prefix
	opts.Reverse = reverse
	opts.PrefetchValues = !sc.indexed
	opts.PrefetchSize = 64
	return sc.txn.NewIterator(opts)
}

// event reads the record seq; rec is the record's own item when the scan is
// not indexed.
func (sc *scan) event(rec *badger.Item, seq uint64) (store.AuditEvent, error) {
	if !sc.indexed {
		var ev store.AuditEvent
		err := rec.Value(func(b []byte) error { return decodeEvent(rec.Key(), b, &ev) })
		return ev, err
	}
	ev, found, err := eventAt(sc.txn, seq)
	if err == nil && !found {
		err = fmt.Errorf("audit index %q points at missing seq %d", sc.prefix, seq)
	}
	return ev, err
}

// visit calls fn with each sequence number in (lo, hi] that the scan's
// prefix holds, ascending or, if reverse, descending, until fn returns false
// or an error. rec is the record's item for an unindexed scan, nil for an
// indexed one (whose entries are groups: auditindex.go).
func (sc *scan) visit(reverse bool, fn func(seq uint64, rec *badger.Item) (bool, error)) error {
	i := 0
	step := func(seq uint64, rec *badger.Item) (bool, error) {
		if i++; i%1024 == 0 {
			if err := sc.ctx.Err(); err != nil {
				return false, err
			}
		}
		return fn(seq, rec)
	}
	var group []uint64
	// inGroup walks the group at item (ascending, or descending if
	// reverse), bounded by (lo, hi]; done means the walk has left the range.
	inGroup := func(item *badger.Item, reverse bool) (more bool, err error) {
		if group, err = readGroup(group[:0], item); err != nil {
			return false, err
		}
		if reverse {
			slices.Reverse(group)
		}
		for _, seq := range group {
			switch {
			case seq > sc.hi:
				if !reverse {
					return false, nil
				}
			case seq <= sc.lo:
				if reverse {
					return false, nil
				}
			default:
				if more, err := step(seq, nil); !more || err != nil {
					return false, err
				}
			}
		}
		return true, nil
	}

	if reverse && sc.indexed {
		// The group holding hi may end above it; it is the first whose key
		// is past hi.
		it := sc.iterator(false)
		it.Seek(withSeq(sc.prefix, sc.hi+1))
		more, err := true, error(nil)
		if it.Valid() {
			more, err = inGroup(it.Item(), true)
		}
		it.Close()
		if !more || err != nil {
			return err
		}
	}
	it := sc.iterator(reverse)
	defer it.Close()
	from := sc.lo + 1
	if reverse {
		from = sc.hi
	}
	for it.Seek(withSeq(sc.prefix, from)); it.Valid(); it.Next() {
		if sc.indexed {
			if more, err := inGroup(it.Item(), reverse); !more || err != nil {
				return err
			}
			continue
		}
		seq := seqOf(it.Item().Key())
		if reverse && seq <= sc.lo || !reverse && seq > sc.hi {
			return nil
		}
		if more, err := step(seq, it.Item()); !more || err != nil {
			return err
		}
	}
	return nil
}

func (sc *scan) forward(fn func(store.AuditEvent) bool) error {
	n := 0
	return sc.visit(false, func(seq uint64, rec *badger.Item) (bool, error) {
		ev, err := sc.event(rec, seq)
		if err != nil || !sc.q.Match(&ev) {
			return err == nil, err
		}
		if !fn(ev) {
			return false, nil
		}
		n++
		return sc.q.Limit <= 0 || n < sc.q.Limit, nil
	})
}

// backward collects the newest n matches and returns them ascending.
func (sc *scan) backward(n int) ([]store.AuditEvent, error) {
	var out []store.AuditEvent
	err := sc.visit(true, func(seq uint64, rec *badger.Item) (bool, error) {
		ev, err := sc.event(rec, seq)
		if err != nil {
			return false, err
		}
		if sc.q.Match(&ev) {
			out = append(out, ev)
		}
		return len(out) < n, nil
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}
