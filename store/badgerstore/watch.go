package badgerstore

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// Watch calls fn with every change set committed after revision after, in
// revision order, then with each new one as it commits, until ctx is done
// (ctx.Err()), the store closes (store.ErrClosed) or fn fails (its error, as
// is). Between change sets it calls fn with a heartbeat, an empty change set
// carrying the newest revision, whenever store.HeartbeatInterval passes
// without a call; a heartbeat's revision is always one fn has already seen
// everything up to.
//
// It answers an error wrapping store.ErrCompacted when the history no
// longer reaches back to after (see DefaultChangeHistory), and also when
// after is newer than anything the store committed, since the caller's
// state then does not come from this store: either way, Load afresh and
// watch from the snapshot's revision.
//
// fn runs on the caller's goroutine, outside any transaction: committing
// only wakes watchers, so a slow fn delays nothing but its own feed.
func (s *Store) Watch(ctx context.Context, after store.Revision, fn func(store.ChangeSet) error) error {
	last := after
	beat := time.NewTimer(store.HeartbeatInterval)
	defer beat.Stop()
	for {
		// Take the wake-up before reading, so a commit after the read
		// transaction began is not missed.
		_, wake := s.feed.state()
		sets, newest, err := s.readChanges(ctx, last)
		if err != nil {
			return err
		}
		for _, cs := range sets {
			if err := fn(cs); err != nil {
				return err
			}
			last = cs.Revision
		}
		if len(sets) > 0 {
			beat.Reset(store.HeartbeatInterval)
		}
		if last < newest {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return fmt.Errorf("watch: %w", store.ErrClosed)
		case <-wake:
		case <-beat.C:
			if rev, _ := s.feed.state(); rev > last {
				continue // deliver what committed first; that call is the beat
			}
			if err := fn(store.ChangeSet{Revision: last}); err != nil {
				return err
			}
			beat.Reset(store.HeartbeatInterval)
		}
	}
}

// readChanges reads up to watchBatch change sets after revision after, in
// one read transaction, and the newest revision that transaction sees.
func (s *Store) readChanges(ctx context.Context, after store.Revision) (sets []store.ChangeSet, newest store.Revision, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer leave()
	err = s.db.View(func(txn *badger.Txn) error {
		floor, err := getRevision(txn, keyRevFloor)
		if err != nil {
			return err
		}
		if newest, err = getRevision(txn, keyRevision); err != nil {
			return err
		}
		if after < floor {
			return fmt.Errorf("watch from revision %d: the change history starts after revision %d; load a fresh snapshot and watch from its revision: %w",
				after, floor, store.ErrCompacted)
		}
		if after > newest {
			return fmt.Errorf("watch from revision %d: the store's newest revision is %d, so that state did not come from this store; load a fresh snapshot and watch from its revision: %w",
				after, newest, store.ErrCompacted)
		}
		for rev := after + 1; rev <= newest && len(sets) < watchBatch; rev++ {
			var recs []changeRecord
			found, err := getJSON(txn, changeKey(rev), &recs)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("the change history lacks revision %d (newest %d, compacted up to %d); the directory is damaged", rev, newest, floor)
			}
			cs := store.ChangeSet{Revision: rev, Changes: make([]store.Change, len(recs))}
			for i, r := range recs {
				cs.Changes[i] = r.change()
			}
			sets = append(sets, cs)
		}
		return nil
	})
	if err != nil {
		return nil, 0, s.translate("watch", err)
	}
	return sets, newest, nil
}
