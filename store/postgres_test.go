package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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

func openPostgresForTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPostgresWritesAreSerializable: two writes on two instances, each
// reading what the other writes (as a refund looks for its sale while the
// sale looks for a refund waiting for it), both reading before either
// commits. Run one after the other, the second would see the first's row;
// PostgreSQL fails one of them and it runs again, so one of them sees the
// other's row. Under READ COMMITTED both would commit having seen nothing.
func TestPostgresWritesAreSerializable(t *testing.T) {
	db := testenv.Postgres(t)
	a, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	var bothRead sync.WaitGroup
	bothRead.Add(2)
	write := func(s *Store, reads, writes string, saw *bool, runs *int) error {
		return s.Write(ctx, func(tx *Tx) error {
			*runs++
			_, err := tx.Setting(reads)
			*saw = err == nil
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if *runs == 1 {
				bothRead.Done()
				bothRead.Wait()
			}
			return tx.SetSetting(writes, "1")
		})
	}
	var (
		sawA, sawB   bool
		runsA, runsB int
		errs         = make(chan error, 2)
	)
	go func() { errs <- write(a, "sale", "refund", &sawA, &runsA) }()
	go func() { errs <- write(b, "refund", "sale", &sawB, &runsB) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !sawA && !sawB {
		t.Fatalf("both writes committed without seeing the other's row (runs %d and %d): not serializable", runsA, runsB)
	}
	if runsA+runsB != 3 || a.Retries()+b.Retries() != 1 {
		t.Fatalf("runs %d + %d, retries %d + %d; want one write run again", runsA, runsB, a.Retries(), b.Retries())
	}
}

// TestPostgresConnectionLostIsUnreachable: a write whose connection
// PostgreSQL ends (a restart, a fail-over, pg_terminate_backend) fails as
// Unreachable, which the server answers 503, and the next write works.
func TestPostgresConnectionLostIsUnreachable(t *testing.T) {
	s := openPostgresForTest(t)
	ctx := context.Background()
	err := s.Write(ctx, func(tx *Tx) error {
		var ok bool
		return tx.queryRow(`SELECT pg_terminate_backend(pg_backend_pid())`).Scan(&ok)
	})
	if err == nil || !Unreachable(err) {
		t.Fatalf("a write whose backend was terminated: %v, want Unreachable", err)
	}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetSetting("k", "v") }); err != nil {
		t.Fatalf("the next write: %v", err)
	}
}

// TestPostgresWriteTimesOut: a write the database does not finish is
// given up after the write timeout as Unreachable, its statement
// cancelled, nothing stored.
func TestPostgresWriteTimesOut(t *testing.T) {
	s := openPostgresForTest(t)
	s.pg.timeout = 300 * time.Millisecond
	start := time.Now()
	err := s.Write(context.Background(), func(tx *Tx) error {
		if err := tx.SetSetting("slow", "v"); err != nil {
			return err
		}
		_, err := tx.exec(`SELECT pg_sleep(5)`)
		return err
	})
	if !Unreachable(err) || time.Since(start) > 3*time.Second {
		t.Fatalf("a write stuck in the database: %v after %v, want Unreachable after about 300ms", err, time.Since(start))
	}
	if _, err := s.Setting(context.Background(), "slow"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the timed-out write's setting: %v, want none", err)
	}
}

// TestPostgresClosedRefusesClicks: after Close, clicks and writes get
// ErrClosed (503), not a driver error.
func TestPostgresClosedRefusesClicks(t *testing.T) {
	s, err := Open(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.RecordClick(context.Background(), Click{ProgramID: "p", PartnerID: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("a click after Close: %v, want ErrClosed", err)
	}
	if err := s.Write(context.Background(), func(tx *Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("a write after Close: %v, want ErrClosed", err)
	}
}
