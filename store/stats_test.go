package store

import (
	"context"
	"fmt"
	"math"
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

// TestSumsDoNotOverflow: thousands of maximum sales in one day add up past
// int64, where SQLite's sum() fails; the totals saturate instead of failing
// the admin page and the partner's totals.
func TestSumsDoNotOverflow(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	insertProgram(t, s, "prog")
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var partner *Partner
	err := s.Write(ctx, func(tx *Tx) error {
		partner = &Partner{ProgramID: "prog", Key: "p"}
		if err := tx.InsertPartner(partner); err != nil {
			return err
		}
		c := &Customer{ProgramID: "prog", Key: "c", Partner: partner}
		if err := tx.InsertCustomer(c); err != nil {
			return err
		}
		max := rules.Money{Minor: rules.MaxMinor, Currency: "USD"}
		for i := 0; i < 9300; i++ {
			tr := &Transaction{ProgramID: "prog", Key: fmt.Sprint("t", i), Customer: c, Amount: max,
				Action: "sale", Source: SourceAPI, Rewardable: true, CreatedAt: at,
				Rewards: []*Reward{{Partner: partner, Amount: max}}}
			if err := tx.InsertTransaction(tr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	days, err := s.DailyTotals(ctx, "prog", at.Add(-time.Hour))
	if err != nil || len(days) != 1 || days[0].SalesMinor != math.MaxInt64 || days[0].RewardsMinor != math.MaxInt64 {
		t.Fatalf("DailyTotals = %+v, %v; want saturated sums", days, err)
	}
	ps, err := s.PartnerSalesSince(ctx, "prog", at.Add(-time.Hour), 10)
	if err != nil || len(ps) != 1 || ps[0].Sales.Minor != math.MaxInt64 || ps[0].Transactions != 9300 {
		t.Fatalf("PartnerSalesSince = %+v, %v", ps, err)
	}
	totals, err := s.PartnerTotals(ctx, partner.ID)
	if err != nil || len(totals.Rewards) != 1 || totals.Rewards[0].Minor != math.MaxInt64 {
		t.Fatalf("PartnerTotals = %+v, %v", totals, err)
	}
	if got := joinSum(12, 345); got != 12_000_000_345 {
		t.Fatalf("joinSum(12, 345) = %d", got)
	}
}
