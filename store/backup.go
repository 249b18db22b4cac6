package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// BackupSummary is what a back-up holds.
type BackupSummary struct {
	Bytes                                       int64
	Programs, Partners, Customers, Transactions int
}

// Backup writes a consistent copy of the database at src to dst while
// potrack may be running on it: VACUUM INTO reads one snapshot (a read
// transaction, which in WAL mode never blocks the writer nor waits for
// it) and writes a compact database holding every committed row, the WAL's
// included. The copy is written under a temporary name beside dst,
// checked (quick_check), flushed to disk and only then renamed to dst, so
// dst is never a partial file. An existing dst is refused, never replaced.
//
// Cancelling ctx (Ctrl-C) interrupts the copy and removes what it wrote.
func Backup(ctx context.Context, src, dst string) (*BackupSummary, error) {
	if IsPostgresURL(src) {
		return nil, errors.New("potrack backup copies an SQLite file; back PostgreSQL up with its own tools: pg_dump --format=custom (docs/deployment.md)")
	}
	if fi, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("no database at %s: %s", src, Describe(err))
	} else if fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder; name the database file (e.g. %s)", src, filepath.Join(src, "potrack.db"))
	}
	if _, err := os.Lstat(dst); err == nil {
		return nil, fmt.Errorf("%s exists already; name a new file (a back-up never replaces one)", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %s", dst, Describe(err))
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".partial-*")
	if err != nil {
		return nil, fmt.Errorf("the folder %s cannot be written: %s", dir, Describe(err))
	}
	tmpPath := tmp.Name()
	tmp.Close()
	os.Remove(tmpPath) // VACUUM INTO wants to create the file itself
	defer func() {
		// The copy and the journal SQLite writes beside it while copying.
		for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
			os.Remove(tmpPath + suffix)
		}
	}()

	db, err := sql.Open("sqlite3", "file:"+escapePath(src)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmpPath); err != nil {
		if ctx.Err() != nil {
			return nil, errors.New("the back-up was interrupted; nothing was written")
		}
		return nil, fmt.Errorf("back up %s: %s", src, Describe(err))
	}
	sum, err := summarize(tmpPath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(tmpPath)
	if err != nil {
		return nil, err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("flush the back-up: %s", Describe(err))
	}
	if err := os.Link(tmpPath, dst); err != nil {
		// A hard link, not a rename: it fails when dst appeared meanwhile.
		// Where the filesystem has no hard links, rename, checking first.
		if _, serr := os.Lstat(dst); serr == nil || !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EOPNOTSUPP) {
			return nil, fmt.Errorf("name the back-up %s: %s", dst, Describe(err))
		}
		if err := os.Rename(tmpPath, dst); err != nil {
			return nil, fmt.Errorf("name the back-up %s: %s", dst, Describe(err))
		}
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("flush the folder %s: %s", dir, Describe(err))
	}
	return sum, nil
}

// summarize checks a back-up and counts what it holds.
func summarize(path string) (*BackupSummary, error) {
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if problems, err := checkDB(db, "quick_check"); err != nil || len(problems) > 0 {
		if err == nil {
			err = errors.New(strings.Join(problems[:min(len(problems), 3)], "; "))
		}
		return nil, fmt.Errorf("the back-up failed its check: %s", Describe(err))
	}
	sum := &BackupSummary{}
	for _, c := range []struct {
		table string
		n     *int
	}{{"programs", &sum.Programs}, {"partners", &sum.Partners}, {"customers", &sum.Customers}, {"transactions", &sum.Transactions}} {
		// Table names are ours, not input.
		if err := db.QueryRow("SELECT count(*) FROM " + c.table).Scan(c.n); err != nil {
			return nil, fmt.Errorf("read the back-up: %s", Describe(err))
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	sum.Bytes = fi.Size()
	return sum, nil
}
