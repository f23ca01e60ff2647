// Package badgerstore is the Badger implementation of store.Store; the only
// package that imports badger.
package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// schemaVersion is the layout this package reads and writes (see keys.go).
// Version 2 stores audit records compressed (internal/auditvalue); it still
// reads version 1's plain JSON records. Version 3 tags each grant with its
// backend's generation and leaves a deleted backend's grants to the cleaner;
// an older agw would read those as live, and hand them to a re-created
// backend of the same name. Open upgrades an older store in place
// (tagGrants) and marks it, so an older agw refuses the directory by name
// instead of misreading it. Version 4 groups the audit indexes' entries
// (auditindex.go); it reads version 3's entries of one record each, but an
// older agw would take a group for its last record alone.
const schemaVersion = 4

// ErrNewerSchema is returned by Open when the directory was written by a newer
// agw whose layout this one does not understand.
var ErrNewerSchema = errors.New("store schema is newer than this agw supports")

// Options configures Open.
type Options struct {
	// Logger receives Badger's warnings and errors; nil discards them.
	Logger *slog.Logger
	// Now stamps server-side times; nil means time.Now.
	Now func() time.Time
	// SyncInterval is how often audit appends are synced to stable storage;
	// zero means DefaultSyncInterval. See Store for what it bounds.
	SyncInterval time.Duration
	// ChangeHistory is how many of the newest revisions the change history
	// keeps for Watch to resume from; zero means DefaultChangeHistory.
	ChangeHistory int

	// tune adjusts Badger's options last; tests use it to shrink files.
	tune func(badger.Options) badger.Options
}

// DefaultSyncInterval is how often the background syncer makes audit
// appends durable against power loss.
const DefaultSyncInterval = 500 * time.Millisecond

// Store is a store.Store kept in a Badger directory. It is safe for
// concurrent use. All writes (admin mutations and audit batches) are
// serialised so audit sequence numbers form one total order.
//
// Durability. Badger runs without SyncWrites: a committed transaction has
// been copied into Badger's memory-mapped files (the memtable's write-ahead
// log, and the value log for large values), which lives in the kernel's page
// cache until written back.
//
//   - Process crash (kill -9, panic, OOM kill): nothing committed is lost,
//     for configuration, credentials and audit alike. The dirty pages belong
//     to the kernel, not the process, and Badger replays the log at the next
//     Open. e2e/crash_test.go checks this by killing a daemon under load.
//   - Power loss or kernel crash: every configuration and credential
//     mutation is synced (db.Sync) after its commit and before it returns
//     success, so an acknowledged change survives. Audit appends are not
//     synced per batch; a background syncer syncs them every SyncInterval
//     (default 500ms), so at most the audit records committed in the last
//     SyncInterval plus one sync's duration can be lost. Close syncs.
//     One caveat from Badger itself: when a memtable fills, it moves to the
//     flush queue without a sync of its log; its contents become durable when
//     it is written out as a (synced) table moments later. A mutation
//     committed as the very last write into a full memtable is exposed to a
//     power loss during that flush (tens of milliseconds).
type Store struct {
	db  *badger.DB
	dir string
	now func() time.Time
	log *slog.Logger

	// life guards closed: every method holds it for reading, Close for writing.
	life   sync.RWMutex
	closed bool

	// mu serialises writes and guards head, the newest audit record, and
	// names.
	mu    sync.Mutex
	head  auditHead
	names nameCache

	// feed holds the newest committed revision and wakes watchers.
	feed *feed
	// keep is how many revisions the change history keeps; floor is the
	// newest revision compacted out of it (change.go).
	keep  store.Revision
	floor atomic.Uint64

	// dirty says audit records were committed since the last sync.
	dirty atomic.Bool
	// stop ends the background goroutines (syncer, cleaner, value log
	// collector); bg waits for them.
	stop     chan struct{}
	stopOnce sync.Once
	bg       sync.WaitGroup
	// kick wakes the cleaner after a delete left orphans (cleanup.go).
	kick chan struct{}
	// gcKick wakes the value log collector after a prune (valuelog.go).
	gcKick chan struct{}
	// compactKick wakes the change history's compactor (change.go).
	compactKick chan struct{}
	// cleaned counts finished cleanups and cleanPaused holds the cleaner
	// back, for tests.
	cleaned     atomic.Uint64
	cleanPaused atomic.Bool
}

var _ store.Store = (*Store)(nil)

// lockedError is returned when another process holds the directory.
type lockedError struct{ dir string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("another agw serve is using %s (stop it first, or pass a different --data-dir)", e.dir)
}

func (e *lockedError) Unwrap() error { return store.ErrLocked }

// Open opens (creating if needed) the store in dir. It fails with an error
// wrapping store.ErrLocked if another process has dir open, and with
// ErrNewerSchema if dir was written by a newer agw.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// Sized for a small box: the data is small (config, tokens, audit records
	// of a few hundred bytes), so the defaults' 64 MiB memtables x5 and
	// 256 MiB block cache are waste. A 32 MiB memtable still lets one
	// transaction hold about 50k keys; no mutation needs that many, since
	// deletes leave bulk cleanup to the background (cleanup.go). The index cache
	// bounds the memory table indexes and bloom filters take; 64 MiB covers
	// several million audit records before lookups start reloading them.
	// SyncWrites is off: mutations sync explicitly, audit appends in the
	// background (see Store). Values from valueThreshold bytes go to the
	// value log (valuelog.go).
	bopts := badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithNumVersionsToKeep(1).
		WithLogger(slogAdapter{opts.Logger}).
		WithMemTableSize(32 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(valueThreshold).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(64 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false)
	if opts.tune != nil {
		bopts = opts.tune(bopts)
	}
	db, err := badger.Open(bopts)
	if err != nil {
		if strings.Contains(err.Error(), "Another process is using this Badger database") {
			return nil, &lockedError{dir: dir}
		}
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keep := opts.ChangeHistory
	if keep <= 0 {
		keep = DefaultChangeHistory
	}
	s := &Store{db: db, dir: dir, now: now, log: log, names: nameCache{}, stop: make(chan struct{}),
		kick: make(chan struct{}, 1), gcKick: make(chan struct{}, 1), compactKick: make(chan struct{}, 1),
		keep: store.Revision(keep)}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	every := opts.SyncInterval
	if every <= 0 {
		every = DefaultSyncInterval
	}
	s.bg.Add(4)
	go s.syncLoop(every)
	// The cleaner starts by finishing any cleanup a previous run left.
	go s.cleanLoop()
	go s.gcLoop()
	go s.compactLoop()
	rev, _ := s.feed.state()
	s.maybeCompact(rev) // the bound may have shrunk since the last run
	return s, nil
}

// syncLoop syncs committed audit records to stable storage every interval.
func (s *Store) syncLoop(every time.Duration) {
	defer s.bg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if !s.dirty.Swap(false) {
				continue
			}
			if err := s.db.Sync(); err != nil {
				s.dirty.Store(true)
				s.log.Error("sync audit records to disk", "err", err)
			}
		}
	}
}

// syncAfterCommit makes a committed mutation durable before it is reported
// done. The commit already happened, so a failure here is reported as such.
func (s *Store) syncAfterCommit(op string) error {
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("%s: the change was committed but could not be synced to disk (check the disk under %s): %w", op, s.dir, err)
	}
	return nil
}

// init checks or writes the schema version, upgrading an older store,
// and loads the audit head and the revisions.
func (s *Store) init() error {
	v, err := s.readSchema()
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("open store: %s was written with schema version %d, this agw understands up to %d; run the newer agw: %w",
			s.dir, v, schemaVersion, ErrNewerSchema)
	}
	if v > 0 && v < 3 { // grants untagged; a new store (0) has none
		if err := s.tagGrants(); err != nil {
			return fmt.Errorf("open store: upgrade to schema version %d: %w", schemaVersion, err)
		}
	}
	if v != schemaVersion {
		// Last, so an upgrade cut short is redone at the next open.
		err := s.db.Update(func(txn *badger.Txn) error {
			return txn.Set(keySchema, []byte(strconv.Itoa(schemaVersion)))
		})
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	return s.db.View(func(txn *badger.Txn) error {
		h, err := readHead(txn)
		if err != nil {
			return fmt.Errorf("open store: read audit head: %w", err)
		}
		s.head = h
		rev, err := getRevision(txn, keyRevision)
		if err != nil {
			return fmt.Errorf("open store: read revision: %w", err)
		}
		floor, err := getRevision(txn, keyRevFloor)
		if err != nil {
			return fmt.Errorf("open store: read change history: %w", err)
		}
		s.feed = newFeed(rev)
		s.floor.Store(uint64(floor))
		return nil
	})
}

// readSchema reads the schema version; 0 means a new, empty store.
func (s *Store) readSchema() (int, error) {
	var v int
	err := s.db.View(func(txn *badger.Txn) error {
		raw, found, err := getRaw(txn, keySchema)
		if err != nil || !found {
			return err
		}
		v, err = strconv.Atoi(string(raw))
		if err != nil {
			return fmt.Errorf("schema version %q is not a number; the directory is damaged or not an agw store", raw)
		}
		return nil
	})
	return v, err
}

// Close stops the background syncer, cleaner and collector, syncs and
// closes the store. It is idempotent; every other method returns
// store.ErrClosed afterwards. An unfinished cleanup resumes at the next Open.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.bg.Wait()
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	syncErr := s.db.Sync()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	if syncErr != nil {
		return fmt.Errorf("close store: sync: %w", syncErr)
	}
	return nil
}

// enter admits one call: it fails once the store is closed or ctx is done.
// The returned func must be called when the call is over.
func (s *Store) enter(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return nil, store.ErrClosed
	}
	return s.life.RUnlock, nil
}

// stamp is the server time for a write: UTC without a monotonic reading, so
// it survives a JSON round trip unchanged.
func (s *Store) stamp() time.Time { return s.now().UTC() }

// mutation validates and writes one admin change inside txn and returns
// the objects it wrote or deleted.
type mutation func(txn *badger.Txn, now time.Time) ([]store.Change, error)

// mutate runs one admin change: fn validates and writes inside a single
// transaction; the change set fn returns is recorded as the next revision
// and ev is appended to the audit trail in the same transaction, and either
// all of it commits or none of it does. The write lock is held throughout,
// so a failed change consumes no revision and no audit sequence number.
// Watchers are woken at the commit; the commit is synced to disk before
// mutate returns the revision.
func (s *Store) mutate(ctx context.Context, op string, ev store.AuditEvent, fn mutation) (store.Revision, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	rev, err := s.commitMutation(op, ev, fn)
	if err != nil {
		return 0, err
	}
	// Outside the write lock: audit appends go on while the disk syncs.
	return rev, s.syncAfterCommit(op)
}

func (s *Store) commitMutation(op string, ev store.AuditEvent, fn mutation) (store.Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp()
	if ev.Kind == "" {
		ev.Kind = store.KindAdmin
	}
	newest, _ := s.feed.state() // only writers, under s.mu, move it
	rev := newest + 1
	var head auditHead
	err := s.db.Update(func(txn *badger.Txn) error {
		changes, err := fn(txn, now)
		if err != nil {
			return err
		}
		if err := writeChangeSet(txn, rev, changes); err != nil {
			return err
		}
		head, err = appendEvent(txn, s.names, s.head, &ev, now)
		return err
	})
	if err != nil {
		return 0, s.translate(op, err)
	}
	s.head = head
	s.feed.publish(rev)
	s.maybeCompact(rev)
	return rev, nil
}

// translate turns Badger's errors into the store's; errors that already
// carry a store sentinel pass through unchanged.
func (s *Store) translate(op string, err error) error {
	for _, sentinel := range []error{store.ErrNotFound, store.ErrExists, store.ErrInvalid, store.ErrConflict, store.ErrClosed, store.ErrCompacted} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	switch {
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("%s: the change touches more keys than one transaction holds (about %d); nothing was written: %w",
			op, s.db.MaxBatchCount(), store.ErrConflict)
	case errors.Is(err, badger.ErrDBClosed):
		return fmt.Errorf("%s: %w", op, store.ErrClosed)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// slogAdapter routes Badger's log to slog: errors and warnings only, since
// Badger's info lines (compactions, replay) are noise to an operator.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Errorf(f string, args ...any) {
	if a.l != nil {
		a.l.Error(strings.TrimSpace(fmt.Sprintf(f, args...)), "component", "badger")
	}
}

func (a slogAdapter) Warningf(f string, args ...any) {
	if a.l != nil {
		a.l.Warn(strings.TrimSpace(fmt.Sprintf(f, args...)), "component", "badger")
	}
}

func (slogAdapter) Infof(string, ...any)  {}
func (slogAdapter) Debugf(string, ...any) {}
