package badgerstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The audit time index lets Since and Until seek exactly although Time is
// only roughly monotone in Seq (request records carry their own time and
// arrive in batches). Each minute that holds any event has one key,
//
//	et/<minute>  →  min seq, max seq  (8 bytes each, big-endian)
//
// written with the events. The first event with Time >= Since has the
// smallest min among buckets from Since's minute on; the last event with
// Time < Until has the largest max among buckets up to Until's minute. Both
// scan one small key per minute of the range, not the events.

var prefixAuditTime = []byte("et/")

// minuteOf is t's minute since the epoch, flipped so byte order is signed order.
func minuteOf(t time.Time) uint64 {
	s := t.Unix()
	m := s / 60
	if s%60 < 0 {
		m--
	}
	return uint64(m) ^ 1<<63
}

func auditTimeKey(minute uint64) []byte { return withSeq(prefixAuditTime, minute) }

type seqSpan struct{ min, max uint64 }

func decodeSpan(v []byte) (seqSpan, bool) {
	if len(v) != 16 {
		return seqSpan{}, false
	}
	return seqSpan{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])}, true
}

func (sp seqSpan) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), sp.min)
	return binary.BigEndian.AppendUint64(b, sp.max)
}

// timeIndex gathers the buckets one transaction touches, written by flush.
type timeIndex map[uint64]seqSpan

func (ti timeIndex) add(t time.Time, seq uint64) {
	m := minuteOf(t)
	sp, ok := ti[m]
	if !ok {
		sp.min = seq
	}
	sp.max = seq
	ti[m] = sp
}

// flush merges the gathered spans with the stored ones. Seqs only grow, so a
// stored min stays the min and the new max is the max.
func (ti timeIndex) flush(txn *badger.Txn) error {
	for m, sp := range ti {
		k := auditTimeKey(m)
		item, err := txn.Get(k)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			err := item.Value(func(v []byte) error {
				if old, ok := decodeSpan(v); ok {
					sp.min = min(sp.min, old.min)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if err := txn.Set(k, sp.encode()); err != nil {
			return err
		}
	}
	return nil
}

// spans calls fn for each bucket from minute from to minute to, inclusive.
func spans(txn *badger.Txn, from, to uint64, fn func(seqSpan)) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefixAuditTime
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(auditTimeKey(from)); it.Valid(); it.Next() {
		if seqOf(it.Item().Key()) > to {
			return
		}
		_ = it.Item().Value(func(v []byte) error {
			if sp, ok := decodeSpan(v); ok {
				fn(sp)
			}
			return nil
		})
	}
}

// firstSeqSince returns the smallest seq of any event at or after t
// (ok false if there is none).
func firstSeqSince(txn *badger.Txn, t time.Time) (seq uint64, ok bool) {
	spans(txn, minuteOf(t), ^uint64(0), func(sp seqSpan) {
		if !ok || sp.min < seq {
			seq, ok = sp.min, true
		}
	})
	return seq, ok
}

// lastSeqUntil returns the largest seq of any event before t (ok false if
// there is none).
func lastSeqUntil(txn *badger.Txn, t time.Time) (seq uint64, ok bool) {
	spans(txn, 0, minuteOf(t), func(sp seqSpan) {
		if !ok || sp.max > seq {
			seq, ok = sp.max, true
		}
	})
	return seq, ok
}

// pruneTimeIndex deletes the buckets whose events are all at or below seq.
func pruneTimeIndex(txn *badger.Txn, seq uint64) error {
	var dead [][]byte
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefixAuditTime
	it := txn.NewIterator(opts)
	for it.Rewind(); it.Valid(); it.Next() {
		_ = it.Item().Value(func(v []byte) error {
			if sp, ok := decodeSpan(v); ok && sp.max <= seq {
				dead = append(dead, it.Item().KeyCopy(nil))
			}
			return nil
		})
	}
	it.Close()
	return deleteAll(txn, dead...)
}
