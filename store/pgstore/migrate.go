package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations holds the schema, one file per version: NNNN_name.sql. A
// version, once released, is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// ErrNewerSchema is returned by Open when the database was migrated by a
// newer agw whose schema this one does not understand.
var ErrNewerSchema = errors.New("database schema is newer than this agw supports")

// Advisory lock keys (per database). Arbitrary constants, spelled "agw" and
// a number so they are recognisable in pg_locks.
const (
	lockMigrate    int64 = 0x61677700_00000001
	lockPruneAudit int64 = 0x61677700_00000002
	lockCompact    int64 = 0x61677700_00000003
)

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with its version number", e.Name())
		}
		b, err := migrations.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the newest schema version this package knows.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		panic(err) // the embedded files are part of the binary; a test checks them
	}
	return len(ms)
}

// migrate brings the database to the newest schema version, each version
// in its own transaction, while holding a session advisory lock so that
// replicas starting at once apply each version once.
func migrate(ctx context.Context, pool *pgxpool.Pool, where string) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("open store: connect to %s: %w", where, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockMigrate); err != nil {
		return fmt.Errorf("open store: lock the schema of %s: %w", where, err)
	}
	defer func() {
		// A failed unlock (connection gone) releases the lock anyway.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockMigrate)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("open store: %s: %w", where, err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("open store: read the schema version of %s: %w", where, err)
	}
	if have > len(ms) {
		return fmt.Errorf("open store: %s has schema version %d, this agw needs version %d and understands no newer; run the newer agw on every replica: %w",
			where, have, len(ms), ErrNewerSchema)
	}
	for _, m := range ms[have:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("open store: migrate %s to schema version %d (%s): %w", where, m.version, m.name, err)
		}
	}
	return nil
}
