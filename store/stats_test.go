package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/potrack/potrack/rules"
)

func TestSalesStats(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	insertProgram(t, s, "prog")
	insertProgram(t, s, "other")
	day1 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	day2 := time.Date(2026, 3, 2, 23, 59, 0, 0, time.UTC)
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	since := time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)

	err := s.Write(ctx, func(tx *Tx) error {
		partners := map[string]*Partner{}
		for _, key := range []string{"alice", "bob", "idle"} {
			p := &Partner{ProgramID: "prog", Key: key, Name: key + " name"}
			if err := tx.InsertPartner(p); err != nil {
				return err
			}
			partners[key] = p
		}
		otherPartner := &Partner{ProgramID: "other", Key: "alice"}
		if err := tx.InsertPartner(otherPartner); err != nil {
			return err
		}
		n := 0
		sale := func(program string, p *Partner, at time.Time, amount, reward int64, currency string) *Transaction {
			n++
			c := &Customer{ProgramID: program, Key: fmt.Sprintf("c%d", n), Partner: p}
			if err := tx.InsertCustomer(c); err != nil {
				t.Fatal(err)
			}
			tr := &Transaction{ProgramID: program, Key: fmt.Sprintf("t%d", n), Customer: c, CreatedAt: at,
				Amount: rules.Money{Minor: amount, Currency: currency}, Action: "sale", Source: SourceAPI, Rewardable: true}
			if p != nil && reward > 0 {
				tr.Rewards = []*Reward{{Partner: p, Amount: rules.Money{Minor: reward, Currency: currency}}}
			}
			if err := tx.InsertTransaction(tr); err != nil {
				t.Fatal(err)
			}
			return tr
		}
		sale("prog", partners["alice"], day1, 10000, 2000, "USD")
		sale("prog", partners["alice"], day2, 5000, 1000, "USD")
		sale("prog", partners["bob"], day2, 3000, 600, "USD")
		sale("prog", nil, day2, 700, 0, "USD") // not referred
		sale("prog", partners["bob"], day2, 900, 90, "EUR")
		sale("prog", partners["alice"], old, 99999, 9999, "USD") // before since
		sale("other", otherPartner, day1, 77777, 7777, "USD")    // another program
		// Bob's first USD sale is refunded in full.
		refunded := sale("prog", partners["bob"], day1, 4000, 800, "USD")
		refunded.Status, refunded.RefundedMinor = StatusRefunded, 4000
		refunded.Rewards[0].ReversedMinor, refunded.Rewards[0].Status = 800, RewardReversed
		return tx.SaveRefund(refunded)
	})
	if err != nil {
		t.Fatal(err)
	}

	daily, err := s.DailyTotals(ctx, "prog", since)
	if err != nil {
		t.Fatal(err)
	}
	wantDaily := []DailyTotal{
		{Day: "2026-03-01", Currency: "USD", Transactions: 2, SalesMinor: 10000, RewardsMinor: 2000},
		{Day: "2026-03-02", Currency: "EUR", Transactions: 1, SalesMinor: 900, RewardsMinor: 90},
		{Day: "2026-03-02", Currency: "USD", Transactions: 3, SalesMinor: 8700, RewardsMinor: 1600},
	}
	if fmt.Sprint(daily) != fmt.Sprint(wantDaily) {
		t.Errorf("DailyTotals:\n got %v\nwant %v", daily, wantDaily)
	}

	totals, err := s.PartnerSalesSince(ctx, "prog", since, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range totals {
		got = append(got, fmt.Sprintf("%s %s n=%d sales=%d rewards=%d", p.Key, p.Currency, p.Transactions, p.Sales.Minor, p.Rewards.Minor))
	}
	want := []string{
		"alice USD n=2 sales=15000 rewards=3000",
		"bob USD n=2 sales=3000 rewards=600",
		"bob EUR n=1 sales=900 rewards=90",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("PartnerSalesSince:\n got %v\nwant %v", got, want)
	}
	if limited, _ := s.PartnerSalesSince(ctx, "prog", since, 1); len(limited) != 1 || limited[0].Key != "alice" {
		t.Errorf("limit 1: %+v", limited)
	}
}
