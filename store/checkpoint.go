package store

import (
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// Checkpoints off the writer's path.
//
// SQLite appends every commit to the WAL and, by default, the connection
// whose commit takes the WAL past 1,000 pages copies it back into the
// database file (a checkpoint) inside that commit, with an fsync of each
// file: the single writer stopped for it a dozen times a second under
// load, and copied the same hot index pages again each time. The writer's
// own checkpoints are off (wal_autocheckpoint=0); a connection of its own
// runs a PASSIVE checkpoint every checkpointEvery while writes come in.
// PASSIVE never waits for, nor blocks, the writer or a reader: what it
// cannot copy now it copies next time, and SQLite starts the WAL over once
// a checkpoint has copied all of it. Should this connection fail, nothing
// is lost: the WAL keeps every commit until a checkpoint succeeds.
const checkpointEvery = 250 * time.Millisecond

type checkpointer struct {
	// halted: after a failed fsync the database file must not take in
	// what the WAL holds (durable.go).
	halted  func() bool
	db      *sql.DB
	commits atomic.Int64 // batches committed since the last checkpoint
	stop    chan struct{}
	done    chan struct{}
}

func newCheckpointer(dsn string, halted func() bool) (*checkpointer, error) {
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	return &checkpointer{halted: halted, db: db, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if c.commits.Swap(0) == 0 || c.halted() {
			continue
		}
		var busy, walPages, copied int
		if err := c.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walPages, &copied); err != nil {
			slog.Warn("database checkpoint failed; the WAL keeps growing until one succeeds", "err", err)
		}
	}
}

// close stops the checkpoints. The last connection to close, the writer's,
// checkpoints whatever is left.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
