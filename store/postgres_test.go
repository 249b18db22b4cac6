package store

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/potrack/potrack/internal/testenv"
)

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:                         `SELECT 1`,
		`a = ? AND b = ?`:                  `a = $1 AND b = $2`,
		`a = ?1 OR b = ?1 AND c = ?2`:      `a = $1 OR b = $1 AND c = $2`,
		`x = '?' AND y = ?`:                `x = '?' AND y = $1`,
		`x = 'it''s ?' AND y = ? LIMIT ?3`: `x = 'it''s ?' AND y = $1 LIMIT $3`,
	} {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPostgresWriteRetriesThenBusy: a write that keeps failing on
// serialization runs pgWriteAttempts times, then fails with ErrBusy, and
// nothing of it is stored; one that fails once runs again and commits.
func TestPostgresWriteRetriesThenBusy(t *testing.T) {
	s, err := Open(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	runs := 0
	err = s.Write(ctx, func(tx *Tx) error {
		runs++
		if err := tx.SetSetting("k", "never"); err != nil {
			return err
		}
		return &pgconn.PgError{Code: "40001"}
	})
	if !errors.Is(err, ErrBusy) || runs != pgWriteAttempts {
		t.Fatalf("err %v after %d runs, want ErrBusy after %d", err, runs, pgWriteAttempts)
	}
	if _, err := s.Setting(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed write's setting: %v, want none", err)
	}
	runs = 0
	err = s.Write(ctx, func(tx *Tx) error {
		runs++
		if err := tx.SetSetting("k", "once"); err != nil || runs > 1 {
			return err
		}
		return &pgconn.PgError{Code: "40P01"} // a deadlock, once
	})
	if v, _ := s.Setting(ctx, "k"); err != nil || runs != 2 || v != "once" {
		t.Fatalf("err %v, %d runs, setting %q; want one retry that commits", err, runs, v)
	}
}
