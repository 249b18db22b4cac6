package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestClickOnFullDiskFailsItsBatch: a click whose INSERT hits SQLITE_FULL
// makes SQLite roll back the whole transaction. Every write of the batch
// must then fail and none be stored (before the fix, the writes after the
// click ran outside the transaction and committed on their own while their
// callers were told they failed). Found by a review.
func TestClickOnFullDiskFailsItsBatch(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	partner := &Partner{ProgramID: "prog", Key: "pat"}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.InsertPartner(partner) }); err != nil {
		t.Fatal(err)
	}
	release, held := make(chan struct{}), make(chan struct{})
	go s.Write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.queryRow(`PRAGMA page_count`).Scan(&n); err != nil {
			return err
		}
		if _, err := tx.tx.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", n)); err != nil {
			return err
		}
		close(held)
		<-release
		return nil
	})
	<-held
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
	close(release)
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
