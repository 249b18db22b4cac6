package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestAnswerWaitsForTheDisk: a write is answered only after the WAL was
// flushed following its commit; while a flush runs the writer goes on, and
// the writes that arrive share the next batch, committed when the disk is
// free. (A batch committed with nothing waiting is flushed by the writer
// itself: there is nothing to overlap; here a backlog keeps the pipeline.)
func TestAnswerWaitsForTheDisk(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	entered, release := make(chan struct{}, 16), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before Close, on failure too
	var synced atomic.Value
	s.durable.sync = func(f *os.File) error {
		synced.Store(f.Name())
		entered <- struct{}{}
		<-release
		return fdatasync(f)
	}
	var sizes []int
	var mu sync.Mutex
	s.Batches = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }

	// The held write's batch commits with a backlog waiting, so its flush
	// runs beside the next batches: a full one, which commits at once, and
	// the rest, which waits for the disk.
	hold := holdWriter(s, nil)
	const n, extra = maxBatch, 10
	var ran atomic.Int32
	answers := make(chan error, n+extra)
	for i := range n + extra {
		go func() {
			answers <- s.Write(ctx, func(tx *Tx) error { ran.Add(1); return tx.SetSetting(fmt.Sprint("w", i), "1") })
		}()
	}
	waitQueued(t, s, n+extra)
	hold()
	<-entered // the first batch is committed and its flush has begun
	if name, _ := synced.Load().(string); !strings.HasSuffix(name, "p.db-wal") {
		t.Fatalf("flushed %q, want the database's WAL", name)
	}
	for deadline := time.Now().Add(10 * time.Second); ran.Load() < n+extra; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes ran; the rest should run while the disk is busy", ran.Load(), n+extra)
		}
	}
	select {
	case err := <-answers:
		t.Fatalf("a write was answered (%v) before the flush after its commit", err)
	default:
	}
	if n, _ := s.CountForTest(ctx, `SELECT count(*) FROM settings WHERE key LIKE 'w%'`); n != maxBatch {
		t.Fatalf("%d writes committed while the disk was busy, want the full batch's %d: the last batch waits for the disk", n, maxBatch)
	}
	once.Do(func() { close(release) })
	for range n + extra {
		if err := <-answers; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if sizes[len(sizes)-1] != extra {
		t.Fatalf("batches %v: want the %d writes behind the full batch in one", sizes, extra)
	}
}

// TestFailedFlushStopsWrites: once the disk refuses a flush, the writes it
// covered fail, every later write fails without running, and /healthz
// says why.
func TestFailedFlushStopsWrites(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	var fail atomic.Bool
	s.durable.sync = func(f *os.File) error {
		if fail.Load() {
			return syscall.EIO
		}
		return fdatasync(f)
	}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetSetting("before", "ok") }); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	err := s.Write(ctx, func(tx *Tx) error { return tx.SetSetting("lost", "?") })
	if err == nil || !errors.Is(err, errNotDurable) {
		t.Fatalf("write during a failed flush: err = %v", err)
	}
	fail.Store(false) // a later flush that succeeds proves nothing
	ran := false
	err = s.Write(ctx, func(tx *Tx) error { ran = true; return tx.SetSetting("after", "ok") })
	if err == nil || ran {
		t.Fatalf("write after a failed flush: err = %v, ran = %v", err, ran)
	}
	var he *HealthError
	if err := s.Health(ctx); !errors.As(err, &he) || !strings.Contains(he.Reason, "restart") {
		t.Fatalf("health after a failed flush: %v", err)
	}
	if !s.checkpoint.halted() {
		t.Fatal("the checkpointer still copies the WAL into the database after a failed flush")
	}
}

// TestSymlinkedDatabaseIsFlushed: SQLite keeps the WAL beside the file a
// symbolic link points to; that is the file flushed.
func TestSymlinkedDatabaseIsFlushed(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "p.db")
	if err := os.Symlink(filepath.Join(real, "p.db"), link); err != nil {
		t.Fatal(err)
	}
	s, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var flushed atomic.Value
	s.durable.sync = func(f *os.File) error { flushed.Store(f.Name()); return fdatasync(f) }
	if err := s.Write(context.Background(), func(tx *Tx) error { return tx.SetSetting("k", "v") }); err != nil {
		t.Fatal(err)
	}
	if name, _ := flushed.Load().(string); name != filepath.Join(real, "p.db-wal") {
		t.Fatalf("flushed %q, want the WAL beside the real file", name)
	}
}

// TestDirtyFailureReplaysTheBatch: writes run without savepoints; one that
// fails after changing rows makes the batch run again with a savepoint per
// write, where it is undone alone. One that fails before changing
// anything costs no replay.
func TestDirtyFailureReplaysTheBatch(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	runs := make([]atomic.Int32, 4)
	write := func(i int, fn func(tx *Tx) error) chan error {
		done := make(chan error, 1)
		go func() {
			done <- s.Write(ctx, func(tx *Tx) error { runs[i].Add(1); return fn(tx) })
		}()
		return done
	}

	// A batch whose failing write changed nothing commits at once.
	release := holdWriter(s, nil)
	clean := []chan error{write(0, func(tx *Tx) error { return tx.SetSetting("a", "1") })}
	waitQueued(t, s, 1)
	clean = append(clean, write(1, func(tx *Tx) error { return errors.New("refused before any row") }))
	waitQueued(t, s, 2)
	release()
	if err := <-clean[0]; err != nil {
		t.Fatal(err)
	}
	if err := <-clean[1]; err == nil {
		t.Fatal("the refused write succeeded")
	}
	if runs[0].Load() != 1 || runs[1].Load() != 1 {
		t.Fatalf("a clean failure replayed the batch: runs %d, %d", runs[0].Load(), runs[1].Load())
	}

	// So does one whose claim found its key taken: it changed nothing.
	if err := s.Write(ctx, func(tx *Tx) error {
		return tx.InsertCustomer(&Customer{ProgramID: "prog", Key: "taken"})
	}); err != nil {
		t.Fatal(err)
	}
	release = holdWriter(s, nil)
	claim := []chan error{write(0, func(tx *Tx) error { return tx.SetSetting("b", "1") })}
	waitQueued(t, s, 1)
	claim = append(claim, write(1, func(tx *Tx) error {
		if created, err := tx.ClaimCustomer(&Customer{ProgramID: "prog", Key: "taken"}); err != nil || created {
			return fmt.Errorf("claim of a taken key: created %v, %v", created, err)
		}
		return errors.New("conflict")
	}))
	waitQueued(t, s, 2)
	release()
	if err := <-claim[0]; err != nil {
		t.Fatal(err)
	}
	if err := <-claim[1]; err == nil || err.Error() != "conflict" {
		t.Fatalf("the conflicting write: %v", err)
	}
	if runs[0].Load() != 2 || runs[1].Load() != 2 {
		t.Fatalf("a conflict replayed the batch: runs %d, %d", runs[0].Load(), runs[1].Load())
	}

	// A write that fails after its first row replays the batch.
	release = holdWriter(s, nil)
	dirty := []chan error{write(2, func(tx *Tx) error { return tx.InsertPartner(&Partner{ProgramID: "prog", Key: "kept"}) })}
	waitQueued(t, s, 1)
	dirty = append(dirty, write(3, func(tx *Tx) error {
		if err := tx.InsertPartner(&Partner{ProgramID: "prog", Key: "undone"}); err != nil {
			return err
		}
		return errors.New("refused after a row")
	}))
	waitQueued(t, s, 2)
	release()
	if err := <-dirty[0]; err != nil {
		t.Fatal(err)
	}
	if err := <-dirty[1]; err == nil || !strings.Contains(err.Error(), "refused after a row") {
		t.Fatalf("the failing write: err = %v", err)
	}
	if runs[2].Load() != 2 || runs[3].Load() != 2 {
		t.Fatalf("runs %d, %d: want the batch run twice", runs[2].Load(), runs[3].Load())
	}
	if _, err := s.Partner(ctx, "prog", PartnerRef{Key: "kept"}); err != nil {
		t.Fatalf("the good write of the replayed batch: %v", err)
	}
	if _, err := s.Partner(ctx, "prog", PartnerRef{Key: "undone"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed write's row was kept: %v", err)
	}
}

// TestCheckpointsOffTheWriter: the writer never checkpoints; the
// checkpointer copies the WAL into the database file soon after writes.
func TestCheckpointsOffTheWriter(t *testing.T) {
	s, path := openTest(t)
	ctx := context.Background()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := s.write.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("the writer's wal_autocheckpoint is %d (%v), want 0", auto, err)
	}
	value := strings.Repeat("x", 1000)
	for i := range 20 {
		err := s.Write(ctx, func(tx *Tx) error {
			for j := range 100 {
				if err := tx.SetSetting(fmt.Sprint("k", i, "-", j), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// About 2 MB of rows, more than the 1,000 pages after which SQLite's
	// own checkpoint would have run inside a commit.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > before.Size()+1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes after 2 MB of writes: no checkpoint copied the WAL", info.Size())
		}
	}
}
