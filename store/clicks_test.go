package store

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestClicksDoNotQueueBehindSales: a click submitted behind a backlog of
// writes is committed with the writer's next batch, before the backlog is
// through, and many clicks share one commit.
func TestClicksDoNotQueueBehindSales(t *testing.T) {
	s, partner := storeWithPartner(t)
	ctx := context.Background()
	var batches []int
	var bmu sync.Mutex
	s.Batches = func(n int) { bmu.Lock(); batches = append(batches, n); bmu.Unlock() }

	// Hold the writer in a batch of its own while the backlog builds.
	release := holdWriter(s, nil)
	const backlog = 600 // more than two batches of writes
	var wg sync.WaitGroup
	for i := 0; i < backlog; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s.Write(ctx, func(tx *Tx) error { return tx.SetSetting(fmt.Sprint("k", i), "v") })
		}(i)
	}
	waitQueued(t, s, backlog)
	clickDone := make(chan struct{}, 50)
	for i := 0; i < 50; i++ {
		go func() {
			if err := s.RecordClick(ctx, Click{ProgramID: "prog", PartnerID: partner.ID, URL: "https://shop.example/?aff=pat"}); err != nil {
				t.Error(err)
			}
			clickDone <- struct{}{}
		}()
	}
	for len(s.clicks) < 50 {
		runtimeYield()
	}
	release()
	wg.Wait()
	for i := 0; i < 50; i++ {
		<-clickDone
	}
	if n, _ := s.CountForTest(ctx, `SELECT count(*) FROM settings WHERE key LIKE 'k%'`); n != backlog {
		t.Fatalf("%d of the backlog's writes stored", n)
	}
	if n, _ := s.CountForTest(ctx, `SELECT count(*) FROM clicks`); n != 50 {
		t.Fatalf("%d clicks stored, want 50", n)
	}
	// The first commit after the hold carries every click and a full
	// batch of writes: the clicks did not wait for the backlog.
	bmu.Lock()
	defer bmu.Unlock()
	if len(batches) < 2 || batches[1] != maxBatch+50 {
		t.Fatalf("commits after the hold carried %v; want the first to hold all 50 clicks and %d writes", batches[1:], maxBatch)
	}
}

// storeWithPartner is a store with program "prog" and its partner "pat".
func storeWithPartner(t *testing.T) (*Store, *Partner) {
	t.Helper()
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	partner := &Partner{ProgramID: "prog", Key: "pat"}
	if err := s.Write(context.Background(), func(tx *Tx) error { return tx.InsertPartner(partner) }); err != nil {
		t.Fatal(err)
	}
	return s, partner
}

// holdWriter keeps the writer in a batch of its own, which runs first (when
// not nil), until release is called: writes submitted meanwhile queue, and
// the next batch takes them in their order.
func holdWriter(s *Store, first func(tx *Tx) error) (release func()) {
	held, done := make(chan struct{}), make(chan struct{})
	go s.Write(context.Background(), func(tx *Tx) error {
		if first != nil {
			if err := first(tx); err != nil {
				return err
			}
		}
		close(held)
		<-done
		return nil
	})
	<-held
	return func() { close(done) }
}

// waitQueued waits until n writes wait in the queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for len(s.queue) < n {
		runtimeYield()
	}
}

func runtimeYield() { runtime.Gosched() }

// TestClickOnFullDiskFailsItsBatch: a click whose INSERT hits SQLITE_FULL
// makes SQLite roll back the whole transaction. Every write of the batch
// must then fail and none be stored (before the fix, the writes after the
// click ran outside the transaction and committed on their own while their
// callers were told they failed). Found by a review.
func TestClickOnFullDiskFailsItsBatch(t *testing.T) {
	s, partner := storeWithPartner(t)
	ctx := context.Background()
	// The held batch caps the file at its size: the next insert that needs
	// a page finds the disk full.
	release := holdWriter(s, func(tx *Tx) error {
		var n int
		if err := tx.queryRow(`PRAGMA page_count`).Scan(&n); err != nil {
			return err
		}
		_, err := tx.tx.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", n))
		return err
	})
	res := make(chan string, 3)
	go func() {
		err := s.Write(ctx, func(tx *Tx) error { return tx.SetSetting("w1", "x") })
		res <- fmt.Sprint("w1: ", err)
	}()
	waitQueued(t, s, 1)
	go func() {
		err := s.RecordClick(ctx, Click{ProgramID: "prog", PartnerID: partner.ID, URL: strings.Repeat("u", 200000)})
		res <- fmt.Sprint("click: ", err)
	}()
	for len(s.clicks) < 1 {
		runtimeYield()
	}
	go func() {
		err := s.Write(ctx, func(tx *Tx) error { return tx.SetSetting("w2", "x") })
		res <- fmt.Sprint("w2: ", err)
	}()
	waitQueued(t, s, 2)
	release()
	for i := 0; i < 3; i++ {
		if r := <-res; strings.HasSuffix(r, "<nil>") {
			t.Errorf("%s: reported stored, but its batch failed", r)
		}
	}
	for _, k := range []string{"w1", "w2"} {
		if n, _ := s.CountForTest(ctx, `SELECT count(*) FROM settings WHERE key = '`+k+`'`); n != 0 {
			t.Errorf("%s was stored although its batch failed", k)
		}
	}
	if n, _ := s.CountForTest(ctx, `SELECT count(*) FROM clicks`); n != 0 {
		t.Errorf("%d clicks stored from a failed batch", n)
	}
}
