package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/potrack/potrack/rules"
)

func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func insertProgram(t *testing.T, s *Store, id string) {
	t.Helper()
	p := &Program{ID: id, Name: id, Currency: "USD", CookieDays: 30, ReferralParams: []string{"aff"},
		Attribution: "last", Commission: rules.DefaultCommission()}
	if err := s.Write(context.Background(), func(tx *Tx) error { return tx.InsertProgram(p, "hash-"+id) }); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommit: writes queued while the writer is busy commit together,
// and a failing write in the group is undone alone.
func TestGroupCommit(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	var sizes []int
	var mu sync.Mutex
	s.Batches = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }

	release, entered := make(chan struct{}), make(chan struct{})
	blocking := make(chan error)
	go func() {
		blocking <- s.Write(context.Background(), func(tx *Tx) error { close(entered); <-release; return nil })
	}()
	<-entered // the writer is busy inside this write

	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = s.Write(context.Background(), func(tx *Tx) error {
				if err := tx.InsertPartner(&Partner{ProgramID: "prog", Key: fmt.Sprint("p", i)}); err != nil {
					return err
				}
				if i%5 == 0 {
					return errors.New("refused") // undoes this partner only
				}
				return nil
			})
		}(i)
	}
	for deadline := time.Now().Add(10 * time.Second); len(s.queue) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes queued", len(s.queue))
		}
	}
	close(release)
	wg.Wait()
	if err := <-blocking; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if (i%5 == 0) != (err != nil) {
			t.Errorf("write %d: err = %v", i, err)
		}
	}
	var count int
	if err := s.read.QueryRow(`SELECT count(*) FROM partners`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != n-n/5 {
		t.Errorf("%d partners stored, want %d", count, n-n/5)
	}
	mu.Lock()
	defer mu.Unlock()
	if sizes[len(sizes)-1] != n {
		t.Errorf("the queued writes committed in groups %v, want one group of %d", sizes, n)
	}
}

func TestWritePanicIsAnError(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	err := s.Write(context.Background(), func(tx *Tx) error {
		tx.InsertPartner(&Partner{ProgramID: "prog", Key: "x"})
		panic("boom")
	})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.Partner(context.Background(), "prog", PartnerRef{Key: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the panicking write was kept: %v", err)
	}
	// The writer still works.
	insertProgram(t, s, "prog2")
}

func TestWriteAfterClose(t *testing.T) {
	s, _ := openTest(t)
	s.Close()
	if err := s.Write(context.Background(), func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	s, path := openTest(t)
	s.Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "upgrade potrack") {
		t.Fatalf("Open of a newer database: err = %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	s, path := openTest(t)
	insertProgram(t, s, "prog")
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	p, err := s2.Program(context.Background(), "prog")
	if err != nil || p.Commission.Type != "percent" || len(p.AllowedOrigins) != 0 {
		t.Fatalf("program after reopen: %+v, %v", p, err)
	}
	var mode string
	s2.read.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var fk int
	s2.write.QueryRow("PRAGMA foreign_keys").Scan(&fk)
	if fk != 1 {
		t.Errorf("foreign_keys = %d, want 1", fk)
	}
}

func TestUniqueKeysPerProgram(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "a")
	insertProgram(t, s, "b")
	ctx := context.Background()
	add := func(prog string) error {
		return s.Write(ctx, func(tx *Tx) error { return tx.InsertPartner(&Partner{ProgramID: prog, Key: "same"}) })
	}
	if err := add("a"); err != nil {
		t.Fatal(err)
	}
	if err := add("b"); err != nil {
		t.Fatalf("the same key in another program: %v", err)
	}
	if err := add("a"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate key: %v, want ErrExists", err)
	}
}

// TestConcurrentOpenMigratesOnce: several processes starting together on a
// new database (here, separate connections) all come up, and the schema is
// applied once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	for round := 0; round < 5; round++ {
		path := filepath.Join(t.TempDir(), "new.db")
		const n = 6
		var wg sync.WaitGroup
		stores := make([]*Store, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				stores[i], errs[i] = Open(path)
			}(i)
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: store %d failed to open: %v", round, i, err)
			}
			defer stores[i].Close()
		}
		var version int
		if err := stores[0].read.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != SchemaVersion {
			t.Fatalf("round %d: schema version %d (%v), want %d", round, version, err, SchemaVersion)
		}
	}
}

// TestFailedUndoFailsTheBatch: when a failed write's savepoint cannot be
// rolled back, its partial rows must not commit with the batch.
func TestFailedUndoFailsTheBatch(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	err := s.Write(ctx, func(tx *Tx) error {
		if err := tx.SetSetting("half", "written"); err != nil {
			return err
		}
		// Drop the savepoint, so that undoing this write fails.
		if _, err := tx.exec("RELEASE w"); err != nil {
			return err
		}
		return errors.New("the write fails after its first row")
	})
	if err == nil {
		t.Fatal("the write reported success")
	}
	if _, err := s.Setting(ctx, "half"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed write's row was committed (%v)", err)
	}
	// The writer goes on working.
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetSetting("after", "ok") }); err != nil {
		t.Fatalf("a later write: %v", err)
	}
}
