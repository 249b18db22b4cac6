package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres returns the URL of a PostgreSQL schema of the test's own, made
// in the database POTRACK_TEST_POSTGRES names
// (postgres://postgres@127.0.0.1:5432/test by default) and dropped when
// the test ends: the URL sets search_path, so everything the test creates
// lands there. Without a server answering, the test skips loudly, or fails
// under CI (Missing).
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("POTRACK_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		Missing(t, "PostgreSQL at "+base, "start PostgreSQL on 127.0.0.1:5432 with a database test, or set POTRACK_TEST_POSTGRES")
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "potrack_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("POTRACK_TEST_POSTGRES=%q: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// EngineVar selects the engine of the tests that run on both (the API
// scenario tables): unset or "sqlite" for a file, "postgres" for a schema
// of Postgres. make test runs those packages once with each.
const EngineVar = "POTRACK_TEST_ENGINE"

// OnPostgres reports whether this run's engine is PostgreSQL.
func OnPostgres() bool { return os.Getenv(EngineVar) == "postgres" }

// Database returns where a test's store lives on this run's engine: a
// file in dir, or a PostgreSQL schema of the test's own.
func Database(t testing.TB, dir string) string {
	t.Helper()
	if OnPostgres() {
		return Postgres(t)
	}
	return filepath.Join(dir, "potrack.db")
}

// SQLiteOnly skips, with its reason, a test of what only SQLite has (its
// file, its single writer) on a PostgreSQL run; the SQLite run has it.
func SQLiteOnly(t testing.TB, why string) {
	t.Helper()
	if OnPostgres() {
		t.Skip("SQLite only (the SQLite run of make test covers it): " + why)
	}
}
