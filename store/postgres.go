package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL is the engine for several instances on one database. The
// store's SQL is written once, in SQLite's dialect where the two differ
// only in spelling: placeholders are rewritten (bind), ids come back
// through RETURNING on both, and the few queries that cannot be shared
// (stats.go) come in two versions.
//
// Writes differ in shape, not in meaning. SQLite has one writer that
// groups writes into a commit; PostgreSQL has many writers, so every
// Write is a transaction of its own at SERIALIZABLE isolation: what a
// write reads to decide (is this key taken? has this customer bought
// before? is a refund waiting for this sale?) cannot be changed under it
// by another instance. When PostgreSQL finds two writes that could not
// have run one after the other, it fails one with a serialization
// failure, and the write runs again from the start (Write's functions may
// run more than once on both engines), now seeing the other's rows. The
// same key raced through several instances thus stores one row, decided
// as if the requests had come one by one.

// IsPostgresURL reports whether db names a PostgreSQL database rather than
// an SQLite file.
func IsPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// pgWriteTimeout bounds a write, all its attempts together: a database
// that stops answering (a lost network, a lock held by hand, a commit
// waiting for a standby that is gone) costs a request 503 after it, not a
// request and a connection for ever. pgx cancels the statement under way.
const pgWriteTimeout = 10 * time.Second

// pgWriteAttempts bounds how often a write is retried after serialization
// failures before its caller is told the database is busy.
const pgWriteAttempts = 20

// openPostgres connects to the database at rawURL, applies the migrations
// under PostgreSQL's advisory lock and returns the store.
func openPostgres(rawURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("the PostgreSQL URL %s is not valid: %s", RedactURL(rawURL), describePgURLError(err))
	}
	// The pool keeps pgx's default size, max(4, CPUs), unless the URL
	// sets pool_max_conns: more connections than cores that can run
	// them add serialization failures (more writes in flight at once),
	// not sales (docs/performance.md).
	// Writes finish even when their client goes away, so a server that
	// does not answer must not hold them for ever (pgWriteTimeout); reads
	// are bounded on the server's side.
	if !strings.Contains(rawURL, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if _, set := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = "30s"
	}
	// A 2xx promises the row is on disk. PostgreSQL's default,
	// synchronous_commit=on, keeps that promise; a server set to "off"
	// would not, so potrack's own sessions turn it back on.
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'`)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %s", RedactURL(rawURL), Describe(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %s", RedactURL(rawURL), Describe(err))
	}
	if err := migratePostgres(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate PostgreSQL at %s: %s", RedactURL(rawURL), describeMigration(err))
	}
	db := stdlib.OpenDBFromPool(pool)
	// database/sql keeps 2 idle connections by default and hands the rest
	// back to pgx's pool after each use: keep them all.
	db.SetMaxIdleConns(int(cfg.MaxConns))
	db.SetMaxOpenConns(int(cfg.MaxConns))
	s := &Store{
		healthFresh: healthFresh,
		read:        &dbh{DB: db, pg: true},
		pg:          &pgEngine{pool: pool, timeout: pgWriteTimeout},
		stopped:     make(chan struct{}),
	}
	return s, nil
}

// pgEngine is what a store on PostgreSQL keeps beside the shared fields.
type pgEngine struct {
	pool     *pgxpool.Pool
	inflight sync.WaitGroup // writes under way, which Close waits for
	readOnly atomic.Bool    // BreakWritesForTest
	retries  atomic.Int64   // writes run again after a collision
	timeout  time.Duration  // pgWriteTimeout; shorter in tests
}

// Retries is how many times a write ran again after a serialization
// failure or a deadlock (PostgreSQL; always 0 on SQLite).
func (s *Store) Retries() int64 {
	if s.pg == nil {
		return 0
	}
	return s.pg.retries.Load()
}

// writePostgres runs fn in a serializable transaction of its own and
// commits it, running it again after a serialization failure or a
// deadlock. Like SQLite's writer it finishes a write whose caller went
// away: the caller must not report a failure for a row that is stored.
func (s *Store) writePostgres(ctx context.Context, fn func(*Tx) error) error {
	done, err := s.pgEnter()
	if err != nil {
		return err
	}
	defer done()
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.pg.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err = s.writePostgresOnce(ctx, fn)
		if err == nil || !isRetryable(err) || attempt == pgWriteAttempts {
			break
		}
		s.pg.retries.Add(1)
		// Back off a little, at random, so the writes that collided do
		// not collide again.
		time.Sleep(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond))))
	}
	s.noteCommit(storageErr(err))
	switch {
	case err == nil:
	case isRetryable(err):
		err = fmt.Errorf("%w: %d attempts: %w", ErrBusy, pgWriteAttempts, err)
	case isConnError(err):
		err = fmt.Errorf("%w: %w", ErrUnreachable, err)
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("%w: no answer within %v: %w", ErrUnreachable, s.pg.timeout, err)
	}
	return err
}

// pgEnter admits a write unless the store is closing; done ends it (Close
// waits for the writes under way).
func (s *Store) pgEnter() (done func(), err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.pg.inflight.Add(1)
	return s.pg.inflight.Done, nil
}

var (
	// ErrBusy: a write kept colliding with others (PostgreSQL's
	// serialization failures) through every retry. Nothing of it is
	// stored; the client may send it again.
	ErrBusy = errors.New("the database is busy")
	// ErrUnreachable: the database server could not be reached.
	ErrUnreachable = errors.New("the database cannot be reached")
)

func (s *Store) writePostgresOnce(ctx context.Context, fn func(*Tx) error) error {
	sqlTx, err := s.read.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable, ReadOnly: s.pg.readOnly.Load()})
	if err != nil {
		return err
	}
	tx := &Tx{tx: sqlTx, s: s}
	defer func() {
		if tx.programsChanged {
			s.programs.invalidate()
		}
		if tx.webhooksChanged {
			s.webhookSubs.invalidate()
		}
	}()
	if err := tx.run(ctx, fn); err != nil {
		sqlTx.Rollback()
		return err
	}
	return sqlTx.Commit()
}

// storageErr keeps what Health should hear of a write's outcome: the
// database's own failures, not a write refused for its data.
func storageErr(err error) error {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		if pe.Code[:2] == "23" || pe.Code == "40001" || pe.Code == "40P01" {
			return nil
		}
		return err
	case isConnError(err), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return nil
}

// isRetryable reports a PostgreSQL error after which the same write may
// succeed when run again: a serialization failure or a deadlock.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Unreachable reports an error of a database server that could not be
// reached, or whose connection was lost under way: the request may
// succeed later, and the answer is 503, not 500.
func Unreachable(err error) bool {
	return errors.Is(err, ErrUnreachable) || isConnError(err)
}

// isConnError reports a failure to reach PostgreSQL or a connection lost
// under way, as opposed to an error PostgreSQL answered.
func isConnError(err error) bool {
	var (
		ce *pgconn.ConnectError
		oe *net.OpError
	)
	if code := pgCode(err); strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" {
		// The connection failed, or the server is shutting down or
		// starting (a restart, a fail-over): answered by PostgreSQL,
		// but about the connection, not the request.
		return true
	}
	return errors.As(err, &ce) || errors.As(err, &oe) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn)
}

// describePg says what a PostgreSQL error means for whoever runs potrack.
func describePg(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "25006":
			return "the database refuses writes (a read-only server or transaction)", true
		case pe.Code == "53100":
			return "the database server's disk is full", true
		case pe.Code[:2] == "53":
			return "the database server is out of resources (" + pe.Code + ")", true
		case pe.Code[:2] == "57", pe.Code[:2] == "08":
			return "the database server is unavailable (" + pe.Code + ")", true
		case pe.Code[:2] == "28":
			return "PostgreSQL refused the login (check the user and password in the URL)", true
		case pe.Code == "3D000":
			return "the database named in the URL does not exist", true
		case pe.Code == "40001", pe.Code == "40P01":
			return "the database is busy (too many conflicting writes); try again", true
		}
		return "PostgreSQL error " + pe.Code, true
	}
	if isConnError(err) {
		return "PostgreSQL cannot be reached", true
	}
	return "", false
}

func describePgURLError(err error) string {
	// pgx's parse errors quote the URL, password included.
	return "expected postgres://user:password@host:port/database?options"
}

func describeMigration(err error) string {
	if d, ok := describePg(err); ok {
		return d
	}
	// Our own messages (a schema newer than this binary) say it plainly.
	return err.Error()
}

// RedactURL hides the password of a database URL, for logs and errors.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil && IsPostgresURL(raw) {
			return "(the URL given)"
		}
		return raw
	}
	return u.Redacted()
}

// bind rewrites a query's ? and ?N placeholders (SQLite's) into $N
// (PostgreSQL's), leaving quoted text alone. Queries are constants, so
// each is rewritten once.
func (d *dbh) bind(q string) string {
	if !d.pg {
		return q
	}
	if b, ok := bound.Load(q); ok {
		return b.(string)
	}
	b := rebind(q)
	bound.Store(q, b)
	return b
}

var bound sync.Map // query -> rebound query

func rebind(q string) string {
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c == '\'' {
			quoted = !quoted
		}
		if c != '?' || quoted {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		if j > i+1 {
			b.WriteString("$" + q[i+1:j])
			i = j - 1
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}

// dbh is a database handle whose queries are written in SQLite's dialect
// and bound for the engine underneath.
type dbh struct {
	*sql.DB
	pg bool
}

func (d *dbh) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, d.bind(q), args...)
}

func (d *dbh) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, d.bind(q), args...)
}

func (d *dbh) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, d.bind(q), args...)
}

func (d *dbh) QueryRow(q string, args ...any) *sql.Row {
	return d.QueryRowContext(context.Background(), q, args...)
}

func (d *dbh) Query(q string, args ...any) (*sql.Rows, error) {
	return d.QueryContext(context.Background(), q, args...)
}

func (d *dbh) Exec(q string, args ...any) (sql.Result, error) {
	return d.ExecContext(context.Background(), q, args...)
}
