package pgstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestMigrationsAreNumberedFromOne(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || SchemaVersion() != len(ms) {
		t.Fatalf("%d migrations, SchemaVersion %d", len(ms), SchemaVersion())
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL, "a")
	must(t, s.Close())
	newer := SchemaVersion() + 7
	conn := rawConn(t, dbURL)
	if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')`, newer); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), Options{URL: dbURL, ReplicaID: "a"})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open on a newer schema = %v, want ErrNewerSchema", err)
	}
	for _, want := range []string{fmt.Sprintf("version %d", newer), fmt.Sprintf("needs version %d", SchemaVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Replicas starting at once on an empty database each wait for the
// migration lock; the schema is applied once and every one opens.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dbURL := newDatabase(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), Options{URL: dbURL, ReplicaID: fmt.Sprintf("r%d", i)})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	var rows int
	if err := rawConn(t, dbURL).QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != SchemaVersion() {
		t.Errorf("schema_migrations has %d rows, want %d", rows, SchemaVersion())
	}
}

func TestOpenRejectsBadReplicaID(t *testing.T) {
	for _, id := range []string{"", "has space", strings.Repeat("x", 64), "-lead"} {
		if _, err := Open(t.Context(), Options{URL: defaultTestURL, ReplicaID: id}); err == nil || !strings.Contains(err.Error(), "replica") {
			t.Errorf("Open with replica %q = %v, want an error naming the replica", id, err)
		}
	}
}

// The database URL may carry a password; no error from Open repeats it.
func TestOpenErrorsOmitThePassword(t *testing.T) {
	const pw = "pw-canary-5e1f0c"
	for _, u := range []string{
		"postgres://agw:" + pw + "@127.0.0.1:1/agw?sslmode=disable&connect_timeout=2",
		"postgres://agw:" + pw + "@127.0.0.1:1/agw?sslmode=bogus",
		"postgres://agw:" + pw + "@[::1/agw",
		"host=127.0.0.1 port=1 user=agw password=" + pw + " dbname=agw connect_timeout=x",
	} {
		_, err := Open(t.Context(), Options{URL: u, ReplicaID: "a"})
		if err == nil {
			t.Fatalf("Open(%s) succeeded", strings.ReplaceAll(u, pw, "***"))
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Open error repeats the password: %s", strings.ReplaceAll(err.Error(), pw, "***"))
		}
	}
}
