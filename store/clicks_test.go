package store

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// TestClicksDoNotQueueBehindSales: a click submitted behind a backlog of
// writes is committed with the writer's next batch, before the backlog is
// through, and many clicks share one commit.
func TestClicksDoNotQueueBehindSales(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	partner := &Partner{ProgramID: "prog", Key: "pat"}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.InsertPartner(partner) }); err != nil {
		t.Fatal(err)
	}
	var batches []int
	var bmu sync.Mutex
	s.Batches = func(n int) { bmu.Lock(); batches = append(batches, n); bmu.Unlock() }

	// Hold the writer in a batch of its own while the backlog builds.
	release := make(chan struct{})
	held := make(chan struct{})
	go s.Write(ctx, func(tx *Tx) error { close(held); <-release; return nil })
	<-held
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
	close(release)
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

// waitQueued waits until n writes wait in the queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for len(s.queue) < n {
		runtimeYield()
	}
}

func runtimeYield() { runtime.Gosched() }
