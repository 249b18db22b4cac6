// Package store keeps potrack's data in SQLite. It is the only package that
// speaks SQL. Reads use a pool of connections; every write goes through one
// writer goroutine that groups concurrent writes into a single transaction
// (group commit), so SQLite never sees two writers and one fsync serves many
// callers.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

var (
	// ErrNotFound is returned when a looked-up row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrClosed is returned for writes submitted after Close began.
	ErrClosed = errors.New("store is closed")
)

// maxBatch bounds how many queued writes share one transaction, so one
// commit never holds many callers for long.
const maxBatch = 256

// Store is the database handle. It is safe for concurrent use.
type Store struct {
	read  *sql.DB
	write *sql.DB

	queue   chan *writeReq
	clicks  chan *writeReq // clicks.go
	mu      sync.RWMutex   // guards closed against concurrent Write/Close
	closed  bool
	stopped chan struct{}
	durable *syncer // durable.go

	// Batches reports the size of every group the writer ran (clicks
	// included), committed or not, for metrics.
	Batches func(size int)

	health      healthState
	healthFresh time.Duration
	programs    programCache
	partners    partnerCache
	stmts       statements
}

// dsn is the connection string for the database at path.
func dsn(path string) string {
	// synchronous=NORMAL: SQLite writes each commit to the WAL without
	// waiting for the disk; the syncer (durable.go) flushes the WAL before
	// any write is answered, so a 2xx still promises the row survives a
	// crash, while the writer goes on with the next batch.
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	// SQLite decodes %XX in URI file names, and ? or # would end the path.
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + q.Encode()
}

type writeReq struct {
	ctx   context.Context
	fn    func(*Tx) error
	click *Click // a click instead of fn (clicks.go)
	done  chan error
}

// Open opens (creating when needed) the database at path and brings its
// schema up to date. A database written by a newer potrack is refused.
func Open(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data folder: %w", err)
		}
	}
	if err := checkWritable(path); err != nil {
		return nil, err
	}
	dsn := dsn(path)
	write, err := sql.Open("sqlite3", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxLifetime(0)
	if err := pingUntilFree(write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %s", path, Describe(err))
	}
	// A damaged file is refused at start, not found out by the first
	// writes that fail on it.
	if problems, err := checkDB(write, "quick_check"); err != nil || len(problems) > 0 {
		write.Close()
		if err == nil {
			err = fmt.Errorf("%s", strings.Join(problems[:min(len(problems), 3)], "; "))
		}
		return nil, fmt.Errorf("the database %s is damaged (%s): restore a back-up; 'potrack check' lists every problem", path, Describe(err))
	}
	if err := migrate(write); err != nil {
		write.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite3", dsn+"&mode=ro")
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(8)

	s := &Store{
		stmts:       statements{prepared: map[string]*sql.Stmt{}, queued: map[string]bool{}},
		healthFresh: healthFresh,
		read:        read,
		write:       write,
		queue:       make(chan *writeReq, 1024),
		clicks:      make(chan *writeReq, 4096),
		stopped:     make(chan struct{}),
		durable:     newSyncer(path),
	}
	// The migrations committed without waiting for the disk.
	if err := s.durable.flush(); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open %s: %s", path, Describe(err))
	}
	go s.durable.run(s)
	go s.writer()
	return s, nil
}

// pingUntilFree opens the first connection. Switching a new database to WAL
// takes an exclusive lock that SQLite refuses at once, without its busy
// timeout, while another process is doing the same: several servers
// starting together wait for each other here instead of failing.
func pingUntilFree(db *sql.DB) error {
	deadline := time.Now().Add(10 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		err := db.Ping()
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || (se.Code != sqlite3.ErrBusy && se.Code != sqlite3.ErrLocked) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// Close stops accepting writes, finishes the queued ones and closes the
// database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	close(s.clicks)
	s.mu.Unlock()
	<-s.stopped
	return errors.Join(s.read.Close(), s.write.Close())
}

// Write runs fn inside the shared write transaction and returns once that
// transaction is on disk (or fn's error). When fn returns an error, its
// changes are undone and the other writes of the group are not affected.
// fn may run more than once (see runBatch): it must only assign what it
// finds, never accumulate it, and must not keep tx after returning.
func (s *Store) Write(ctx context.Context, fn func(*Tx) error) error {
	return s.submit(s.queue, &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// submit hands req to the writer through ch and waits for its commit.
func (s *Store) submit(ch chan *writeReq, req *writeReq) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	ch <- req
	s.mu.RUnlock()
	// Wait for the commit even when ctx ends: the write may already be in
	// the transaction, and the caller must not report failure for a row
	// that is stored.
	return <-req.done
}

func (s *Store) writer() {
	defer close(s.stopped)
	defer func() { <-s.durable.done }()
	defer close(s.durable.queue)
	queue, clicks := s.queue, s.clicks
	for queue != nil || clicks != nil {
		var batch []*writeReq
		select {
		case r, ok := <-clicks:
			if !ok {
				clicks = nil
				continue
			}
			batch = append(batch, r)
		case r, ok := <-queue:
			if !ok {
				queue = nil
				continue
			}
			batch = append(batch, r)
		}
		// Every waiting click joins the batch, however many writes wait
		// ahead of it: clicks never queue behind sales.
		writes := 0
		if batch[0].click == nil {
			writes = 1
		}
		batch = drain(clicks, batch, maxClickBatch+writes)
		batch = drain(queue, batch, len(batch)+maxBatch-writes)
		s.prepareQueued()
		s.commit(batch)
	}
	s.closeStatements()
}

// drain appends what ch holds now, up to max requests in batch.
func drain(ch chan *writeReq, batch []*writeReq, max int) []*writeReq {
	for ch != nil && len(batch) < max {
		select {
		case r, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (s *Store) commit(batch []*writeReq) {
	results, err := s.runBatch(batch, false)
	if errors.Is(err, errReplay) {
		// A write failed after changing rows. Without a savepoint its
		// changes cannot be undone alone: the batch was rolled back and
		// runs again, each write under its own savepoint.
		results, err = s.runBatch(batch, true)
	}
	if s.Batches != nil {
		s.Batches(len(batch))
	}
	if err == nil {
		// Answered once the disk holds the batch (durable.go).
		s.durable.queue <- &durableBatch{batch: batch, results: results}
		return
	}
	s.noteCommit(err)
	for _, r := range batch {
		// Every write of a failed batch fails, whatever its own outcome:
		// nothing of it is stored, and an answer of its own (a conflict,
		// say) may rest on rows of the batch that never were.
		r.done <- fmt.Errorf("commit: %w", err)
	}
}

// errReplay: a write of an optimistic batch failed after changing rows.
var errReplay = errors.New("replay the batch with savepoints")

// runBatch runs the batch's writes in one transaction and commits it.
//
// Most writes either succeed or fail before they change anything (a
// conflict, an unknown customer), so by default no write pays for a
// savepoint and its release: a write that fails having changed nothing
// needs no undo, and a failed statement undoes itself. When a write fails
// after changing rows (rare: a conflict found after a customer was
// created, say), the transaction is rolled back and the caller runs the
// batch again with a savepoint per write (careful), where that write is
// undone alone. A write's function may therefore run twice; it must only
// assign its results, never accumulate them.
func (s *Store) runBatch(batch []*writeReq, careful bool) ([]error, error) {
	if err := s.durable.err(); err != nil {
		return nil, err
	}
	results := make([]error, len(batch))
	sqlTx, err := s.write.Begin()
	if err != nil {
		return nil, err
	}
	tx := &Tx{tx: sqlTx, s: s, careful: careful}
	// Whether the batch commits or not, cached programs may be older than
	// what a reader sees next.
	defer func() {
		if tx.programsChanged {
			s.programs.invalidate()
		}
	}()
	for i, r := range batch {
		if r.ctx.Err() != nil {
			results[i] = r.ctx.Err()
			continue
		}
		if r.click != nil {
			results[i] = tx.insertClick(r.ctx, r.click)
			if results[i] != nil && !isConstraint(results[i]) {
				// A full disk, an I/O error or no memory makes SQLite roll
				// back the whole transaction, not the statement: the batch
				// is gone, so every write of it fails.
				sqlTx.Rollback()
				return nil, fmt.Errorf("%w: %w", errUndoFailed, results[i])
			}
			continue
		}
		results[i] = tx.run(r.ctx, r.fn)
		if tx.broken != nil {
			// A failed write could not be undone: its partial rows must
			// not commit with the others, so none commit.
			sqlTx.Rollback()
			return nil, tx.broken
		}
		if results[i] != nil && tx.dirty && !careful {
			sqlTx.Rollback()
			return nil, errReplay
		}
	}
	return results, sqlTx.Commit()
}

// Tx is the write transaction handed to Write's function.
type Tx struct {
	s   *Store
	tx  *sql.Tx
	ctx context.Context
	now time.Time

	// broken is set when a failed write's changes could not be rolled
	// back to its savepoint; the whole batch then fails.
	broken error
	// programsChanged: a write of the batch changed a program, so the
	// program cache is emptied once the batch is over.
	programsChanged bool
	// noPending holds the programs this batch found without kept gateway
	// sales (pending_sales.go).
	noPending map[string]bool
	// newPartners holds the partners this batch created (Tx.Partner).
	newPartners map[int64]bool
	// careful: every write runs under a savepoint (see runBatch).
	careful bool
	// dirty: the current write changed rows, or met an error after which
	// SQLite may have undone more than the statement.
	dirty bool
}

// errUndoFailed wraps the error of a ROLLBACK TO that failed.
var errUndoFailed = errors.New("a failed write could not be undone")

func (t *Tx) run(ctx context.Context, fn func(*Tx) error) (err error) {
	t.ctx = ctx
	t.now = time.Now().UTC().Truncate(time.Second) // rows store whole seconds
	t.dirty = false
	if !t.careful {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("write panicked: %v", p)
				t.dirty = true // what it left half done is unknown
			}
			if err != nil && unsafeToContinue(err) {
				t.dirty = true
			}
		}()
		return fn(t)
	}
	if _, err := t.exec("SAVEPOINT w"); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
		if err != nil {
			if _, rerr := t.exec("ROLLBACK TO w"); rerr != nil {
				t.broken = fmt.Errorf("%w: %w", errUndoFailed, rerr)
				return
			}
		}
		if _, rerr := t.exec("RELEASE w"); rerr != nil {
			t.broken = rerr
		}
	}()
	return fn(t)
}

// unsafeToContinue reports an SQLite error other than a constraint
// violation: after a full disk, an I/O error or no memory SQLite may have
// rolled back the transaction, not just the statement, and only a
// savepoint's ROLLBACK TO can tell.
func unsafeToContinue(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code != sqlite3.ErrConstraint
}

// Now is the time of the current write; every row a write creates shares it.
func (t *Tx) Now() time.Time { return t.now }

// querier is what read helpers need, so the same code serves the read pool
// and reads inside a write transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (t *Tx) q() (context.Context, querier) { return context.WithoutCancel(t.ctx), txQuerier{t} }

// isConstraint reports a constraint violation: the statement failed and
// changed nothing, and the transaction goes on.
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

// isUnique reports a UNIQUE constraint violation.
func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

func unix(t time.Time) int64 { return t.Unix() }

func fromUnix(s int64) time.Time { return time.Unix(s, 0).UTC() }
