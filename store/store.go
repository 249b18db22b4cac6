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
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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
	read  *dbh      // the read pool; on PostgreSQL, the one pool
	write *sql.DB   // SQLite's one writing connection; nil on PostgreSQL
	pg    *pgEngine // postgres.go; nil on SQLite

	queue      chan *writeReq
	clicks     chan *writeReq // clicks.go
	mu         sync.RWMutex   // guards closed against concurrent Write/Close
	closed     bool
	stopped    chan struct{}
	durable    *syncer       // durable.go
	checkpoint *checkpointer // checkpoint.go

	// Batches reports the size of every group the writer ran (clicks
	// included), committed or not, for metrics.
	Batches func(size int)
	// statements counts the statements writes ran (Statements).
	statements atomic.Int64

	health      healthState
	healthFresh time.Duration
	programs    programCache
	partners    partnerCache
	stmts       statements
	refusals    refusalBuffer // refusals.go
	clockSkew   atomic.Int64  // clock.go: what tests add to the clock, in seconds
	eventView   eventViewFunc // webhooks.go: how Announce renders an event's data
	webhookSubs webhookSubs   // webhooks.go: the event types each program's endpoints take
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
	return "file:" + escapePath(path) + "?" + q.Encode()
}

type writeReq struct {
	ctx   context.Context
	fn    func(*Tx) error
	click *Click // a click instead of fn (clicks.go)
	done  chan error
}

// Open opens (creating when needed) the database at path and brings its
// schema up to date. A database written by a newer potrack is refused.
// path is an SQLite file, or a postgres:// URL (postgres.go).
func Open(path string) (*Store, error) {
	if IsPostgresURL(path) {
		return openPostgres(path)
	}
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
	// Durability rests on the WAL (durable.go): a filesystem where SQLite
	// cannot keep one is refused rather than written unsafely.
	var mode string
	if err := write.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		write.Close()
		return nil, fmt.Errorf("open %s: SQLite could not switch it to WAL mode (journal mode %q, %v); put the data folder on a local filesystem", path, mode, err)
	}
	// The checkpointer copies the WAL back into the database (see
	// checkpoint.go). The setting is the connection's: should
	// database/sql ever replace it, the new one checkpoints by itself.
	if _, err := write.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
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
	readDB, err := sql.Open("sqlite3", dsn+"&mode=ro")
	if err != nil {
		write.Close()
		return nil, err
	}
	read := &dbh{DB: readDB}
	read.SetMaxOpenConns(8)
	durable, err := newSyncer(path)
	if err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open %s: %s", path, Describe(err))
	}
	ckpt, err := newCheckpointer(dsn, func() bool { return durable.err() != nil })
	if err != nil {
		read.Close()
		write.Close()
		return nil, err
	}

	s := &Store{
		stmts:       statements{prepared: map[string]*sql.Stmt{}, queued: map[string]bool{}},
		healthFresh: healthFresh,
		read:        read,
		write:       write,
		queue:       make(chan *writeReq, 1024),
		clicks:      make(chan *writeReq, 4096),
		stopped:     make(chan struct{}),
		durable:     durable,
		checkpoint:  ckpt,
	}
	// The migrations committed without waiting for the disk.
	if err := s.durable.flush(); err != nil {
		ckpt.db.Close()
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open %s: %s", path, Describe(err))
	}
	go s.durable.run(s)
	go s.checkpoint.run()
	go s.writer()
	return s, nil
}

// escapePath makes a file path safe in a file: URI: SQLite decodes %XX,
// and ? or # would end the path.
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
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
	// Refused calls counted in memory are written while the writer runs.
	if err := s.stopRefusals(); err != nil && !errors.Is(err, ErrClosed) {
		slog.Warn("could not write the refused calls' last counts", "err", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.pg != nil {
		s.mu.Unlock()
		s.pg.inflight.Wait()
		err := s.read.Close()
		s.pg.pool.Close()
		return err
	}
	close(s.queue)
	close(s.clicks)
	s.mu.Unlock()
	<-s.stopped
	return errors.Join(s.checkpoint.close(), s.read.Close(), s.write.Close())
}

// Write runs fn inside the shared write transaction and returns once that
// transaction is on disk (or fn's error). When fn returns an error, its
// changes are undone and the other writes of the group are not affected.
// fn may run more than once (see runBatch): it must only assign what it
// finds, never accumulate it, and must not keep tx after returning.
func (s *Store) Write(ctx context.Context, fn func(*Tx) error) error {
	if s.pg != nil {
		return s.writePostgres(ctx, fn)
	}
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
	in := &intake{queue: s.queue, clicks: s.clicks, disk: s.durable}
	for {
		batch := in.next()
		if batch == nil {
			break
		}
		s.prepareQueued()
		s.commit(in, batch)
	}
	s.closeStatements()
}

// intake hands the writer its requests: clicks ahead of other writes, at
// most maxBatch writes and maxClickBatch clicks a batch.
//
// A batch stays open while the disk is busy. Its writes cannot be answered
// before a flush that starts after their commit, and the flush under way
// must end first: committing a small batch now would cost a commit, and
// soon a flush, of its own and gain nothing. So while a flush is running,
// requests that arrive join the open batch, and it commits when the disk
// is free (or the batch is full). An idle disk gets every batch at once.
type intake struct {
	queue, clicks  chan *writeReq // nil once closed
	writes, nclick int            // in the open batch
	disk           *syncer
	nap            *time.Timer
}

// napFor is how long an open batch waits for more requests while the disk
// is busy.
const napFor = 500 * time.Microsecond

// next waits for the first request of a batch and returns it with every
// request waiting behind it (up to the batch's bounds); nil once both
// queues are closed and empty.
func (in *intake) next() []*writeReq {
	in.writes, in.nclick = 0, 0
	for in.queue != nil || in.clicks != nil {
		var first *writeReq
		// A waiting click goes first, however many writes wait.
		if in.clicks != nil {
			if r, ok, waiting := poll(in.clicks); waiting {
				if first = in.take(r, ok, &in.clicks); first == nil {
					continue
				}
			}
		}
		if first == nil {
			select {
			case r, ok := <-in.clicks:
				first = in.take(r, ok, &in.clicks)
			case r, ok := <-in.queue:
				first = in.take(r, ok, &in.queue)
			}
		}
		if first != nil {
			return append([]*writeReq{first}, in.waiting()...)
		}
	}
	return nil
}

// waiting takes the requests waiting now, clicks first, within the
// batch's bounds.
func (in *intake) waiting() []*writeReq {
	var got []*writeReq
	for in.clicks != nil && in.nclick < maxClickBatch {
		r, ok, waiting := poll(in.clicks)
		if !waiting {
			break
		}
		if r = in.take(r, ok, &in.clicks); r != nil {
			got = append(got, r)
		}
	}
	for in.queue != nil && in.writes < maxBatch {
		r, ok, waiting := poll(in.queue)
		if !waiting {
			break
		}
		if r = in.take(r, ok, &in.queue); r != nil {
			got = append(got, r)
		}
	}
	return got
}

// take counts a received request, or forgets a closed channel.
func (in *intake) take(r *writeReq, ok bool, ch *chan *writeReq) *writeReq {
	if !ok {
		*ch = nil
		return nil
	}
	if r.click != nil {
		in.nclick++
	} else {
		in.writes++
	}
	return r
}

// more returns the requests that join the open batch while the disk is
// busy: those waiting now, or those that arrive before it is free. None
// means commit: at once when the disk is free.
func (in *intake) more() []*writeReq {
	for {
		full := in.nclick >= maxClickBatch || in.writes >= maxBatch
		if full || in.disk.idle() || (in.clicks == nil && in.queue == nil) {
			return nil
		}
		if got := in.waiting(); len(got) > 0 {
			return got
		}
		// Nap rather than wake for every request: each wake-up is a
		// thread switch, dearer than the insert it serves.
		if in.nap == nil {
			in.nap = time.NewTimer(napFor)
		} else {
			in.nap.Reset(napFor)
		}
		select {
		case <-in.nap.C:
		case <-in.disk.free:
			in.nap.Stop()
			return nil
		}
	}
}

// poll receives from ch without waiting; waiting reports whether there
// was anything (a request, or the channel's close).
func poll(ch chan *writeReq) (r *writeReq, ok, waiting bool) {
	select {
	case r, ok = <-ch:
		return r, ok, true
	default:
		return nil, false, false
	}
}

// commit runs a batch, taking in what arrives while it is open, and hands
// it to the syncer.
func (s *Store) commit(in *intake, batch []*writeReq) {
	results, err := s.runBatch(in, &batch, false)
	if errors.Is(err, errReplay) {
		// A write failed after changing rows. Without a savepoint its
		// changes cannot be undone alone: the batch was rolled back and
		// runs again, each write under its own savepoint.
		results, err = s.runBatch(nil, &batch, true)
	}
	if s.Batches != nil {
		s.Batches(len(batch))
	}
	if err == nil {
		s.checkpoint.commits.Add(1)
		// Answered once the disk holds the batch (durable.go). With no
		// flush running and no request waiting there is nothing to overlap
		// the flush with: the writer does it, sparing the hand-off.
		b := &durableBatch{batch: batch, results: results}
		if s.durable.idle() && len(s.queue) == 0 && len(s.clicks) == 0 {
			s.durable.complete(s, []*durableBatch{b})
			return
		}
		s.durable.send(b)
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
//
// in, when not nil, adds the requests that arrive while the batch is open
// (see intake); the batch's requests end up in *batchp either way.
func (s *Store) runBatch(in *intake, batchp *[]*writeReq, careful bool) ([]error, error) {
	if err := s.durable.err(); err != nil {
		return nil, err
	}
	results := make([]error, 0, len(*batchp))
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
		if tx.webhooksChanged {
			s.webhookSubs.invalidate()
		}
	}()
	for i := 0; ; i++ {
		if i == len(*batchp) {
			if in == nil {
				break
			}
			more := in.more()
			if len(more) == 0 {
				break
			}
			*batchp = append(*batchp, more...)
		}
		r := (*batchp)[i]
		if r.ctx.Err() != nil {
			results = append(results, r.ctx.Err())
			continue
		}
		if r.click != nil {
			err := tx.insertClick(r.ctx, r.click)
			if err != nil && !isConstraint(err) {
				// A full disk, an I/O error or no memory makes SQLite roll
				// back the whole transaction, not the statement: the batch
				// is gone, so every write of it fails.
				sqlTx.Rollback()
				return nil, fmt.Errorf("%w: %w", errUndoFailed, err)
			}
			results = append(results, err)
			continue
		}
		err := tx.run(r.ctx, r.fn)
		if tx.broken != nil {
			// A failed write could not be undone: its partial rows must
			// not commit with the others, so none commit.
			sqlTx.Rollback()
			return nil, tx.broken
		}
		if err != nil && tx.dirty && !careful {
			sqlTx.Rollback()
			return nil, errReplay
		}
		results = append(results, err)
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
	// webhooksChanged: a write of the batch changed a webhook endpoint,
	// so what Announce remembers is emptied once the batch is over.
	webhooksChanged bool
	// noPending holds the programs this batch found without kept gateway
	// sales (pending_sales.go).
	noPending map[string]bool
	// bound holds the prepared statements bound to this transaction.
	bound map[string]*sql.Stmt
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
	t.now = t.s.Now() // rows store whole seconds
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

// pgCode is a PostgreSQL error's SQLSTATE, "" for any other error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Now is the time of the current write; every row a write creates shares it.
func (t *Tx) Now() time.Time { return t.now }

// querier is what read helpers need, so the same code serves the read pool
// and reads inside a write transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (t *Tx) q() (context.Context, querier) { return t.stmtCtx(), txQuerier{t} }

// isConstraint reports a constraint violation: the statement failed and
// changed nothing, and the transaction goes on.
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint || strings.HasPrefix(pgCode(err), "23")
}

// isUnique reports a UNIQUE or PRIMARY KEY constraint violation: a key
// that is taken.
func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey) ||
		pgCode(err) == "23505"
}

func unix(t time.Time) int64 { return t.Unix() }

func fromUnix(s int64) time.Time { return time.Unix(s, 0).UTC() }
