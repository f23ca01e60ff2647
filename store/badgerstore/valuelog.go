package badgerstore

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Values of valueThreshold bytes or more (a request's audit record, and the
// odd large configuration record) are kept in Badger's value log rather than
// in its LSM tree: the tree then holds a small pointer, so flushes and
// compactions rewrite the pointer and not the record, which makes an audit
// append far cheaper (keeping compressed records in the tree instead costs
// about 30% more CPU per append, for about 60% less disk). Smaller values
// (most configuration, the indexes, short admin records) stay in the tree.
// A compressed request record is about 270 bytes, so the threshold sits just
// under it; lower, token and agent records would move to the value log too
// and loading them would turn into random reads. Which way a value went is
// recorded per entry, so a directory written with another threshold reads
// the same.
//
// The value log is not compressed, which is why audit records are
// (internal/auditvalue). Badger's table compression stays on: without it
// the directory is about 10% larger, for no CPU saving that shows.
//
// The price is that deleting a record (PruneAudit, an overwrite, a cleanup)
// frees nothing by itself. Compactions note how much of each value log file
// is dead, and the collector below rewrites the live rest of a file that is
// at least half dead and then removes it. It runs every vlogGCInterval, and
// soon after a prune.
const valueThreshold = 256

// vlogGCInterval is how often the collector looks for value log files worth
// rewriting. Dead space shows up only as compactions catch up with deletes,
// so the collector keeps looking, not only after a prune.
const vlogGCInterval = 10 * time.Minute

// vlogDiscardRatio is the share of a value log file that must be dead before
// the collector rewrites it: 0.5 bounds the rewriting to about one extra
// write of each value over its life (Badger's recommendation).
const vlogDiscardRatio = 0.5

// kickCollector wakes the value log collector after a prune.
func (s *Store) kickCollector() {
	select {
	case s.gcKick <- struct{}{}:
	default:
	}
}

func (s *Store) gcLoop() {
	defer s.bg.Done()
	t := time.NewTicker(vlogGCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.gcKick:
		}
		s.collectValueLog()
	}
}

// collectValueLog rewrites value log files while there are any at least
// vlogDiscardRatio dead, stopping early when the store is closing. It
// returns how many files it rewrote.
func (s *Store) collectValueLog() (rewritten int) {
	for {
		select {
		case <-s.stop:
			return rewritten
		default:
		}
		err := s.db.RunValueLogGC(vlogDiscardRatio)
		switch {
		case err == nil:
			rewritten++
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			// Nothing is due, or a collection is already running.
			return rewritten
		default:
			s.log.Error("reclaim value log space; will retry", "err", err, "retry_in", vlogGCInterval)
			return rewritten
		}
	}
}
