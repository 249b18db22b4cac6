package store

import (
	"context"
	"testing"
	"time"

	"github.com/potrack/potrack/rules"
)

// A pending refund total only grows, a full refund wins over any partial
// one, and taking it forgets it.
func TestPendingRefunds(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	insertProgram(t, s, "other")
	tests := []struct {
		name   string
		saves  []int64
		want   int64
		wantOK bool
	}{
		{"none", nil, 0, false},
		{"one partial", []int64{500}, 500, true},
		{"a later smaller total is ignored", []int64{500, 200}, 500, true},
		{"a larger total replaces", []int64{200, 500}, 500, true},
		{"full wins over partial", []int64{500, -1, 800}, FullRefund, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			key := "ch_" + tc.name
			err := s.Write(ctx, func(tx *Tx) error {
				for _, v := range tc.saves {
					if err := tx.SavePendingRefund("prog", key, v); err != nil {
						return err
					}
				}
				// The same key in another program is another refund.
				return tx.SavePendingRefund("other", key, 1)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []struct {
				total int64
				ok    bool
			}{{tc.want, tc.wantOK}, {0, false}} {
				var got int64
				var ok bool
				if err := s.Write(ctx, func(tx *Tx) (err error) {
					got, ok, err = tx.TakePendingRefund("prog", key)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if got != want.total || ok != want.ok {
					t.Fatalf("take = %d, %v; want %d, %v", got, ok, want.total, want.ok)
				}
			}
			if n, _ := s.CountForTest(ctx, `SELECT count(*) FROM pending_refunds WHERE program_id = 'other' AND key = ?`, key); n != 1 {
				t.Fatalf("the other program's pending refund: %d rows, want 1", n)
			}
		})
	}
}

// TestPendingSalesExpire: a kept sale is given back once, oldest first, and
// not after PendingSaleTTL.
func TestPendingSalesExpire(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	usd := func(n int64) rules.Money { return rules.Money{Minor: n, Currency: "USD"} }
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	err := s.Write(ctx, func(tx *Tx) error {
		for i, k := range []string{"late", "early", "old"} {
			if err := tx.SavePendingSale("prog", PendingSale{Key: k, CustomerKey: "cus", Amount: usd(100), Action: "sale",
				Source: SourceGateway, At: t0.Add(time.Duration(2-i) * time.Hour)}); err != nil {
				return err
			}
		}
		return tx.SavePendingSale("prog", PendingSale{Key: "late", CustomerKey: "cus", Amount: usd(999), At: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.Exec(`UPDATE pending_sales SET created_at = ? WHERE key = 'old'`, time.Now().Add(-PendingSaleTTL-time.Hour).Unix()); err != nil {
		t.Fatal(err)
	}
	var got []PendingSale
	err = s.Write(ctx, func(tx *Tx) (err error) { got, err = tx.TakePendingSales("prog", "cus"); return err })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "early" || got[1].Key != "late" || got[1].Amount.Minor != 100 {
		t.Fatalf("kept sales %+v, want early then late (the first save of late), without the expired one", got)
	}
	err = s.Write(ctx, func(tx *Tx) (err error) { got, err = tx.TakePendingSales("prog", "cus"); return err })
	if err != nil || len(got) != 0 {
		t.Fatalf("second take: %+v, %v", got, err)
	}
}
