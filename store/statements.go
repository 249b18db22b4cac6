package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// Prepared statements for the writer. Preparing a statement is a quarter of
// the CPU of a write when every call does it, so the writer keeps each
// statement it runs prepared on its one connection. database/sql cannot
// prepare on that connection while a transaction holds it (the pool has
// one connection), so a statement met for the first time runs unprepared
// and is prepared before the next batch begins (prepareQueued); from then
// on Tx.StmtContext reuses it on the connection without preparing again.
//
// Only the writer goroutine touches these maps.

// maxPrepared bounds the cache: list queries with filters and IN (...)
// lists make many shapes, and only the hot few matter.
const maxPrepared = 256

type statements struct {
	prepared map[string]*sql.Stmt
	queued   map[string]bool
}

// stmt returns the prepared statement for query bound to the batch's
// transaction, or nil after queueing it to be prepared. Binding
// (Tx.StmtContext) allocates and locks, so each statement is bound once a
// batch.
func (t *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	if t.s.pg != nil {
		return nil // pgx keeps its own statement cache per connection
	}
	if st := t.bound[query]; st != nil {
		return st
	}
	st := t.s.stmts.prepared[query]
	if st == nil {
		if len(t.s.stmts.prepared)+len(t.s.stmts.queued) < maxPrepared {
			t.s.stmts.queued[query] = true
		}
		return nil
	}
	if t.bound == nil {
		t.bound = map[string]*sql.Stmt{}
	}
	st = t.tx.StmtContext(ctx, st)
	t.bound[query] = st
	return st
}

// Statements is how many SQL statements writes have run since the store
// opened (a savepoint and its release count; BEGIN and COMMIT do not):
// per write, the cost of the write path's decisions.
func (s *Store) Statements() int64 { return s.statements.Load() }

// prepareQueued prepares the statements met in earlier batches, between
// batches, when the connection is free.
func (s *Store) prepareQueued() {
	for q := range s.stmts.queued {
		delete(s.stmts.queued, q)
		if st, err := s.write.Prepare(q); err == nil {
			s.stmts.prepared[q] = st
		}
	}
}

func (s *Store) closeStatements() {
	for _, st := range s.stmts.prepared {
		st.Close()
	}
}

// exec runs a statement that changes rows; the write is dirty from then
// on (see runBatch), unless the statement failed on a constraint, which
// undoes the statement alone.
func (t *Tx) exec(query string, args ...any) (res sql.Result, err error) {
	t.s.statements.Add(1)
	ctx := t.stmtCtx()
	if st := t.stmt(ctx, query); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = t.tx.ExecContext(ctx, t.s.read.bind(query), args...)
	}
	if err == nil || !isConstraint(err) {
		t.dirty = true
	}
	return res, err
}

// stmtCtx is the context of the write's statements: never cancelled by
// the client going away (the write finishes and is answered), but on
// PostgreSQL bounded by pgWriteTimeout, which the write's context carries.
func (t *Tx) stmtCtx() context.Context {
	if t.s.pg != nil {
		return t.ctx
	}
	return context.WithoutCancel(t.ctx)
}

// insert runs an INSERT and returns the new row's id; inserted is false
// when its ON CONFLICT DO NOTHING found the key taken (nothing changed).
// SQLite gives the id of a plain INSERT, which is cheaper than RETURNING
// (SQLite buffers RETURNING's rows); PostgreSQL only through RETURNING.
func (t *Tx) insert(query string, args ...any) (id int64, inserted bool, err error) {
	if t.s.pg != nil {
		err := t.queryRow(query+" RETURNING id", args...).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		return id, err == nil, err
	}
	res, err := t.exec(query, args...)
	if err != nil {
		return 0, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return 0, false, err
	}
	id, err = res.LastInsertId()
	return id, err == nil, err
}

func (t *Tx) queryRow(query string, args ...any) *sql.Row {
	return txQuerier{t}.QueryRowContext(t.stmtCtx(), query, args...)
}

func (t *Tx) query(query string, args ...any) (*sql.Rows, error) {
	return txQuerier{t}.QueryContext(t.stmtCtx(), query, args...)
}

// txQuerier runs the read helpers' queries inside the write, prepared.
type txQuerier struct{ t *Tx }

// noteChange makes the write dirty when query is not a plain read (a
// DELETE … RETURNING, say).
func (q txQuerier) noteChange(query string) {
	if !strings.HasPrefix(query, "SELECT") {
		q.t.dirty = true
	}
}

func (q txQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	q.t.s.statements.Add(1)
	q.noteChange(query)
	if st := q.t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.t.tx.QueryRowContext(ctx, q.t.s.read.bind(query), args...)
}

func (q txQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q.t.s.statements.Add(1)
	q.noteChange(query)
	if st := q.t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.t.tx.QueryContext(ctx, q.t.s.read.bind(query), args...)
}
