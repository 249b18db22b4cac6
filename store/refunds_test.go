package store

import (
	"context"
	"testing"
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
