package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Durability without the disk on the writer's path.
//
// A 2xx answer promises the row survives a power cut, so every write is
// answered only once the disk holds it. With synchronous=FULL SQLite waits
// for the disk inside COMMIT, and the single writer sat idle for the
// length of every fsync: half its time went to waiting. Instead the writer
// commits with synchronous=NORMAL, where SQLite writes the batch's WAL
// frames without waiting for them, hands the batch to the syncer and goes
// on with the next batch at once. The syncer flushes the WAL file
// (fdatasync, one call for every batch committed meanwhile) and only then
// answers the batches' writes. Both together are what synchronous=FULL
// does, but the next batch runs while the disk works. (When nothing waits
// and no flush is running there is nothing to overlap: the writer flushes
// the batch itself, sparing the hand-off; see Store.commit.)
//
// Why this is as safe as FULL for every answered write:
//   - fdatasync applies to the file, not to the descriptor that wrote it:
//     it flushes every frame SQLite has written to the WAL so far, so a
//     batch is on disk once a sync that began after its COMMIT returns.
//     Batches are answered in commit order.
//   - In NORMAL mode SQLite still flushes the WAL's header when it starts
//     the file over, flushes the WAL before a checkpoint copies it into the
//     database, and the database file after; frames a checkpoint took are
//     in the synced database when the WAL is reused.
//   - Recovery after a crash replays WAL frames up to the last commit
//     whose checksums chain: a batch not yet synced may be lost, and it
//     was never answered.
//   - Readers may see a committed batch a millisecond before it is
//     durable. Only answers to writes promise durability, and a write that
//     builds on a batch (a replay of its key, say) commits later, so its
//     answer waits for a later sync.
//
// A failed fsync is not retried: Linux may have dropped the pages it
// could not write, so a later fsync that succeeds proves nothing. The
// store stops accepting writes (every one fails, /healthz reports it) and
// the checkpointer stops copying the WAL into the database, until potrack
// is restarted — the choice PostgreSQL made after the same discovery. The
// writes of the batches that flush covered are answered as failed, but
// they committed: readers may see them, and whether the disk holds them is
// unknown. Retries are safe for everything keyed (sales, customers,
// partners); a retried click may count twice.

// durableBatch is a committed batch waiting for the disk.
type durableBatch struct {
	batch   []*writeReq
	results []error
}

type syncer struct {
	walPath string
	wal     *os.File              // the WAL file, open while it is the same file
	walInfo os.FileInfo           // what it was when opened
	failed  atomic.Pointer[error] // the fsync failure that stopped writes
	queue   chan *durableBatch
	done    chan struct{}
	sync    func(*os.File) error // fdatasync; a test may replace it

	// inflight counts the batches sent and not answered yet; free gets a
	// token when it falls to zero (see intake).
	inflight atomic.Int32
	free     chan struct{}
}

// newSyncer flushes the WAL of the database at dbPath. SQLite keeps the
// WAL beside the file a symbolic link points to, so the link is followed.
func newSyncer(dbPath string) (*syncer, error) {
	real, err := filepath.EvalSymlinks(dbPath)
	if err != nil {
		return nil, err
	}
	return &syncer{
		walPath: real + "-wal",
		queue:   make(chan *durableBatch, 64),
		done:    make(chan struct{}),
		sync:    fdatasync,
		free:    make(chan struct{}, 1),
	}, nil
}

// send hands a committed batch to the syncer.
func (y *syncer) send(b *durableBatch) {
	y.inflight.Add(1)
	y.queue <- b
}

// idle reports whether no committed batch waits for the disk.
func (y *syncer) idle() bool { return y.inflight.Load() == 0 }

// err is the fsync failure that stopped writes, or nil.
func (y *syncer) err() error {
	if p := y.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// run answers committed batches once the disk holds them, until the queue
// is closed.
func (y *syncer) run(s *Store) {
	defer close(y.done)
	defer func() {
		if y.wal != nil {
			y.wal.Close()
		}
	}()
	for b := range y.queue {
		pending := []*durableBatch{b}
	more:
		for {
			select {
			case b, ok := <-y.queue:
				if !ok {
					break more
				}
				pending = append(pending, b)
			default:
				break more
			}
		}
		y.complete(s, pending)
		if y.inflight.Add(-int32(len(pending))) == 0 {
			select {
			case y.free <- struct{}{}:
			default:
			}
		}
	}
}

// complete flushes the WAL for committed batches and answers their writes.
func (y *syncer) complete(s *Store, pending []*durableBatch) {
	failed := y.err()
	if failed == nil {
		if err := y.flush(); err != nil {
			slog.Error("a batch of writes could not be made durable; its writes are answered as failed", "err", err)
			failed = fmt.Errorf("%w: %w", errNotDurable, err)
			if errors.Is(err, errSyncFailed) {
				y.failed.Store(&failed)
			}
		}
	}
	err := failed
	if err == nil {
		err = storageError(pending)
	}
	s.noteCommit(err)
	for _, b := range pending {
		for i, r := range b.batch {
			if failed != nil {
				r.done <- fmt.Errorf("commit: %w", failed)
			} else {
				r.done <- b.results[i]
			}
		}
	}
}

// storageError is the first storage error of one of the batches' writes:
// the batch committed, but a write of it met a failing database.
func storageError(pending []*durableBatch) error {
	for _, b := range pending {
		for _, r := range b.results {
			if isStorageError(r) {
				return r
			}
		}
	}
	return nil
}

// errNotDurable: a batch could not be made durable. Its writes are
// answered as failed, though they committed: readers may see them, and
// they may or may not be on disk. Their keys make retries safe.
var errNotDurable = errors.New("the disk did not confirm a write")

// errSyncFailed: fdatasync itself failed, which stops every later write.
var errSyncFailed = errors.New("fsync failed; restart potrack")

// flush makes every WAL frame written so far durable.
func (y *syncer) flush() error {
	if y.wal == nil {
		// While the store is open its connections keep the WAL: a
		// missing one means SQLite writes elsewhere, and nothing could be
		// promised.
		f, err := os.Open(y.walPath)
		if err != nil {
			return fmt.Errorf("open the WAL: %w", err)
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		// A new WAL file is durable only once its directory entry is.
		if err := syncDir(filepath.Dir(y.walPath)); err != nil {
			f.Close()
			return err
		}
		y.wal, y.walInfo = f, info
	}
	if err := y.sync(y.wal); err != nil {
		return fmt.Errorf("%w: %w", errSyncFailed, err)
	}
	// SQLite removes the WAL when its last connection closes (after a
	// checkpoint into the synced database) and may create a new one: the
	// file flushed must still be the one it writes.
	info, err := os.Stat(y.walPath)
	if err == nil && os.SameFile(info, y.walInfo) {
		return nil
	}
	y.wal.Close()
	y.wal = nil
	if err != nil {
		return fmt.Errorf("find the WAL: %w", err)
	}
	return y.flush()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
