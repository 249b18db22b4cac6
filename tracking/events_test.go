package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// eventTypes lists the program's events, oldest first.
func eventTypes(t *testing.T, s *store.Store) []string {
	t.Helper()
	var out []string
	for _, typ := range store.EventTypes {
		n, err := s.CountForTest(context.Background(), `SELECT count(*) FROM webhook_events WHERE type = ?`, typ)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			out = append(out, typ)
		}
	}
	return out
}

func countEvents(t *testing.T, s *store.Store, typ string) int {
	t.Helper()
	n, err := s.CountForTest(context.Background(), `SELECT count(*) FROM webhook_events e JOIN webhook_deliveries d ON d.event_id = e.id WHERE e.type = ?`, typ)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEventsCommitWithTheirChange (the engine of the run): every change
// tracking makes announces its event in the same write: a partner, a
// customer, a sale creating its customer, a refund; replays announce
// nothing; a write that fails after recording a sale stores neither the
// sale nor its events.
func TestEventsCommitWithTheirChange(t *testing.T) {
	f := newFixture(t)
	f.write(t, func(tx *store.Tx) error {
		return tx.InsertWebhookEndpoint(&store.WebhookEndpoint{ProgramID: "prog", URL: "https://hooks.example/in",
			Events: store.EventTypes, Enabled: true, Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"})
	})
	sale := TransactionInput{Key: "order-1", Amount: rules.Money{Minor: 5000, Currency: "USD"}, Action: "sale", Rewardable: true,
		Customer: CustomerInput{Key: "cust-1"}, Partner: store.PartnerRef{Key: "sam"}, CreateCustomer: true,
		Source: store.SourceAPI, Verified: true}
	for range 2 { // the second time is a replay
		f.write(t, func(tx *store.Tx) error {
			if _, _, err := CreatePartner(tx, f.p, PartnerInput{Key: "jane", Email: "jane@example.com"}); err != nil {
				return err
			}
			if _, _, err := CreateCustomer(tx, f.p, CustomerInput{Key: "cust-0"}, store.PartnerRef{Key: "jane"}, REST); err != nil {
				return err
			}
			_, _, err := RecordTransaction(tx, f.p, sale, REST)
			return err
		})
	}
	for typ, want := range map[string]int{store.EventPartnerCreated: 1, store.EventCustomerCreated: 2, store.EventTransactionCreated: 1} {
		if n := countEvents(t, f.s, typ); n != want {
			t.Errorf("%d %s events, want %d (events: %v)", n, typ, want, eventTypes(t, f.s))
		}
	}
	f.write(t, func(tx *store.Tx) error {
		_, err := Refund(tx, f.p, "order-1", 1000)
		return err
	})
	f.write(t, func(tx *store.Tx) error {
		_, err := Refund(tx, f.p, "order-1", 1000) // the same total: no change, no event
		return err
	})
	if n := countEvents(t, f.s, store.EventTransactionRefunded); n != 1 {
		t.Fatalf("%d transaction.refunded events, want 1", n)
	}

	before := eventTypes(t, f.s)
	boom := errors.New("something after the sale fails")
	err := f.s.Write(context.Background(), func(tx *store.Tx) error {
		in := sale
		in.Key, in.Customer.Key = "order-2", "cust-2"
		if _, res, err := RecordTransaction(tx, f.p, in, REST); err != nil || res != Created {
			return errors.Join(err, errors.New("not created"))
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("write: %v", err)
	}
	if after := eventTypes(t, f.s); len(after) != len(before) {
		t.Fatalf("events %v after a failed write, want %v: the sale it announced was never stored", after, before)
	}
	if _, err := f.s.Transaction(context.Background(), "prog", "order-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the failed write's sale: %v", err)
	}
}

// TestLedgerEventsAnnounced (both engines): a reward approved by the job
// announces reward.approved once, with its transaction showing the
// reward approved; a payout marked paid announces payout.paid once, not
// again for the same marking repeated.
func TestLedgerEventsAnnounced(t *testing.T) {
	forEngines(t, func(t *testing.T, e *ledgerEnv) {
		e.write(func(tx *store.Tx) error {
			return tx.InsertWebhookEndpoint(&store.WebhookEndpoint{ProgramID: e.p.ID, URL: "https://hooks.example/in",
				Events: []string{store.EventRewardApproved, store.EventPayoutPaid}, Enabled: true,
				Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"})
		})
		alice := e.partner("alice", "")
		e.sale("alice", "a1", 10000, "")
		if n := countEvents(t, e.s, store.EventRewardApproved); n != 0 {
			t.Fatalf("%d reward.approved before the hold ended", n)
		}
		e.s.AdvanceClockForTest(31 * day)
		if got := e.job(); len(got) != 1 {
			t.Fatalf("job approved %d", len(got))
		}
		e.job()
		if n := countEvents(t, e.s, store.EventRewardApproved); n != 1 {
			t.Fatalf("%d reward.approved events, want 1", n)
		}
		payloads, err := e.s.StringsForTest(context.Background(), `SELECT payload FROM webhook_events WHERE type = ?`, store.EventRewardApproved)
		if err != nil || len(payloads) != 1 {
			t.Fatal(payloads, err)
		}
		payload := payloads[0]
		var body struct {
			Data struct {
				Key     string
				Rewards []struct{ State string }
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(payload), &body); err != nil || body.Data.Key != "a1" || len(body.Data.Rewards) != 1 ||
			body.Data.Rewards[0].State != rules.StateApproved {
			t.Fatalf("reward.approved payload %s (%v): want transaction a1 with its reward approved", payload, err)
		}
		po, err := e.createPayout(alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := e.markPaid(po.ID, "PP-1"); err != nil {
				t.Fatal(err)
			}
		}
		if n := countEvents(t, e.s, store.EventPayoutPaid); n != 1 {
			t.Fatalf("%d payout.paid events, want 1", n)
		}
	})
}
