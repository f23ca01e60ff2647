package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// defaultTestURL is the server the tests use unless AGW_TEST_POSTGRES says
// otherwise: the machine's own, over loopback.
const defaultTestURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func serverURL() string {
	if u := os.Getenv("AGW_TEST_POSTGRES"); u != "" {
		return u
	}
	return defaultTestURL
}

// redacted is u without its password, for messages.
func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable AGW_TEST_POSTGRES)"
	}
	return p.Redacted()
}

// needPostgres returns a connection to the test server's maintenance
// database, or skips the test (fails it with AGW_E2E_REQUIRE=1) when the
// server cannot be reached.
func needPostgres(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		if os.Getenv("AGW_E2E_REQUIRE") == "1" {
			t.Fatalf("PostgreSQL is required (AGW_E2E_REQUIRE=1) but %s is not reachable: %v", redacted(serverURL()), err)
		}
		t.Skipf("no PostgreSQL at %s (set AGW_TEST_POSTGRES to a server's URL): %v", redacted(serverURL()), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newDatabase creates a database of its own for the test, dropped at
// cleanup, and returns its URL.
func newDatabase(t testing.TB) string {
	t.Helper()
	admin := needPostgres(t)
	var b [8]byte
	rand.Read(b[:])
	name := "agw_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(t.Context(), `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(serverURL())
	if err != nil {
		t.Fatalf("AGW_TEST_POSTGRES must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// openStore opens a store on dbURL as replica, closed at cleanup.
func openStore(t testing.TB, dbURL, replica string) *Store {
	t.Helper()
	// A small pool: parallel tests on a many-core machine must stay under
	// the server's max_connections.
	s, err := Open(t.Context(), Options{URL: dbURL, ReplicaID: replica, MaxConns: 4})
	if err != nil {
		t.Fatalf("Open %s: %v", replica, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawConn connects to dbURL directly, for the checks and tampering a test
// does behind the store's back.
func rawConn(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func adminEvent(action, target string) store.AuditEvent {
	return store.AuditEvent{Kind: store.KindAdmin, Action: action, Target: target, PeerUID: 1000, PeerPID: 42}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustRev(t testing.TB) func(store.Revision, error) store.Revision {
	return func(rev store.Revision, err error) store.Revision {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
}
