package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if err == nil && len(problems) == 0 {
		t.Fatal("Check finds nothing wrong with a damaged file")
	}
	t.Logf("check: %v %v", err, problems)
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
}
