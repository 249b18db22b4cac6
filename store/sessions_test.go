package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAdminSessions(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	insert := func(hash string, lifetime time.Duration) *AdminSession {
		t.Helper()
		var a *AdminSession
		err := s.Write(ctx, func(tx *Tx) (err error) {
			a, err = tx.InsertAdminSession(hash, "admin-hash", lifetime)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	write := func(fn func(tx *Tx) error) {
		t.Helper()
		if err := s.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}

	a := insert("a", 12*time.Hour)
	if !a.ExpiresAt.Equal(a.CreatedAt.Add(12*time.Hour)) || !a.LastSeenAt.Equal(a.CreatedAt) {
		t.Fatalf("inserted session %+v", a)
	}
	got, err := s.AdminSession(ctx, "a")
	if err != nil || *got != *a {
		t.Fatalf("AdminSession: %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.AdminSession(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}
	if err := s.Write(ctx, func(tx *Tx) error { _, err := tx.InsertAdminSession("a", "x", time.Hour); return err }); !errors.Is(err, ErrExists) {
		t.Fatalf("a second session under the same hash: %v, want ErrExists", err)
	}

	t.Run("touch", func(t *testing.T) {
		if _, err := s.write.Exec(`UPDATE admin_sessions SET last_seen_at = last_seen_at - 600 WHERE token_hash = 'a'`); err != nil {
			t.Fatal(err)
		}
		write(func(tx *Tx) error { return tx.TouchAdminSession("a") })
		got, _ := s.AdminSession(ctx, "a")
		if time.Since(got.LastSeenAt) > 2*time.Second || !got.CreatedAt.Equal(a.CreatedAt) || !got.ExpiresAt.Equal(a.ExpiresAt) {
			t.Fatalf("after touch: %+v", got)
		}
		write(func(tx *Tx) error { return tx.TouchAdminSession("gone") })
		if _, err := s.AdminSession(ctx, "gone"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("touching a missing session made one: %v", err)
		}
	})

	t.Run("expired rows go on the next insert", func(t *testing.T) {
		insert("old", -time.Second)
		if _, err := s.AdminSession(ctx, "old"); err != nil {
			t.Fatalf("an expired row is still readable until cleared: %v", err)
		}
		insert("b", time.Hour)
		if _, err := s.AdminSession(ctx, "old"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired row after an insert: %v, want ErrNotFound", err)
		}
		for _, h := range []string{"a", "b"} {
			if _, err := s.AdminSession(ctx, h); err != nil {
				t.Fatalf("live session %s: %v", h, err)
			}
		}
	})

	t.Run("delete one, then all", func(t *testing.T) {
		write(func(tx *Tx) error { return tx.DeleteAdminSession("a") })
		write(func(tx *Tx) error { return tx.DeleteAdminSession("a") }) // again: no error
		if _, err := s.AdminSession(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted session: %v", err)
		}
		if _, err := s.AdminSession(ctx, "b"); err != nil {
			t.Fatalf("deleting one session took another: %v", err)
		}
		insert("c", time.Hour)
		write(func(tx *Tx) error { return tx.DeleteAdminSessions() })
		var n int
		s.read.QueryRow(`SELECT count(*) FROM admin_sessions`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d sessions after deleting all", n)
		}
	})
}

// TestMigrationDropsSessionKey: a database from before session rows loses
// the key its stateless cookies were signed with.
func TestMigrationDropsSessionKey(t *testing.T) {
	s := openOldSchema(t, 4, `INSERT INTO settings (key, value) VALUES ('admin_session_key', 'secret'), ('admin_token_hash', 'h')`)
	ctx := context.Background()
	if v, err := s.Setting(ctx, "admin_session_key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("admin_session_key after the migration: %q, %v", v, err)
	}
	if v, err := s.Setting(ctx, "admin_token_hash"); err != nil || v != "h" {
		t.Fatalf("the migration changed another setting: %q, %v", v, err)
	}
	if _, err := s.AdminSession(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no admin_sessions table: %v", err)
	}
	var version int
	s.read.QueryRow("PRAGMA user_version").Scan(&version)
	if version != SchemaVersion {
		t.Fatalf("schema version %d", version)
	}
}

// TestMigrationCapsCookieDays: a program saved with a cookie lifetime
// longer than browsers keep is capped at 400 days; others keep theirs.
func TestMigrationCapsCookieDays(t *testing.T) {
	s := openOldSchema(t, 5, `INSERT INTO programs (id, name, currency, cookie_days, commission, api_key_hash, signing_secret, webhook_secret, created_at, updated_at)
		VALUES ('long', 'Long', 'USD', 3650, '{}', 'h1', 's', 'w', 0, 0), ('short', 'Short', 'USD', 60, '{}', 'h2', 's', 'w', 0, 0)`)
	for id, want := range map[string]int{"long": 400, "short": 60} {
		if n, err := s.CountForTest(context.Background(), `SELECT cookie_days FROM programs WHERE id = ?`, id); err != nil || n != want {
			t.Errorf("program %s: cookie_days %d (%v), want %d", id, n, err, want)
		}
	}
}

// openOldSchema makes a database as a binary of schema version left it,
// with rows written by seed, then opens it with this binary's Open (which
// migrates it) and closes it when t ends.
func openOldSchema(t *testing.T, version int, seed string) *Store {
	t.Helper()
	path := t.TempDir() + "/old.db"
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:version] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(seed + fmt.Sprintf(";\nPRAGMA user_version = %d", version)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
