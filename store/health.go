package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Health: /healthz must say when writes fail (a read-only file, a full
// disk, a damaged file), not merely that a read works. The writer notes the
// outcome of every commit; Health trusts a recent success and otherwise
// proves the write path with a real commit.

// healthFresh is how recent a successful commit must be for Health to
// trust it instead of committing a probe.
const healthFresh = 10 * time.Second

type healthState struct {
	mu       sync.Mutex
	lastOK   time.Time
	lastErr  error
	errAt    time.Time
	probedAt time.Time // the last probe commit Health started
	readErr  error     // the last read that failed on storage
	readAt   time.Time
}

// readFailureMemory is how long a read that failed on storage keeps
// /healthz at 503 after the last such failure.
const readFailureMemory = 30 * time.Second

// NoteReadError records a failed request's error when it is a failure of
// the disk or the file (an I/O error, a damaged file), so that Health
// reports it; other errors are ignored.
func (s *Store) NoteReadError(err error) {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return
	}
	switch se.Code {
	case sqlite3.ErrCorrupt, sqlite3.ErrNotADB, sqlite3.ErrIoErr, sqlite3.ErrCantOpen:
	default:
		// Read-only and full-disk errors are the writes' (noteCommit),
		// and a probe that succeeds clears them.
		return
	}
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.readErr, s.health.readAt = err, time.Now()
}

// HealthError says, in an operator's words, why the database is unhealthy.
type HealthError struct{ Reason string }

func (e *HealthError) Error() string { return e.Reason }

// noteCommit records a commit's outcome: err is the transaction's own
// error, or the first storage error of one of its writes.
func (s *Store) noteCommit(err error) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if err == nil {
		s.health.lastOK = time.Now()
		return
	}
	s.health.lastErr, s.health.errAt = err, time.Now()
}

// Health returns nil when the database can be read and written, or a
// *HealthError naming what fails.
func (s *Store) Health(ctx context.Context) error {
	var n int
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM programs LIMIT 1) AS x").Scan(&n); err != nil {
		return &HealthError{"the database cannot be read: " + Describe(err)}
	}
	s.health.mu.Lock()
	if time.Since(s.health.readAt) < readFailureMemory {
		err := s.health.readErr
		s.health.mu.Unlock()
		return &HealthError{"reads are failing: " + Describe(err)}
	}
	lastOK, lastErr, errAt := s.health.lastOK, s.health.lastErr, s.health.errAt
	failing := errAt.After(lastOK)
	if failing && time.Since(s.health.probedAt) < time.Second {
		// A probe failed or a write failed this second: say so without
		// another commit, so a polling balancer cannot add load.
		s.health.mu.Unlock()
		return &HealthError{"writes are failing: " + Describe(lastErr)}
	}
	if !failing && time.Since(lastOK) < s.healthFresh {
		s.health.mu.Unlock()
		return nil
	}
	s.health.probedAt = time.Now()
	s.health.mu.Unlock()
	// Nothing committed lately, or the last write failed: prove the write
	// path with one commit. A success clears an earlier failure, so an
	// instance whose disk recovers comes back.
	err := s.Write(ctx, func(tx *Tx) error { return tx.SetSetting("health_probe", tx.Now().Format(time.RFC3339)) })
	if err != nil {
		return &HealthError{"writes are failing: " + Describe(err)}
	}
	return nil
}

// isStorageError reports an error of the disk or the file, as opposed to
// one of the data (a constraint, a missing row).
func isStorageError(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrReadonly, sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrCorrupt, sqlite3.ErrNotADB,
		sqlite3.ErrCantOpen, sqlite3.ErrPerm, sqlite3.ErrNomem:
		return true
	}
	return false
}

// Describe says what a database error means for whoever runs potrack.
func Describe(err error) string {
	if d, ok := describePg(err); ok {
		return d
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrReadonly:
			return "the database is read-only (the file's or its folder's permissions, or a read-only mount)"
		case sqlite3.ErrFull:
			return "the disk is full"
		case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
			return "the database file is damaged; run 'potrack check' and restore a back-up"
		case sqlite3.ErrIoErr:
			return "the disk reports an I/O error"
		case sqlite3.ErrCantOpen:
			return "the database file cannot be opened"
		case sqlite3.ErrPerm:
			return "permission denied"
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return "the database is locked by another process"
		}
		return "SQLite error: " + se.Code.Error()
	}
	switch {
	case errors.Is(err, ErrClosed):
		return "the server is shutting down"
	case errors.Is(err, errSyncFailed):
		return "the disk failed to confirm a write (fsync); writes are stopped until potrack is restarted"
	case errors.Is(err, errNotDurable):
		return "the disk could not confirm a write (see the server log)"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "the check timed out"
	case errors.Is(err, syscall.EROFS):
		return "the data folder is on a read-only filesystem"
	case errors.Is(err, syscall.ENOSPC):
		return "the disk is full"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	}
	// Anything else is not for the public /healthz answer: it goes to the
	// log, and the answer stays general.
	slog.Warn("database error", "err", err)
	return "database error (see the server log)"
}

// checkWritable refuses, with a plain reason, a data folder or database
// file that cannot be written, before SQLite says "unable to open database
// file" or opens it read-only.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".potrack-write-check-*")
	if err != nil {
		return fmt.Errorf("the data folder %s cannot be written: %s", dir, Describe(err))
	}
	f.Close()
	os.Remove(f.Name())
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("the database file %s cannot be written: %s", path, Describe(err))
		}
		f.Close()
	}
	return nil
}

// checkDB runs PRAGMA quick_check (or the slower, thorough integrity_check)
// and returns what SQLite reports wrong: nothing for a sound file.
func checkDB(db *sql.DB, pragma string) ([]string, error) {
	rows, err := db.Query("PRAGMA " + pragma) // one of our two constant names
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	return problems, rows.Err()
}

// Check runs SQLite's full integrity check on the database at path, read
// only, and returns the problems it finds (none for a sound file). It is
// `potrack check`.
func Check(path string) ([]string, error) {
	if IsPostgresURL(path) {
		return nil, errors.New("potrack check reads an SQLite file; PostgreSQL checks its own data (pg_amcheck)")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("no database at %s: %s", path, Describe(err))
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder; name the database file (e.g. %s)", path, filepath.Join(path, "potrack.db"))
	}
	// Read only, and without the journal mode the server sets: a check
	// changes nothing, not even a file that is not in WAL mode yet.
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	problems, err := checkDB(db, "integrity_check")
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB) {
		// So damaged that the check cannot run: that is its finding.
		return []string{"SQLite cannot read the file: " + se.Error()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check %s: %s", path, Describe(err))
	}
	return problems, nil
}
