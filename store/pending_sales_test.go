package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/potrack/potrack/rules"
)

// TestKeptSalesSeenWithinABatch: a batch that found no kept sales for a
// program, then keeps one, finds it for the customer later in the batch.
func TestKeptSalesSeenWithinABatch(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	release := holdWriter(s, nil)
	results := make(chan string, 3)
	submit := func(fn func(tx *Tx) (string, error)) {
		go func() {
			var out string
			err := s.Write(ctx, func(tx *Tx) (err error) { out, err = fn(tx); return err })
			results <- fmt.Sprint(out, err)
		}()
	}
	// Queued in this order, they run in this order in one batch.
	submit(func(tx *Tx) (string, error) {
		sales, err := tx.TakePendingSales("prog", "someone-else")
		return fmt.Sprint("first:", len(sales)), err
	})
	waitQueued(t, s, 1)
	submit(func(tx *Tx) (string, error) {
		return "kept", tx.SavePendingSale("prog", PendingSale{Key: "in_1", CustomerKey: "cus_1",
			Amount: rules.Money{Minor: 1000, Currency: "USD"}, Action: "sale", Source: SourceGateway, At: tx.Now()})
	})
	waitQueued(t, s, 2)
	found := make(chan int, 1)
	submit(func(tx *Tx) (string, error) {
		sales, err := tx.TakePendingSales("prog", "cus_1")
		found <- len(sales)
		return "taken", err
	})
	waitQueued(t, s, 3)
	release()
	for i := 0; i < 3; i++ {
		if r := <-results; !strings.HasSuffix(r, "<nil>") {
			t.Fatalf("a write failed: %s", r)
		}
	}
	if n := <-found; n != 1 {
		t.Fatalf("the kept sale was not found later in the same batch: %d", n)
	}
}
