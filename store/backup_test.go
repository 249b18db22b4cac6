package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupLeavesNothingOnFailure: a back-up that fails (here: the
// source is no database; elsewhere a full disk or Ctrl-C) leaves no file
// behind, partial copy or journal, and a cancelled one says so.
func TestBackupLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(src, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := Backup(context.Background(), src, filepath.Join(out, "copy.db")); err == nil {
		t.Fatal("a back-up of a file that is no database succeeded")
	}
	s, path := openTest(t)
	fillEveryTable(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Backup(ctx, path, filepath.Join(out, "cancelled.db")); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("a cancelled back-up: %v", err)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
	sum, err := Backup(context.Background(), path, filepath.Join(out, "good.db"))
	if err != nil || sum.Transactions != 3 || sum.Partners != 3 || sum.Programs != 2 {
		t.Fatalf("a good back-up: %+v %v", sum, err)
	}
}
