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
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// schemaVersion is the layout this package reads and writes (see keys.go).
const schemaVersion = 1

// ErrNewerSchema is returned by Open when the directory was written by a newer
// agw whose layout this one does not understand.
var ErrNewerSchema = errors.New("store schema is newer than this agw supports")

// Options configures Open.
type Options struct {
	// Logger receives Badger's warnings and errors; nil discards them.
	Logger *slog.Logger
	// Now stamps server-side times; nil means time.Now.
	Now func() time.Time
}

// Store is a store.Store kept in a Badger directory. It is safe for
// concurrent use. All writes (admin mutations and audit batches) are
// serialised so audit sequence numbers form one total order.
type Store struct {
	db  *badger.DB
	dir string
	now func() time.Time

	// life guards closed: every method holds it for reading, Close for writing.
	life   sync.RWMutex
	closed bool

	// mu serialises writes and guards head, the newest audit record.
	mu   sync.Mutex
	head auditHead
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
	// transaction hold about 50k keys (see DeleteAgent). The index cache
	// bounds the memory table indexes and bloom filters take; 64 MiB covers
	// several million audit records before lookups start reloading them.
	bopts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithNumVersionsToKeep(1).
		WithLogger(slogAdapter{opts.Logger}).
		WithMemTableSize(32 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithValueLogFileSize(64 << 20).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(64 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false)
	db, err := badger.Open(bopts)
	if err != nil {
		if strings.Contains(err.Error(), "Another process is using this Badger database") {
			return nil, &lockedError{dir: dir}
		}
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, now: now}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init checks or writes the schema version and loads the audit head.
func (s *Store) init() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(keySchema, []byte(strconv.Itoa(schemaVersion)))
		}
		if err != nil {
			return err
		}
		raw, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		v, err := strconv.Atoi(string(raw))
		if err != nil {
			return fmt.Errorf("schema version %q is not a number; the directory is damaged or not an agw store", raw)
		}
		if v > schemaVersion {
			return fmt.Errorf("%s was written with schema version %d, this agw understands up to %d; run the newer agw: %w",
				s.dir, v, schemaVersion, ErrNewerSchema)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	return s.db.View(func(txn *badger.Txn) error {
		h, err := readHead(txn)
		if err != nil {
			return fmt.Errorf("open store: read audit head: %w", err)
		}
		s.head = h
		return nil
	})
}

// Close flushes and closes the store. It is idempotent; every other method
// returns store.ErrClosed afterwards.
func (s *Store) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
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

// mutate runs one admin change: fn validates and writes inside a single
// transaction, ev is appended to the audit trail in the same transaction,
// and either all of it commits or none of it does. The write lock is held
// throughout, so a failed change consumes no audit sequence number.
func (s *Store) mutate(ctx context.Context, op string, ev store.AuditEvent, fn func(txn *badger.Txn, now time.Time) error) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp()
	if ev.Kind == "" {
		ev.Kind = store.KindAdmin
	}
	var head auditHead
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := fn(txn, now); err != nil {
			return err
		}
		var err error
		head, err = appendEvent(txn, s.head, &ev, now)
		return err
	})
	if err != nil {
		return s.translate(op, err)
	}
	s.head = head
	return nil
}

// translate turns Badger's errors into the store's; errors that already
// carry a store sentinel pass through unchanged.
func (s *Store) translate(op string, err error) error {
	for _, sentinel := range []error{store.ErrNotFound, store.ErrExists, store.ErrInvalid, store.ErrConflict, store.ErrClosed} {
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
