package tracking

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The ledger's tests run on both engines: SQLite (one writer) and
// PostgreSQL (many writers, serializable).

const day = 24 * time.Hour

// ledgerEnv is a store with one program (20 % of each sale) and helpers.
type ledgerEnv struct {
	t *testing.T
	s *store.Store
	p *store.Program
}

func forEngines(t *testing.T, test func(t *testing.T, e *ledgerEnv)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "l.db")
			if engine == "postgres" {
				path = testenv.Postgres(t)
			}
			s, err := store.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			e := &ledgerEnv{t: t, s: s}
			e.p = &store.Program{ID: "prog", Name: "Shop", Currency: "USD", CookieDays: 30, ReferralParams: []string{"aff"},
				Attribution: "last", Commission: rules.DefaultCommission(), HoldDays: 30, MinPayout: map[string]int64{}}
			e.write(func(tx *store.Tx) error { return tx.InsertProgram(e.p, "hash-prog") })
			test(t, e)
		})
	}
}

func (e *ledgerEnv) write(fn func(tx *store.Tx) error) {
	e.t.Helper()
	if err := e.s.Write(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

func (e *ledgerEnv) setProgram(change func(p *store.Program)) {
	e.t.Helper()
	e.write(func(tx *store.Tx) error {
		p, err := tx.Program(e.p.ID)
		if err != nil {
			return err
		}
		change(p)
		e.p = p
		return tx.UpdateProgram(p)
	})
}

func (e *ledgerEnv) partner(key, email string) *store.Partner {
	e.t.Helper()
	var p *store.Partner
	e.write(func(tx *store.Tx) (err error) {
		p, _, err = CreatePartner(tx, e.p, PartnerInput{Key: key, Email: email})
		return err
	})
	return p
}

// sale records a REST sale of amount cents by a new customer of partner
// (the reward is a fifth of it).
func (e *ledgerEnv) sale(partner, key string, cents int64, customerEmail string) *store.Transaction {
	e.t.Helper()
	var tr *store.Transaction
	e.write(func(tx *store.Tx) (err error) {
		tr, _, err = RecordTransaction(tx, e.p, TransactionInput{Key: key, Amount: rules.Money{Minor: cents, Currency: "USD"},
			Action: "sale", Rewardable: true, CreateCustomer: true, Source: store.SourceAPI, Verified: true,
			Customer: CustomerInput{Key: "cust-" + key, Email: customerEmail}, Partner: store.PartnerRef{Key: partner}}, REST)
		return err
	})
	return tr
}

func (e *ledgerEnv) refund(key string, cents int64) {
	e.t.Helper()
	e.write(func(tx *store.Tx) error { _, err := Refund(tx, e.p, key, cents); return err })
}

// job runs the approval job once, as the server does.
func (e *ledgerEnv) job() []*store.ApprovedReward {
	e.t.Helper()
	due, err := e.s.DueRewards(context.Background(), 500)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*store.ApprovedReward
	e.write(func(tx *store.Tx) (err error) { out, err = ApproveDue(tx, due); return err })
	return out
}

func (e *ledgerEnv) createPayout(partnerID int64) (*store.Payout, error) {
	var po *store.Payout
	err := e.s.Write(context.Background(), func(tx *store.Tx) (err error) {
		po, err = CreatePayout(tx, e.p, partnerID)
		return err
	})
	return po, err
}

func (e *ledgerEnv) markPaid(id int64, ref string) (bool, error) {
	var changed bool
	err := e.s.Write(context.Background(), func(tx *store.Tx) (err error) {
		_, changed, err = MarkPayoutPaid(tx, e.p, id, ref)
		return err
	})
	return changed, err
}

// balance is the partner's USD balance as "pending/held/approved/in_payout/paid/clawback".
func (e *ledgerEnv) balance(p *store.Partner) string {
	e.t.Helper()
	bs, err := e.s.Balances(context.Background(), e.p.ID, p.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, b := range bs {
		if b.Currency == "USD" {
			return fmt.Sprintf("%d/%d/%d/%d/%d/%d", b.Pending, b.Held, b.Approved, b.InPayout, b.Paid, b.Clawback)
		}
	}
	return "none"
}

func (e *ledgerEnv) wantBalance(p *store.Partner, want, when string) {
	e.t.Helper()
	if got := e.balance(p); got != want {
		e.t.Errorf("%s: balance (pending/held/approved/in_payout/paid/clawback) %s, want %s", when, got, want)
	}
}

func (e *ledgerEnv) rewardState(key string) (shown, stored string) {
	e.t.Helper()
	tr, err := e.s.Transaction(context.Background(), e.p.ID, key)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(tr.Rewards) != 1 {
		e.t.Fatalf("%s has %d rewards", key, len(tr.Rewards))
	}
	return tr.Rewards[0].State, tr.Rewards[0].Stored
}

func (e *ledgerEnv) count(q string, args ...any) int {
	e.t.Helper()
	n, err := e.s.CountForTest(context.Background(), q, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestLedgerHold: a reward is pending through its hold, shown approved
// as soon as the hold has passed (before the job moves it), moved once by
// the job however often it runs, and a hold of 0 days approves at once.
func TestLedgerHold(t *testing.T) {
	forEngines(t, func(t *testing.T, e *ledgerEnv) {
		alice := e.partner("alice", "alice@example.com")
		e.sale("alice", "o1", 10000, "buyer@example.com")
		e.wantBalance(alice, "2000/0/0/0/0/0", "a new sale")
		if shown, stored := e.rewardState("o1"); shown != "pending" || stored != "pending" {
			t.Errorf("new reward %s (stored %s), want pending", shown, stored)
		}
		e.s.AdvanceClockForTest(29 * day)
		if got := e.job(); len(got) != 0 {
			t.Errorf("the job approved %d rewards a day before the hold ends", len(got))
		}
		e.wantBalance(alice, "2000/0/0/0/0/0", "29 days on")

		e.s.AdvanceClockForTest(day + time.Second)
		e.wantBalance(alice, "0/0/2000/0/0/0", "30 days on, before the job")
		if shown, stored := e.rewardState("o1"); shown != "approved" || stored != "pending" {
			t.Errorf("due reward shown %s (stored %s), want approved (stored pending)", shown, stored)
		}
		got := e.job()
		if len(got) != 1 || got[0].Amount.Minor != 2000 || got[0].TransactionKey != "o1" || got[0].PartnerID != alice.ID {
			t.Fatalf("the job approved %+v, want o1's 2000", got)
		}
		if again := e.job(); len(again) != 0 {
			t.Errorf("a second run approved %d more", len(again))
		}
		e.wantBalance(alice, "0/0/2000/0/0/0", "after the job")
		if shown, stored := e.rewardState("o1"); shown != "approved" || stored != "approved" {
			t.Errorf("after the job %s (stored %s)", shown, stored)
		}
		if n := e.count(`SELECT count(*) FROM ledger_entries WHERE kind = 'approved'`); n != 2 {
			t.Errorf("%d approval entries, want the pair", n)
		}

		// Hold 0: due at once; a longer hold later puts a pending reward back.
		e.setProgram(func(p *store.Program) { p.HoldDays = 0 })
		e.sale("alice", "o2", 500, "")
		e.wantBalance(alice, "0/0/2100/0/0/0", "hold 0")
		e.setProgram(func(p *store.Program) { p.HoldDays = 60 })
		e.wantBalance(alice, "100/0/2000/0/0/0", "hold raised to 60 before the job")
	})
}

// TestLedgerRefunds: a refund while pending or approved reverses the
// reward where it is (reversed when nothing is left); after the reward
// was paid it is a clawback, which the partner's next payout nets.
func TestLedgerRefunds(t *testing.T) {
	forEngines(t, func(t *testing.T, e *ledgerEnv) {
		alice := e.partner("alice", "alice@example.com")
		e.sale("alice", "pend", 10000, "") // reward 2000
		e.sale("alice", "appr", 5000, "")  // reward 1000
		e.sale("alice", "paid", 20000, "") // reward 4000
		e.sale("alice", "whole", 1000, "") // reward 200
		e.refund("pend", 5000)             // half while pending
		e.wantBalance(alice, "6200/0/0/0/0/0", "half of a pending reward reversed")
		e.refund("whole", -1)
		if shown, stored := e.rewardState("whole"); shown != "reversed" || stored != "reversed" {
			t.Errorf("a pending reward refunded in full is %s (%s), want reversed", shown, stored)
		}
		e.s.AdvanceClockForTest(31 * day)
		e.job()
		e.wantBalance(alice, "0/0/6000/0/0/0", "all approved")
		e.refund("appr", -1) // in full while approved
		if shown, _ := e.rewardState("appr"); shown != "reversed" {
			t.Errorf("an approved reward refunded in full is %s", shown)
		}
		e.wantBalance(alice, "0/0/5000/0/0/0", "an approved reward reversed")

		po, err := e.createPayout(0)
		if err != nil {
			t.Fatal(err)
		}
		if len(po.Items) != 1 || po.Items[0].AmountMinor != 5000 || po.Items[0].RewardCount != 2 {
			t.Fatalf("batch items %+v, want alice's 5000 for 2 rewards", po.Items[0])
		}
		e.wantBalance(alice, "0/0/0/5000/0/0", "batched")
		if changed, err := e.markPaid(po.ID, "PP-1"); err != nil || !changed {
			t.Fatalf("mark paid: %v %v", changed, err)
		}
		e.wantBalance(alice, "0/0/0/0/5000/0", "paid")
		if shown, stored := e.rewardState("paid"); shown != "paid" || stored != "paid" {
			t.Errorf("a paid reward is %s (%s)", shown, stored)
		}

		// After payout: a quarter refunded, a clawback of 1000.
		e.refund("paid", 5000)
		if shown, _ := e.rewardState("paid"); shown != "paid" {
			t.Errorf("a paid reward refunded in part is %s, want still paid", shown)
		}
		e.wantBalance(alice, "0/0/0/0/5000/1000", "a paid reward refunded in part")
		// Nothing else to pay: the clawback waits.
		if _, err := e.createPayout(0); !errors.Is(err, ErrNothingToPay) {
			t.Fatalf("a batch with only a clawback: %v, want ErrNothingToPay", err)
		}
		// The next reward, 3000, nets it: the item pays 2000.
		e.sale("alice", "next", 15000, "")
		e.s.AdvanceClockForTest(31 * day)
		po2, err := e.createPayout(alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		it := po2.Items[0]
		if it.RewardsMinor != 3000 || it.ClawbackMinor != 1000 || it.AmountMinor != 2000 || it.RewardCount != 1 {
			t.Fatalf("next item %+v, want 3000 less 1000", it)
		}
		e.wantBalance(alice, "0/0/0/2000/5000/0", "the clawback netted")
		if _, err := e.markPaid(po2.ID, "PP-2"); err != nil {
			t.Fatal(err)
		}
		e.wantBalance(alice, "0/0/0/0/7000/0", "second batch paid")
		// Every entry sums to what alice earned net: 2000/2 + 0 + 4000*3/4 + 0 + 3000.
		if n := e.count(`SELECT sum(amount_minor) FROM ledger_entries WHERE partner_id = ?`, alice.ID); n != 7000 {
			t.Errorf("the ledger sums to %d, want 7000", n)
		}
		// A refund repeated changes nothing.
		e.refund("paid", 5000)
		e.wantBalance(alice, "0/0/0/0/7000/0", "the same refund again")
	})
}

// TestPayoutMarking: marking paid is idempotent with the same reference,
// refused with another, and a reward is never in two batches (the second
// batch finds nothing, and the table's key refuses a second row).
func TestPayoutMarking(t *testing.T) {
	forEngines(t, func(t *testing.T, e *ledgerEnv) {
		alice, bob := e.partner("alice", ""), e.partner("bob", "")
		e.sale("alice", "a1", 10000, "")
		e.sale("bob", "b1", 1000, "")
		e.s.AdvanceClockForTest(31 * day)
		e.setProgram(func(p *store.Program) { p.MinPayout = map[string]int64{"USD": 500} })
		po, err := e.createPayout(0)
		if err != nil {
			t.Fatal(err)
		}
		if len(po.Items) != 1 || po.Items[0].Partner.ID != alice.ID {
			t.Fatalf("items %+v: want alice's alone (bob's 200 is under the 500 minimum)", po.Items)
		}
		e.wantBalance(bob, "0/0/200/0/0/0", "bob under the minimum")
		if _, err := e.createPayout(alice.ID); !errors.Is(err, ErrNothingToPay) {
			t.Fatalf("a second batch for alice: %v, want ErrNothingToPay", err)
		}
		tr, _ := e.s.Transaction(context.Background(), e.p.ID, "a1")
		rewardID := tr.Rewards[0].ID
		err = e.s.ExecForTest(context.Background(), `INSERT INTO payout_rewards (reward_id, item_id, amount_minor) VALUES (?, ?, 1)`,
			rewardID, po.Items[0].ID)
		if err == nil {
			t.Fatal("a reward went into a second batch row")
		}

		for _, step := range []struct {
			ref     string
			changed bool
			err     error
		}{{"PP-9", true, nil}, {"PP-9", false, nil}, {"PP-10", false, store.ErrPaidElsewise}} {
			changed, err := e.markPaid(po.ID, step.ref)
			if changed != step.changed || !errors.Is(err, step.err) {
				t.Errorf("mark paid %s: changed %v err %v, want %v %v", step.ref, changed, err, step.changed, step.err)
			}
		}
		if _, err := e.markPaid(po.ID+100, "PP-9"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("mark an unknown batch: %v", err)
		}
		if n := e.count(`SELECT count(*) FROM ledger_entries WHERE kind = 'paid'`); n != 2 {
			t.Errorf("%d paid entries after three markings, want one pair", n)
		}
		e.wantBalance(alice, "0/0/0/0/2000/0", "paid once")
	})
}

// TestPayoutRacesRefund: a refund before the batch keeps the reward out;
// a refund after the batch was created but before it was paid leaves the
// batch as it was created (its file may be uploaded already) and becomes a
// clawback, netted by the next batch. Batches created at once (two
// instances) share no reward.
func TestPayoutRacesRefund(t *testing.T) {
	forEngines(t, func(t *testing.T, e *ledgerEnv) {
		alice := e.partner("alice", "")
		e.sale("alice", "r1", 10000, "") // 2000
		e.sale("alice", "r2", 5000, "")  // 1000
		e.s.AdvanceClockForTest(31 * day)

		// Refund first: r1 is not in the batch.
		e.refund("r1", -1)
		po, err := e.createPayout(0)
		if err != nil {
			t.Fatal(err)
		}
		if it := po.Items[0]; it.AmountMinor != 1000 || it.RewardCount != 1 {
			t.Fatalf("item %+v, want r2's 1000 alone", it)
		}
		// Batch first: r3 is in it, then refunded before the payment.
		e.sale("alice", "r3", 20000, "") // 4000
		e.s.AdvanceClockForTest(31 * day)
		po2, err := e.createPayout(0)
		if err != nil {
			t.Fatal(err)
		}
		e.refund("r3", -1)
		got, err := e.s.Payout(context.Background(), e.p.ID, po2.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Items[0].AmountMinor != 4000 {
			t.Errorf("the batch changed to %d after the refund; it pays what it was created with", got.Items[0].AmountMinor)
		}
		if shown, _ := e.rewardState("r3"); shown != "in_payout" {
			t.Errorf("r3 is %s after its refund, want still in_payout", shown)
		}
		e.wantBalance(alice, "0/0/0/5000/0/4000", "a batched reward refunded")
		e.markPaid(po.ID, "A")
		e.markPaid(po2.ID, "B")
		e.wantBalance(alice, "0/0/0/0/5000/4000", "both paid")
		e.sale("alice", "r4", 25000, "") // 5000
		e.s.AdvanceClockForTest(31 * day)
		po3, err := e.createPayout(0)
		if err != nil {
			t.Fatal(err)
		}
		if it := po3.Items[0]; it.AmountMinor != 1000 || it.ClawbackMinor != 4000 {
			t.Errorf("item %+v, want 5000 less the 4000 clawback", it)
		}

		// A refund and a batch at once, a few times: either the batch took
		// the reward and the refund is a clawback, or the refund came
		// first and the batch never saw it.
		for i := range 4 {
			key := fmt.Sprint("race", i)
			e.sale("alice", key, 1000, "")
			e.s.AdvanceClockForTest(31 * day)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); e.createPayout(0) }()
			go func() { defer wg.Done(); e.refund(key, -1) }()
			wg.Wait()
			tr, _ := e.s.Transaction(context.Background(), e.p.ID, key)
			r := tr.Rewards[0]
			batched := e.count(`SELECT count(*) FROM payout_rewards WHERE reward_id = ?`, r.ID)
			claws := e.count(`SELECT count(*) FROM ledger_entries WHERE reward_id = ? AND kind = 'clawback'`, r.ID)
			reversals := e.count(`SELECT count(*) FROM ledger_entries WHERE reward_id = ? AND kind = 'reversed'`, r.ID)
			switch {
			case batched == 1 && claws == 1 && reversals == 0 && r.Stored == "in_payout":
			case batched == 0 && claws == 0 && reversals == 1 && r.Stored == "reversed":
			default:
				t.Errorf("%s: batched %d, clawbacks %d, reversals %d, state %s", key, batched, claws, reversals, r.Stored)
			}
		}
		if n := e.count(`SELECT sum(amount_minor) FROM ledger_entries WHERE partner_id = ?`, alice.ID); n !=
			e.count(`SELECT sum(amount_minor - reversed_minor) FROM rewards WHERE partner_id = ?`, alice.ID) {
			t.Errorf("the ledger sums to %d, the rewards net of reversals to another", n)
		}

		// Concurrent batches: each reward in one.
		for i := range 6 {
			e.sale("alice", fmt.Sprint("c", i), 1000, "")
		}
		e.s.AdvanceClockForTest(31 * day)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[i] = e.createPayout(0) }()
		}
		wg.Wait()
		made := 0
		for _, err := range errs {
			switch {
			case err == nil:
				made++
			case errors.Is(err, ErrNothingToPay), errors.Is(err, store.ErrPayoutRace), errors.Is(err, store.ErrBusy):
			default:
				t.Errorf("concurrent batch: %v", err)
			}
		}
		if made < 1 {
			t.Errorf("no concurrent batch was made")
		}
		if n := e.count(`SELECT count(*) FROM payout_rewards WHERE reward_id IN (SELECT r.id FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE t.key LIKE 'c%')`); n != 6 {
			t.Errorf("%d of the 6 rewards batched (each once)", n)
		}
		if n := e.count(`SELECT count(*) FROM (SELECT reward_id FROM ledger_entries WHERE kind = 'batched' AND bucket = 'in_payout' GROUP BY reward_id HAVING count(*) > 1) x`); n != 0 {
			t.Errorf("%d rewards batched twice in the ledger", n)
		}
	})
}

// TestApprovalJobConcurrent: approval jobs running at once (instances on
// one PostgreSQL) approve each reward once.
func TestApprovalJobConcurrent(t *testing.T) {
	forEngines(t, func(t *testing.T, e *ledgerEnv) {
		e.partner("alice", "")
		for i := range 20 {
			e.sale("alice", fmt.Sprint("o", i), 1000, "")
		}
		e.s.AdvanceClockForTest(31 * day)
		due, err := e.s.DueRewards(context.Background(), 500)
		if err != nil || len(due) != 20 {
			t.Fatalf("%d due (%v)", len(due), err)
		}
		var wg sync.WaitGroup
		counts := make([]int, 4)
		for i := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := e.s.Write(context.Background(), func(tx *store.Tx) error {
					got, err := ApproveDue(tx, due)
					counts[i] = len(got)
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if total := counts[0] + counts[1] + counts[2] + counts[3]; total != 20 {
			t.Errorf("approved %v, %d in all, want 20", counts, total)
		}
		if n := e.count(`SELECT count(*) FROM ledger_entries WHERE kind = 'approved'`); n != 40 {
			t.Errorf("%d approval entries, want 40", n)
		}
	})
}

// TestFlagsHoldRewards: a self-referral and a cookie customer after a
// paid-ad click are flagged, not blocked; their rewards stay pending past
// the hold and out of payouts until the merchant approves the customer.
func TestFlagsHoldRewards(t *testing.T) {
	forEngines(t, func(t *testing.T, e *ledgerEnv) {
		alice := e.partner("alice", " Alice@Example.com ")
		bob := e.partner("bob", "bob@example.com")
		e.sale("alice", "self", 10000, "alice@example.COM")
		e.sale("alice", "fine", 5000, "someone@example.com")
		c, err := e.s.Customer(context.Background(), e.p.ID, "cust-self")
		if err != nil || c.Flags != rules.FlagSelfReferral || !c.HeldByFlags() {
			t.Fatalf("self-referral customer flags %q (%v)", c.Flags, err)
		}
		// A paid-ad click of bob's, then a customer the cookie attributes
		// to bob; one attributed by name is not flagged.
		if err := e.s.RecordClick(context.Background(), store.Click{ProgramID: e.p.ID, PartnerID: bob.ID,
			URL: "https://shop.example/?aff=bob&GCLID=abc"}); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT count(*) FROM clicks WHERE flags = 'gclid'`); n != 1 {
			t.Errorf("%d clicks flagged gclid, want 1", n)
		}
		e.write(func(tx *store.Tx) error {
			_, _, err := RecordTransaction(tx, e.p, TransactionInput{Key: "ad", Amount: rules.Money{Minor: 2000, Currency: "USD"},
				Action: "sale", Rewardable: true, CreateCustomer: true, Source: store.SourceJS,
				Customer: CustomerInput{Key: "cust-ad"}, Partner: store.PartnerRef{Key: "bob", By: rules.ByCookie}}, Tracked)
			return err
		})
		e.sale("bob", "named", 2000, "")
		for key, want := range map[string]string{"cust-ad": rules.FlagPaidAd, "cust-named": "", "cust-fine": ""} {
			if c, err := e.s.Customer(context.Background(), e.p.ID, key); err != nil || c.Flags != want {
				t.Errorf("%s flags %q (%v), want %q", key, c.Flags, err, want)
			}
		}

		e.s.AdvanceClockForTest(31 * day)
		e.wantBalance(alice, "2000/2000/1000/0/0/0", "alice past the hold, the self-referral held")
		if shown, _ := e.rewardState("self"); shown != "pending" {
			t.Errorf("a held reward is shown %s", shown)
		}
		e.job()
		if _, stored := e.rewardState("self"); stored != "pending" {
			t.Errorf("the job moved a held reward to %s", stored)
		}
		po, err := e.createPayout(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range po.Items {
			if it.Partner.ID == alice.ID && it.AmountMinor != 1000 || it.Partner.ID == bob.ID && it.AmountMinor != 400 {
				t.Errorf("item %s %d: a held reward was paid", it.Partner.Key, it.AmountMinor)
			}
		}
		e.write(func(tx *store.Tx) error {
			c, changed, err := ApproveFlags(tx, e.p, "cust-self")
			if err == nil && (!changed || c.FlagsApprovedAt.IsZero()) {
				err = fmt.Errorf("approve: changed %v, approved at %v", changed, c.FlagsApprovedAt)
			}
			return err
		})
		if _, stored := e.rewardState("self"); stored != "approved" {
			t.Errorf("after the merchant's approval the reward is %s, want approved at once (its hold has passed)", stored)
		}
		e.write(func(tx *store.Tx) error {
			if _, changed, err := ApproveFlags(tx, e.p, "cust-self"); err != nil || changed {
				return fmt.Errorf("approve again: changed %v %v", changed, err)
			}
			if _, _, err := ApproveFlags(tx, e.p, "cust-fine"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("approve a customer without flags: %v", err)
			}
			return nil
		})
		po2, err := e.createPayout(alice.ID)
		if err != nil || po2.Items[0].AmountMinor != 2000 {
			t.Fatalf("after approval: %+v %v", po2, err)
		}
	})
}

// TestLedgerReplacedSale: a verified report replacing an unverified
// browser sale removes its reward, whose entries stay and net to zero;
// the new reward's id is new (SQLite would reuse the removed row's) and
// its entries its own. An unverified sale whose reward is in a payout
// batch is not replaced.
func TestLedgerReplacedSale(t *testing.T) {
	forEngines(t, func(t *testing.T, e *ledgerEnv) {
		alice := e.partner("alice", "")
		browser := func(key string, cents int64) {
			e.write(func(tx *store.Tx) error {
				_, _, err := RecordTransaction(tx, e.p, TransactionInput{Key: key, Amount: rules.Money{Minor: cents, Currency: "USD"},
					Action: "sale", Rewardable: true, CreateCustomer: true, Source: store.SourceJS,
					Customer: CustomerInput{Key: "cust-" + key}, Partner: store.PartnerRef{Key: "alice", By: rules.ByCookie}}, Tracked)
				return err
			})
		}
		browser("forged", 100000) // reward 20000, the newest reward
		old, _ := e.s.Transaction(context.Background(), e.p.ID, "forged")
		oldID := old.Rewards[0].ID
		tr := e.sale("alice", "forged", 1000, "") // verified, other content: replaces it
		if len(tr.Rewards) != 1 || tr.Rewards[0].ID == oldID {
			t.Fatalf("the new reward has id %d, the removed one had %d", tr.Rewards[0].ID, oldID)
		}
		e.wantBalance(alice, "200/0/0/0/0/0", "after the replacement")
		if n := e.count(`SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE reward_id = ?`, oldID); n != 0 {
			t.Errorf("the removed reward's entries sum to %d, want 0", n)
		}
		if n := e.count(`SELECT count(*) FROM ledger_entries WHERE reward_id = ?`, oldID); n != 2 {
			t.Errorf("the removed reward has %d entries, want accrued and its reversal", n)
		}

		browser("batched", 5000)
		e.s.AdvanceClockForTest(31 * day)
		if _, err := e.createPayout(0); err != nil {
			t.Fatal(err)
		}
		err := e.s.Write(context.Background(), func(tx *store.Tx) error {
			_, _, err := RecordTransaction(tx, e.p, TransactionInput{Key: "batched", Amount: rules.Money{Minor: 7000, Currency: "USD"},
				Action: "sale", Rewardable: true, CreateCustomer: true, Source: store.SourceAPI, Verified: true,
				Customer: CustomerInput{Key: "cust-batched"}}, REST)
			return err
		})
		if !errors.Is(err, ErrKeyConflict) {
			t.Errorf("replacing a batched browser sale: %v, want ErrKeyConflict", err)
		}
	})
}
