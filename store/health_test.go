package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// damaged makes a database with some rows, then overwrites part of the
// file with junk, as a failing disk would.
func damaged(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "d.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		k := strings.Repeat("k", 200) + string(rune('a'+i%26)) + strings.Repeat("x", i)
		if err := s.Write(context.Background(), func(tx *Tx) error { return tx.SetSetting(k, strings.Repeat("v", 300)) }); err != nil {
			t.Fatal(err)
		}
	}
	s.Close() // checkpoints the WAL into the file
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
	if fi, _ := f.Stat(); fi.Size() < 5*4096 {
		t.Fatalf("database too small to damage: %d bytes", fi.Size())
	}
	f.WriteAt(junk, 2*4096)
	f.WriteAt(junk, 4*4096)
	f.Close()
	return path
}

func TestDamagedDatabaseRefusedAtStart(t *testing.T) {
	path := damaged(t)
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("a damaged database was opened")
	}
	if !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "potrack check") {
		t.Fatalf("unclear refusal: %v", err)
	}
	problems, err := Check(path)
	if err != nil || len(problems) == 0 {
		t.Fatalf("Check on a damaged file: %v %v, want its problems", problems, err)
	}
	for _, p := range problems {
		if strings.Contains(p, "potrack check") {
			t.Errorf("a finding tells to run the check that made it: %s", p)
		}
	}
}

func TestCheckSoundDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if problems, err := Check(path); err != nil || len(problems) != 0 {
		t.Fatalf("a sound database: %v %v", problems, err)
	}
	if _, err := Check(filepath.Join(t.TempDir(), "missing.db")); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("a missing database: %v", err)
	}
	if _, err := Check(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("a folder: %v", err)
	}
	// A sound file that is not in WAL mode: the check changes nothing and
	// finds nothing.
	plain := filepath.Join(t.TempDir(), "plain.db")
	db, err := sql.Open("sqlite3", plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if problems, err := Check(plain); err != nil || len(problems) != 0 {
		t.Fatalf("a sound database in rollback-journal mode: %v %v", problems, err)
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.EROFS}, "read-only filesystem"},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.ENOSPC}, "disk is full"},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, "permission denied"},
		{&os.PathError{Op: "stat", Path: "/x", Err: syscall.ENOENT}, "no such file"},
		{sqlite3.Error{Code: sqlite3.ErrReadonly}, "read-only"},
		{sqlite3.Error{Code: sqlite3.ErrFull}, "disk is full"},
		{sqlite3.Error{Code: sqlite3.ErrCorrupt}, "damaged"},
		{ErrClosed, "shutting down"},
	} {
		if got := Describe(c.err); !strings.Contains(got, c.want) {
			t.Errorf("Describe(%v) = %q, want it to say %q", c.err, got, c.want)
		}
	}
}

// TestHealthReportsFailedReads: a read that failed on a damaged file keeps
// Health failing for a while; other errors do not.
func TestHealthReportsFailedReads(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	s.NoteReadError(ErrNotFound)
	if err := s.Health(ctx); err != nil {
		t.Fatalf("a missing row made the database unhealthy: %v", err)
	}
	s.NoteReadError(fmt.Errorf("list: %w", sqlite3.Error{Code: sqlite3.ErrCorrupt}))
	if err := s.Health(ctx); err == nil || !strings.Contains(err.Error(), "reads are failing") || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("after a read on a damaged file: %v", err)
	}
}
