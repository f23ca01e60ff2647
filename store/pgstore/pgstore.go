// Package pgstore is the PostgreSQL implementation of store.Store, for
// cluster mode: several agw replicas share one database. It is the only
// package that imports pgx.
//
// Ordering. Every configuration transaction takes the next revision from a
// single counter row and holds that row's lock until it commits, so revision
// order is commit order on every replica and a change feed reader that has
// seen revision R has seen every revision before it. Audit records take their
// sequence numbers the same way from their own counter row: Seq is one order
// across replicas, the order the records were committed in, so a follower
// that asks for records after the last Seq it saw misses none. Each replica
// keeps its own hash chain through its own records.
//
// Schema (migrations/, applied by Open): configuration in idps, backends,
// hosts, credentials (age ciphertext only), agents, grants and tokens (hashes
// only), each object as its JSON beside the key columns that carry the
// references; the revision counter and the changes feed; the audit table
// with its counter and audit_chains (each replica's head and prune anchor);
// members and the sealed ca. schema_migrations records the versions applied.
//
// Locks, always taken in this order so no two transactions deadlock: the
// revision row (configuration transactions), a replica's audit_chains row
// (its appends, and a prune of its chain), the audit counter row.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agw-dev/agw/store"
)

// DefaultChangeRetention is how long the change feed keeps a change set: a
// replica disconnected for longer reloads its snapshot (ErrCompacted).
const DefaultChangeRetention = time.Hour

// notifyChannel is the LISTEN/NOTIFY channel a commit wakes watchers on.
const notifyChannel = "agw_changes"

// Options configures Open.
type Options struct {
	// URL is the PostgreSQL connection string (postgres://...). It may carry
	// a password; it never appears in an error or a log line.
	URL string
	// ReplicaID names this writer: its audit records form their own hash
	// chain under this name. Two processes must not share one.
	ReplicaID string
	// Logger receives background failures; nil discards them.
	Logger *slog.Logger
	// Now stamps server-side times; nil means time.Now.
	Now func() time.Time
	// ChangeRetention bounds the change feed's history; zero means
	// DefaultChangeRetention.
	ChangeRetention time.Duration
	// MaxConns caps the connection pool; zero means pgxpool's default.
	MaxConns int32
}

var replicaRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$`)

// Store is a store.Store kept in a PostgreSQL database. It is safe for
// concurrent use, and several Stores (one per replica) may share a database.
type Store struct {
	pool      *pgxpool.Pool
	watchConf *pgx.ConnConfig
	replica   string
	log       *slog.Logger
	now       func() time.Time
	retention time.Duration

	// life guards closed: every call holds it for reading, Close for writing.
	life   sync.RWMutex
	closed bool
	// done is closed by Close; it ends the background loop and every Watch.
	done     chan struct{}
	doneOnce sync.Once
	bg       sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// Open connects to the database, applies the schema migrations it lacks
// (under an advisory lock, so replicas starting together do not race) and
// starts the change feed's compaction. It fails with an error wrapping
// ErrNewerSchema if the database was migrated by a newer agw.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if !replicaRE.MatchString(opts.ReplicaID) {
		return nil, &store.FieldError{Field: "replica", Value: opts.ReplicaID,
			Reason: "use 1-63 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit"}
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx's parse errors leave the password out.
		return nil, fmt.Errorf("open store: the PostgreSQL URL does not parse: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "agw " + opts.ReplicaID
	watchConf := cfg.ConnConfig.Copy()
	watchConf.RuntimeParams["application_name"] = "agw watch " + opts.ReplicaID

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	where := fmt.Sprintf("database %q on %s:%d", cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: connect to %s: %w", where, err)
	}
	if err := migrate(ctx, pool, where); err != nil {
		pool.Close()
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	retention := opts.ChangeRetention
	if retention <= 0 {
		retention = DefaultChangeRetention
	}
	s := &Store{pool: pool, watchConf: watchConf, replica: opts.ReplicaID, log: log, now: now,
		retention: retention, done: make(chan struct{})}
	s.bg.Add(1)
	go s.compactLoop()
	return s, nil
}

// Replica returns the replica id the store writes audit records as.
func (s *Store) Replica() string { return s.replica }

// Close stops the background work, ends every Watch (they return
// store.ErrClosed) and closes the connections. It is idempotent; every
// other method returns store.ErrClosed afterwards.
func (s *Store) Close() error {
	s.doneOnce.Do(func() { close(s.done) })
	s.bg.Wait()
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.pool.Close()
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
func (s *Store) stamp() time.Time { return s.now().UTC().Round(0) }

// mutation is the body of one configuration transaction: it validates and
// writes inside tx and returns what it changed.
type mutation func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error)

// mutate runs one admin change in a single transaction: it takes the next
// revision (holding the revision row until commit, which orders every
// configuration transaction of every replica), runs fn, appends ev to the
// audit trail, records the change set and notifies watchers, and commits
// all of it or none of it. A refused change consumes neither a revision nor
// an audit sequence number.
func (s *Store) mutate(ctx context.Context, op string, ev store.AuditEvent, fn mutation) (store.Revision, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	var rev store.Revision
	err = s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE revision SET revision = revision + 1 RETURNING revision`).Scan(&rev); err != nil {
			return err
		}
		now := s.stamp()
		changes, err := fn(ctx, tx, now)
		if err != nil {
			return err
		}
		if ev.Kind == "" {
			ev.Kind = store.KindAdmin
		}
		evs := []store.AuditEvent{ev}
		if err := s.appendTx(ctx, tx, evs, now); err != nil {
			return err
		}
		doc, err := encodeChanges(changes)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO changes (revision, committed_at, changes) VALUES ($1, clock_timestamp(), $2)`, rev, doc); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, fmt.Sprint(rev))
		return err
	})
	if err != nil {
		return 0, translate(op, err)
	}
	return rev, nil
}

// inTx runs fn in a transaction on a pooled connection. If the connection
// proves broken before the commit is sent (the server restarted, or killed
// the connection while it sat idle in the pool), nothing was committed, so
// it runs fn once more on a fresh connection; fn must not depend on having
// run before. A failed commit is never retried: its outcome is unknown.
func (s *Store) inTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	broken, err := s.tryTx(ctx, opts, fn)
	if err != nil && broken && ctx.Err() == nil {
		_, err = s.tryTx(ctx, opts, fn)
	}
	return err
}

// tryTx runs fn in one transaction; broken reports that it failed, before
// the commit, because its connection broke.
func (s *Store) tryTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) (broken bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return conn.Conn().IsClosed(), err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(ctx)
		return conn.Conn().IsClosed(), err
	}
	return false, tx.Commit(ctx)
}

// translate turns pgx's errors into the store's; errors that already carry
// a store sentinel pass through unchanged.
func translate(op string, err error) error {
	for _, sentinel := range []error{store.ErrNotFound, store.ErrExists, store.ErrInvalid, store.ErrConflict, store.ErrClosed, store.ErrAuditTampered} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation: a concurrent writer got there first
			return fmt.Errorf("%s: %s: %w", op, pe.Detail, store.ErrExists)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %s: %w", op, pe.Detail, store.ErrNotFound)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func notFound(kind, name string) error { return fmt.Errorf("%s %q: %w", kind, name, store.ErrNotFound) }

func alreadyExists(kind, name string) error {
	return fmt.Errorf("%s %q: %w", kind, name, store.ErrExists)
}
