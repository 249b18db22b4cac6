package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/potrack/potrack/rules"
)

var (
	day1 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	day2 = time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC)
	day5 = time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC) // outside reportRange
	// reportRange is 2026-03-01 to 2026-03-03, three days.
	reportRange = Range{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)}
)

// fillReports stores a small program to count: partners alice, bob, a
// partner whose key and name hold LIKE's wildcards, one idle, and another
// program whose rows must never be counted.
func fillReports(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	insertProgram(t, s, "prog")
	insertProgram(t, s, "other")
	partners := map[string]*Partner{}
	err := s.Write(ctx, func(tx *Tx) error {
		for _, p := range []*Partner{
			{ProgramID: "prog", Key: "alice", Name: "Alice Smith", Email: "alice@example.com"},
			{ProgramID: "prog", Key: "bob", Name: "Bob"},
			{ProgramID: "prog", Key: "a_b%", Name: "100% Deals"},
			{ProgramID: "prog", Key: "idle", Name: "Idle"},
			{ProgramID: "other", Key: "alice", Name: "Other Alice"},
		} {
			if err := tx.InsertPartner(p); err != nil {
				return err
			}
			partners[p.ProgramID+"/"+p.Key] = p
		}
		customer := func(program, key, email string, p *Partner) *Customer {
			c := &Customer{ProgramID: program, Key: key, Email: email, Partner: p}
			if err := tx.InsertCustomer(c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		alice, bob, wild := partners["prog/alice"], partners["prog/bob"], partners["prog/a_b%"]
		c1 := customer("prog", "c1", "Ann@Example.com", alice)
		c2 := customer("prog", "c2", "bo_b@shop.test", alice)
		c3 := customer("prog", "c3", "carl@shop.test", bob)
		c4 := customer("prog", "c4", "dora@shop.test", nil)
		c5 := customer("prog", "c5", "eve@shop.test", wild)
		o1 := customer("other", "c1", "", partners["other/alice"])
		sale := func(key string, c *Customer, at time.Time, amount, reward int64, currency, source string) *Transaction {
			tr := &Transaction{ProgramID: c.ProgramID, Key: key, Customer: c, CreatedAt: at, Action: "sale",
				Amount: rules.Money{Minor: amount, Currency: currency}, Source: source, Verified: source != SourceJS, Rewardable: true}
			if reward > 0 {
				tr.Rewards = []*Reward{{Partner: c.Partner, Amount: rules.Money{Minor: reward, Currency: currency}}}
			}
			if err := tx.InsertTransaction(tr); err != nil {
				t.Fatal(err)
			}
			return tr
		}
		sale("t1", c1, day1, 10000, 2000, "USD", SourceAPI)
		refunded := sale("t2", c1, day2, 5000, 1000, "USD", SourceAPI)
		sale("t3", c2, day2, 3000, 300, "EUR", SourceGateway)
		sale("t4", c3, day2, 1000, 200, "USD", SourceJS)
		sale("t5", c4, day1, 700, 0, "USD", SourceAPI)
		sale("t6", c5, day5, 900, 90, "USD", SourceAPI)
		sale("o1", o1, day1, 99900, 9990, "USD", SourceAPI)
		refunded.Status, refunded.RefundedMinor = StatusRefunded, 5000
		refunded.Rewards[0].ReversedMinor, refunded.Rewards[0].Status = 1000, RewardReversed
		return tx.SaveRefund(refunded)
	})
	if err != nil {
		t.Fatal(err)
	}
	click := func(p *Partner, at time.Time, n int) {
		for i := range n {
			if err := s.RecordClick(ctx, Click{ProgramID: p.ProgramID, PartnerID: p.ID, URL: fmt.Sprintf("https://shop.example/?aff=%s&n=%d", p.Key, i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ExecForTest(ctx, `UPDATE clicks SET created_at = ? WHERE partner_id = ? AND created_at > ?`, unix(at), p.ID, unix(day5)); err != nil {
			t.Fatal(err)
		}
	}
	click(partners["prog/alice"], day1, 3)
	click(partners["prog/alice"], day2, 1)
	click(partners["prog/bob"], day2, 2)
	click(partners["other/alice"], day1, 5)
	for key, at := range map[string]time.Time{"c1": day1, "c2": day2, "c3": day2, "c4": day1, "c5": day5} {
		if err := s.ExecForTest(ctx, `UPDATE customers SET created_at = ? WHERE key = ?`, unix(at), key); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ExecForTest(ctx, `UPDATE customers SET created_at = ? WHERE program_id = 'other'`, unix(day1)); err != nil {
		t.Fatal(err)
	}
}

func money(ms []rules.Money) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.String()+" "+m.Currency)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// TestProgramNumbers: a program's clicks, sign-ups, sales, revenue net of
// refunds and rewards owed over a range, and every day of it; on both
// engines.
func TestProgramNumbers(t *testing.T) {
	for name, db := range engineDBs() {
		t.Run(name, func(t *testing.T) {
			s := openDB(t, db(t))
			fillReports(t, s)
			n, err := s.ProgramNumbers(context.Background(), "prog", reportRange)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("clicks %d signups %d sales %d revenue %s rewards %s", n.Clicks, n.Signups, n.Sales, money(n.Revenue), money(n.Rewards))
			if want := "clicks 6 signups 4 sales 5 revenue [30.00 EUR, 117.00 USD] rewards [3.00 EUR, 22.00 USD]"; got != want {
				t.Errorf("totals:\n got %s\nwant %s", got, want)
			}
			var days []string
			for _, d := range n.Days {
				days = append(days, fmt.Sprintf("%s %d %d %d %s %s", d.Day, d.Clicks, d.Signups, d.Sales, money(d.Revenue), money(d.Rewards)))
			}
			want := []string{
				"2026-03-01 3 2 2 [107.00 USD] [20.00 USD]",
				"2026-03-02 3 2 3 [30.00 EUR, 10.00 USD] [3.00 EUR, 2.00 USD]",
				"2026-03-03 0 0 0 [] []",
			}
			if !slices.Equal(days, want) {
				t.Errorf("days:\n got %q\nwant %q", days, want)
			}
		})
	}
}

func partnerLine(n *PartnerNumbers) string {
	conv := "-"
	if n.Conversion != nil {
		conv = fmt.Sprintf("%.2f", *n.Conversion)
	}
	return fmt.Sprintf("%s %d/%d/%d %s %s %s", n.Partner.Key, n.Clicks, n.Customers, n.Sales, money(n.Revenue), money(n.Rewards), conv)
}

// TestPartnerNumbers: each partner's numbers, every sort key both ways
// (ties by id, partners without clicks last by conversion), search by key
// prefix or name with wildcards taken literally, pages; on both engines.
func TestPartnerNumbers(t *testing.T) {
	for name, db := range engineDBs() {
		t.Run(name, func(t *testing.T) {
			s := openDB(t, db(t))
			fillReports(t, s)
			ctx := context.Background()
			list := func(q PartnerQuery) ([]string, int) {
				t.Helper()
				q.ProgramID, q.Range = "prog", reportRange
				ns, total, err := s.PartnerNumbers(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, n := range ns {
					out = append(out, partnerLine(n))
				}
				return out, total
			}
			all, total := list(PartnerQuery{Sort: SortKey})
			want := []string{
				"a_b% 0/0/0 [] [] -",
				"alice 4/2/3 [30.00 EUR, 100.00 USD] [3.00 EUR, 20.00 USD] 0.50",
				"bob 2/1/1 [10.00 USD] [2.00 USD] 0.50",
				"idle 0/0/0 [] [] -",
			}
			if !slices.Equal(all, want) || total != 4 {
				t.Fatalf("by key (%d):\n got %q\nwant %q", total, all, want)
			}
			keys := func(q PartnerQuery) string {
				lines, _ := list(q)
				var ks []string
				for _, l := range lines {
					ks = append(ks, strings.Fields(l)[0])
				}
				return strings.Join(ks, " ")
			}
			for _, c := range []struct {
				q    PartnerQuery
				want string
			}{
				{PartnerQuery{Sort: SortClicks, Desc: true}, "alice bob idle a_b%"},
				{PartnerQuery{Sort: SortClicks}, "a_b% idle bob alice"},
				{PartnerQuery{Sort: SortCustomers, Desc: true}, "alice bob idle a_b%"},
				{PartnerQuery{Sort: SortSales, Desc: true}, "alice bob idle a_b%"},
				{PartnerQuery{Sort: SortRevenue, Desc: true}, "alice bob idle a_b%"}, // in USD, the program's
				{PartnerQuery{Sort: SortRewards}, "a_b% idle bob alice"},
				{PartnerQuery{Sort: SortConversion, Desc: true}, "bob alice idle a_b%"},
				{PartnerQuery{Sort: SortConversion}, "alice bob a_b% idle"},
				{PartnerQuery{Sort: SortName}, "a_b% alice bob idle"}, // "100% Deals" first
				{PartnerQuery{Sort: SortCreated, Desc: true}, "idle a_b% bob alice"},
				{PartnerQuery{}, "a_b% idle bob alice"}, // revenue, ascending
				{PartnerQuery{Sort: SortKey, Search: "ALI"}, "alice"},
				{PartnerQuery{Sort: SortKey, Search: "smith"}, "alice"},
				{PartnerQuery{Sort: SortKey, Search: "a_"}, "a_b%"},
				{PartnerQuery{Sort: SortKey, Search: "_"}, ""},
				{PartnerQuery{Sort: SortKey, Search: "%"}, "a_b%"}, // the name holds a %
				{PartnerQuery{Sort: SortKey, Search: `\`}, ""},
				{PartnerQuery{Sort: SortKey, Limit: 2, Offset: 2}, "bob idle"},
				{PartnerQuery{Sort: SortKey, Limit: 2, Offset: 8}, ""},
			} {
				if got := keys(c.q); got != c.want {
					t.Errorf("%+v: %q, want %q", c.q, got, c.want)
				}
			}
			if _, total := list(PartnerQuery{Search: "a", Limit: 1}); total != 2 {
				t.Errorf("search 'a': total %d, want 2", total)
			}
			if _, _, err := s.PartnerNumbers(ctx, PartnerQuery{ProgramID: "prog", Range: reportRange, Sort: "clicks; DROP TABLE partners"}); err == nil {
				t.Error("an unknown sort key was taken")
			}
			if _, _, err := s.PartnerNumbers(ctx, PartnerQuery{ProgramID: "nope", Range: reportRange}); err != ErrNotFound {
				t.Errorf("unknown program: %v", err)
			}
		})
	}
}

// TestPartnerFunnel: a partner's clicks, new customers and their sales per
// day, every day of the range.
func TestPartnerFunnel(t *testing.T) {
	for name, db := range engineDBs() {
		t.Run(name, func(t *testing.T) {
			s := openDB(t, db(t))
			fillReports(t, s)
			ctx := context.Background()
			p, err := s.Partner(ctx, "prog", PartnerRef{Key: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			days, err := s.PartnerFunnel(ctx, p.ID, reportRange)
			if err != nil {
				t.Fatal(err)
			}
			want := []FunnelDay{{"2026-03-01", 3, 1, 1}, {"2026-03-02", 1, 1, 2}, {"2026-03-03", 0, 0, 0}}
			if !slices.Equal(days, want) {
				t.Errorf("funnel %v, want %v", days, want)
			}
		})
	}
}

// TestCustomerAndTransactionFilters: customers by key prefix or email,
// partner and date; transactions by date range, source, status and
// verified; on both engines.
func TestCustomerAndTransactionFilters(t *testing.T) {
	for name, db := range engineDBs() {
		t.Run(name, func(t *testing.T) {
			s := openDB(t, db(t))
			fillReports(t, s)
			ctx := context.Background()
			for _, c := range []struct {
				f    CustomerFilter
				want string
			}{
				{CustomerFilter{}, "c5 c3 c2 c4 c1"}, // newest first (ties: newest id)
				{CustomerFilter{Search: "C"}, "c5 c3 c2 c4 c1"},
				{CustomerFilter{Search: "ann@EXAMPLE"}, "c1"},
				{CustomerFilter{Search: "shop.test"}, "c5 c3 c2 c4"},
				{CustomerFilter{Search: "_b@"}, "c2"},
				{CustomerFilter{Search: "%"}, ""},
				{CustomerFilter{PartnerKey: "alice"}, "c2 c1"},
				{CustomerFilter{PartnerKey: "nobody"}, ""},
				{CustomerFilter{From: reportRange.From, To: reportRange.To}, "c3 c2 c4 c1"},
				{CustomerFilter{Limit: 2, Offset: 1}, "c3 c2"},
			} {
				c.f.ProgramID = "prog"
				list, total, err := s.SearchCustomers(ctx, c.f)
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, cu := range list {
					keys = append(keys, cu.Key)
				}
				if got := strings.Join(keys, " "); got != c.want {
					t.Errorf("%+v: %q, want %q", c.f, got, c.want)
				}
				if c.f.Limit == 0 && total != len(keys) {
					t.Errorf("%+v: total %d, listed %d", c.f, total, len(keys))
				}
			}
			no, yes := false, true
			for _, c := range []struct {
				f    TransactionFilter
				want string
			}{
				{TransactionFilter{From: reportRange.From, To: reportRange.To}, "t4 t3 t2 t5 t1"},
				{TransactionFilter{From: day2}, "t6 t4 t3 t2"},
				{TransactionFilter{To: day2}, "t5 t1"},
				{TransactionFilter{Source: SourceJS}, "t4"},
				{TransactionFilter{Status: StatusRefunded}, "t2"},
				{TransactionFilter{Verified: &no}, "t4"},
				{TransactionFilter{Verified: &yes, Source: SourceGateway}, "t3"},
				{TransactionFilter{PartnerKey: "alice", To: day2}, "t1"},
			} {
				c.f.ProgramID, c.f.Limit = "prog", 100
				list, total, err := s.Transactions(ctx, c.f)
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, tr := range list {
					keys = append(keys, tr.Key)
				}
				if got := strings.Join(keys, " "); got != c.want || total != len(keys) {
					t.Errorf("%+v: %q (total %d), want %q", c.f, got, total, c.want)
				}
			}
		})
	}
}

// TestExports: every export streams what its filter matches, in its
// order, with what a list shows; on both engines.
func TestExports(t *testing.T) {
	for name, db := range engineDBs() {
		t.Run(name, func(t *testing.T) {
			s := openDB(t, db(t))
			fillReports(t, s)
			ctx := context.Background()
			var lines []string
			err := s.EachTransaction(ctx, TransactionFilter{ProgramID: "prog", From: reportRange.From, To: reportRange.To}, func(tr *TransactionExport) error {
				lines = append(lines, fmt.Sprintf("%s %s %s/%s/%s %s-%d %s %v %s %s-%d %s %s", tr.Key, tr.CreatedAt.Format(time.DateOnly), tr.CustomerKey, tr.CustomerEmail, tr.PartnerKey,
					tr.Amount.String(), tr.RefundedMinor, tr.Source, tr.Verified, tr.Status, tr.Reward.String(), tr.RewardReversedMinor, tr.RewardStatus, tr.RewardPartnerKey))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				"t1 2026-03-01 c1/Ann@Example.com/alice 100.00-0 api true ok 20.00-0 ok alice",
				"t5 2026-03-01 c4/dora@shop.test/ 7.00-0 api true ok 0.00-0  ",
				"t2 2026-03-02 c1/Ann@Example.com/alice 50.00-5000 api true refunded 10.00-1000 reversed alice",
				"t3 2026-03-02 c2/bo_b@shop.test/alice 30.00-0 gateway true ok 3.00-0 ok alice",
				"t4 2026-03-02 c3/carl@shop.test/bob 10.00-0 js false ok 2.00-0 ok bob",
			}
			if !slices.Equal(lines, want) {
				t.Errorf("transactions:\n got %q\nwant %q", lines, want)
			}

			var customers []string
			if err := s.EachCustomer(ctx, CustomerFilter{ProgramID: "prog", PartnerKey: "alice"}, func(c *Customer) error {
				customers = append(customers, c.Key+"/"+c.Partner.Key)
				return nil
			}); err != nil || strings.Join(customers, " ") != "c1/alice c2/alice" {
				t.Errorf("customers %q (%v)", customers, err)
			}

			var clicks []string
			if err := s.EachClick(ctx, ClickFilter{ProgramID: "prog", From: reportRange.From, To: reportRange.To}, func(c *ClickExport) error {
				clicks = append(clicks, c.PartnerKey+"@"+c.CreatedAt.Format(time.DateOnly))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if want := "alice@2026-03-01 alice@2026-03-01 alice@2026-03-01 alice@2026-03-02 bob@2026-03-02 bob@2026-03-02"; strings.Join(clicks, " ") != want {
				t.Errorf("clicks %q, want %q", clicks, want)
			}

			q := PartnerQuery{ProgramID: "prog", Range: reportRange, Sort: SortClicks, Desc: true}
			var partners []string
			if err := s.EachPartnerNumbers(ctx, q, func(n *PartnerNumbers) error {
				partners = append(partners, partnerLine(n))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			page, _, err := s.PartnerNumbers(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var listed []string
			for _, n := range page {
				listed = append(listed, partnerLine(n))
			}
			if !slices.Equal(partners, listed) {
				t.Errorf("partners exported %q, listed %q", partners, listed)
			}
			currencies, err := s.PartnerCurrencies(ctx, "prog", reportRange)
			if err != nil || strings.Join(currencies, " ") != "USD EUR" {
				t.Errorf("currencies %v (%v), want USD EUR", currencies, err)
			}
		})
	}
}

// TestExportChunks: a partner export longer than a chunk keeps its order
// and every partner's money.
func TestExportChunks(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	const n = exportChunk + 20
	err := s.Write(ctx, func(tx *Tx) error {
		for i := range n {
			p := &Partner{ProgramID: "prog", Key: fmt.Sprintf("p%04d", i)}
			if err := tx.InsertPartner(p); err != nil {
				return err
			}
			c := &Customer{ProgramID: "prog", Key: p.Key, Partner: p}
			if err := tx.InsertCustomer(c); err != nil {
				return err
			}
			if err := tx.InsertTransaction(&Transaction{ProgramID: "prog", Key: p.Key, Customer: c, CreatedAt: day1, Action: "sale",
				Amount: rules.Money{Minor: int64(100 + i), Currency: "USD"}, Source: SourceAPI}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	err = s.EachPartnerNumbers(ctx, PartnerQuery{ProgramID: "prog", Range: reportRange, Sort: SortRevenue, Desc: true}, func(p *PartnerNumbers) error {
		want := fmt.Sprintf("p%04d [%s USD]", n-1-i, rules.Money{Minor: int64(100 + n - 1 - i), Currency: "USD"})
		if got := p.Partner.Key + " " + money(p.Revenue); got != want {
			t.Fatalf("partner %d: %s, want %s", i, got, want)
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("%d partners (%v), want %d", i, err, n)
	}
}
