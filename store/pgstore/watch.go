package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// wireChange is a Change as the changes table stores it: the fields that
// store's types keep out of their JSON (a credential's sealed bytes, a
// token's hash) travel beside them. Both are safe to store: the sealed bytes
// are age ciphertext and the hash is one-way.
type wireChange struct {
	store.Change
	Sealed    []byte `json:"sealed,omitempty"`
	TokenHash []byte `json:"token_hash,omitempty"`
}

func encodeChanges(cs []store.Change) ([]byte, error) {
	wire := make([]wireChange, len(cs))
	for i, c := range cs {
		wire[i].Change = c
		if c.Credential != nil {
			wire[i].Sealed = c.Credential.Sealed
		}
		if c.Token != nil {
			wire[i].TokenHash = c.Token.Hash
		}
	}
	b, err := json.Marshal(wire)
	if err != nil {
		return nil, fmt.Errorf("encode change set: %w", err)
	}
	return b, nil
}

func decodeChanges(rev store.Revision, b []byte) (store.ChangeSet, error) {
	var wire []wireChange
	if err := json.Unmarshal(b, &wire); err != nil {
		return store.ChangeSet{}, fmt.Errorf("decode change set of revision %d: %w", rev, err)
	}
	cs := store.ChangeSet{Revision: rev, Changes: make([]store.Change, len(wire))}
	for i, w := range wire {
		c := w.Change
		if c.Credential != nil {
			c.Credential.Sealed = w.Sealed
		}
		if c.Token != nil {
			c.Token.Hash = w.TokenHash
		}
		cs.Changes[i] = c
	}
	return cs, nil
}

// watchBatch bounds how many change sets one read of the feed returns.
const watchBatch = 500

// Watch calls fn with every change set committed after revision after, in
// revision order, then with each new one as it commits, and with a heartbeat
// (an empty ChangeSet carrying the newest revision, read from the database)
// at least every store.HeartbeatInterval. It holds a connection of its own,
// LISTENing for the commits' notifications; it also reads the feed when no
// notification came for half an interval, so a lost notification delays a
// change by that much at most, never forever.
//
// If the connection breaks, Watch returns an error (never a silent gap): the
// caller watches again from the last revision it applied. ErrCompacted
// (wrapped) means the history after after is gone, or that after is beyond
// the newest revision (the database was restored from an older backup):
// Load again and watch from the snapshot's revision. Close ends Watch with
// store.ErrClosed.
func (s *Store) Watch(ctx context.Context, after store.Revision, fn func(store.ChangeSet) error) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	leave() // a Watch lasts; Close ends it through done instead
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = s.watch(ctx, after, fn)
	select {
	case <-s.done:
		return store.ErrClosed
	default:
	}
	return err
}

// watchTimeout bounds each exchange of a Watch with the database: a
// connection that stops answering without closing (a partitioned network)
// ends the Watch with an error after this long, instead of leaving it
// silent. The caller has already gone without heartbeats by then.
const watchTimeout = 5 * store.HeartbeatInterval

func (s *Store) watch(ctx context.Context, after store.Revision, fn func(store.ChangeSet) error) error {
	cctx, cancel := context.WithTimeout(ctx, watchTimeout)
	conn, err := pgx.ConnectConfig(cctx, s.watchConf)
	if err == nil {
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(cctx, `LISTEN `+notifyChannel)
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("watch: connect and listen: %w", err)
	}
	last := after
	poll := store.HeartbeatInterval / 2
	for {
		sets, newest, floor, err := readFeed(ctx, conn, last)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("watch: read changes after revision %d (watch again from it): %w", last, err)
		}
		if last < floor {
			return fmt.Errorf("watch from revision %d: the change feed keeps revisions after %d only: %w", last, floor, store.ErrCompacted)
		}
		if last > newest {
			return fmt.Errorf("watch from revision %d: the database's newest revision is %d (was it restored from an older backup?): %w",
				last, newest, store.ErrCompacted)
		}
		for _, cs := range sets {
			if cs.Revision != last+1 {
				return fmt.Errorf("watch: revision %d follows %d; the changes table is missing revisions", cs.Revision, last)
			}
			if err := fn(cs); err != nil {
				return err
			}
			last = cs.Revision
		}
		if len(sets) == watchBatch {
			continue // more to catch up on
		}
		if len(sets) == 0 {
			// Nothing after last in this snapshot, so last is the newest.
			if err := fn(store.ChangeSet{Revision: newest}); err != nil {
				return err
			}
		}
		wait, cancel := context.WithTimeout(ctx, poll)
		_, err = conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// No commit for a while: read anyway, and beat.
		default:
			return fmt.Errorf("watch: the database connection broke after revision %d (watch again from it): %w", last, err)
		}
	}
}

// readFeed reads, in one statement and so one snapshot, the newest
// revision, the compaction floor and the change sets after last.
func readFeed(ctx context.Context, conn *pgx.Conn, last store.Revision) (sets []store.ChangeSet, newest, floor store.Revision, err error) {
	ctx, cancel := context.WithTimeout(ctx, watchTimeout)
	defer cancel()
	rows, err := conn.Query(ctx, `SELECT r.revision, r.compacted_through, c.revision, c.changes
			FROM revision r LEFT JOIN LATERAL (
				SELECT revision, changes FROM changes WHERE revision > $1 ORDER BY revision LIMIT $2
			) c ON true`, last, watchBatch)
	if err != nil {
		return nil, 0, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var rev *int64
		var doc []byte
		if err := rows.Scan(&newest, &floor, &rev, &doc); err != nil {
			return nil, 0, 0, err
		}
		if rev == nil {
			continue
		}
		cs, err := decodeChanges(store.Revision(*rev), doc)
		if err != nil {
			return nil, 0, 0, err
		}
		sets = append(sets, cs)
	}
	return sets, newest, floor, rows.Err()
}

// compactLoop drops change sets older than the retention, once a minute,
// on whichever replica gets there first.
func (s *Store) compactLoop() {
	defer s.bg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := s.CompactChanges(ctx, s.now().Add(-s.retention)); err != nil {
			s.log.Warn("compact the change feed", "err", err)
		}
		cancel()
	}
}

// CompactChanges drops the change sets committed before before, and
// returns how many it dropped. A Watch from a revision they covered then
// fails with ErrCompacted. It drops a prefix of the feed, never a revision
// in the middle: the cut is the newest revision committed before before,
// and everything up to it goes. While another replica compacts, it does
// nothing.
func (s *Store) CompactChanges(ctx context.Context, before time.Time) (removed int, err error) {
	return s.compact(ctx, func(tx pgx.Tx) (*int64, error) {
		var cut *int64
		err := tx.QueryRow(ctx, `SELECT max(revision) FROM changes WHERE committed_at < $1`, before).Scan(&cut)
		return cut, err
	})
}

// compactThrough drops the change sets up to and including revision rev.
func (s *Store) compactThrough(ctx context.Context, rev store.Revision) (removed int, err error) {
	return s.compact(ctx, func(tx pgx.Tx) (*int64, error) {
		cut := int64(rev)
		return &cut, nil
	})
}

// compact drops the change sets up to the revision cut picks (none if nil).
func (s *Store) compact(ctx context.Context, cutAt func(tx pgx.Tx) (*int64, error)) (removed int, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	err = s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockCompact).Scan(&got); err != nil || !got {
			return err // another replica is at it
		}
		cut, err := cutAt(tx)
		if err != nil || cut == nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM changes WHERE revision <= $1`, *cut)
		if err != nil {
			return err
		}
		removed = int(tag.RowsAffected())
		// The revision row is the mutations' lock: held here only for this update.
		_, err = tx.Exec(ctx, `UPDATE revision SET compacted_through = greatest(compacted_through, $1)`, *cut)
		return err
	})
	if err != nil {
		return 0, translate("compact changes", err)
	}
	return removed, nil
}
