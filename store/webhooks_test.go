package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// webhookFixture is a program with three endpoints: one taking every
// event, one taking transaction.created only, and one switched off.
func webhookFixture(t *testing.T, s *Store) (all, sales, off *WebhookEndpoint) {
	t.Helper()
	insertProgram(t, s, "prog")
	all = &WebhookEndpoint{ProgramID: "prog", URL: "https://a.example/hook", Events: EventTypes, Enabled: true, Secret: "whsec_YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh"}
	sales = &WebhookEndpoint{ProgramID: "prog", URL: "https://b.example/hook", Events: []string{EventTransactionCreated}, Enabled: true, Secret: "whsec_YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi"}
	off = &WebhookEndpoint{ProgramID: "prog", URL: "https://c.example/hook", Events: EventTypes, Enabled: false, Secret: "whsec_Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"}
	err := s.Write(context.Background(), func(tx *Tx) error {
		for _, e := range []*WebhookEndpoint{all, sales, off} {
			if err := tx.InsertWebhookEndpoint(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all, sales, off
}

func countRowsT(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	n, err := s.CountForTest(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAnnounceFansOutInTheWrite (both engines): an event is one row and
// one delivery per enabled endpoint subscribed to its type, written by
// the write that announces it; the body is {type, timestamp, data}; an
// event no endpoint takes writes nothing; a write that fails after
// announcing leaves neither its change nor its event.
func TestAnnounceFansOutInTheWrite(t *testing.T) {
	for engine, open := range openEngines() {
		t.Run(engine, func(t *testing.T) {
			s := open(t)
			all, sales, _ := webhookFixture(t, s)
			ctx := context.Background()
			var id string
			err := s.Write(ctx, func(tx *Tx) (err error) {
				p := &Partner{ProgramID: "prog", Key: "jane"}
				if err := tx.InsertPartner(p); err != nil {
					return err
				}
				id, err = tx.Announce("prog", EventPartnerCreated, map[string]any{"key": p.Key})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(id, "msg_") || len(id) != 30 {
				t.Fatalf("event id %q, want msg_ and a 26-character ULID", id)
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM webhook_deliveries WHERE event_id = ?`, id); n != 1 {
				t.Fatalf("%d deliveries of partner.created, want 1 (the endpoint taking every event)", n)
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM webhook_deliveries WHERE event_id = ? AND endpoint_id = ?`, id, all.ID); n != 1 {
				t.Fatal("partner.created did not go to the endpoint taking every event")
			}
			ev, err := s.WebhookEvent(ctx, "prog", id)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Type      string          `json:"type"`
				Timestamp time.Time       `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(ev.Payload, &body); err != nil || body.Type != EventPartnerCreated || body.Timestamp.IsZero() ||
				string(body.Data) != `{"key":"jane"}` {
				t.Fatalf("payload %s (%v)", ev.Payload, err)
			}

			// transaction.created goes to both enabled endpoints.
			err = s.Write(ctx, func(tx *Tx) (err error) {
				id, err = tx.Announce("prog", EventTransactionCreated, map[string]any{"key": "order-1"})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM webhook_deliveries WHERE event_id = ? AND endpoint_id IN (?, ?)`, id, all.ID, sales.ID); n != 2 {
				t.Fatalf("%d deliveries of transaction.created, want 2", n)
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM webhook_deliveries WHERE event_id = ?`, id); n != 2 {
				t.Fatalf("%d deliveries of transaction.created in all, want 2 (none to the endpoint switched off)", n)
			}

			// No subscriber: nothing written.
			insertProgram(t, s, "quiet")
			err = s.Write(ctx, func(tx *Tx) (err error) {
				id, err = tx.Announce("quiet", EventTransactionCreated, map[string]any{})
				return err
			})
			if err != nil || id != "" {
				t.Fatalf("announce to a program without endpoints: %q, %v", id, err)
			}

			// A write that fails after announcing: neither its partner nor
			// its event is stored.
			before := countRowsT(t, s, `SELECT count(*) FROM webhook_events`)
			boom := errors.New("the write fails after announcing")
			err = s.Write(ctx, func(tx *Tx) error {
				p := &Partner{ProgramID: "prog", Key: "rolled-back"}
				if err := tx.InsertPartner(p); err != nil {
					return err
				}
				if _, err := tx.Announce("prog", EventPartnerCreated, map[string]any{"key": p.Key}); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("write: %v, want its own error", err)
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM partners WHERE key = 'rolled-back'`); n != 0 {
				t.Fatal("the failed write's partner is stored")
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM webhook_events`); n != before {
				t.Fatalf("%d events after a failed write, want %d: an event of a change that did not happen", n, before)
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM webhook_deliveries d LEFT JOIN webhook_events ev ON ev.id = d.event_id WHERE ev.id IS NULL`); n != 0 {
				t.Fatalf("%d deliveries without their event", n)
			}
		})
	}
}

// TestWebhookClaimLeaseAndFence (both engines): a claimed delivery is
// not claimed again while leased; once the lease has run out it is (the
// next attempt); the first attempt's late answer is then dropped; a
// delivery out of retries fails and marks its endpoint failing; resend
// queues it again with a new window and the same event; the next success
// clears the failing mark; deleting an endpoint takes its deliveries.
func TestWebhookClaimLeaseAndFence(t *testing.T) {
	for engine, open := range openEngines() {
		t.Run(engine, func(t *testing.T) {
			s := open(t)
			_, sales, _ := webhookFixture(t, s)
			ctx := context.Background()
			var id string
			if err := s.Write(ctx, func(tx *Tx) (err error) {
				id, err = tx.Announce("prog", EventTransactionCreated, map[string]any{"key": "o1"})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			now := time.Now().Add(time.Second)
			lease := 30 * time.Second
			if due, ok, err := s.NextWebhookDue(ctx, now); err != nil || !ok || due.After(now) {
				t.Fatalf("next due %v %v %v, want due now", due, ok, err)
			}
			first, err := s.ClaimWebhookDeliveries(ctx, now, lease, 10)
			if err != nil || len(first) != 2 {
				t.Fatalf("claimed %d (%v), want the event's 2 deliveries", len(first), err)
			}
			var d1 *ClaimedDelivery
			for _, d := range first {
				if d.Attempt != 1 || d.EventID != id || d.EventType != EventTransactionCreated || len(d.Secrets) != 1 || len(d.Payload) == 0 {
					t.Fatalf("claimed %+v", d)
				}
				if d.EndpointID == sales.ID {
					d1 = d
				}
			}
			if again, err := s.ClaimWebhookDeliveries(ctx, now.Add(lease-2*time.Second), lease, 10); err != nil || len(again) != 0 {
				t.Fatalf("claimed %d again within the lease (%v), want 0", len(again), err)
			}
			if _, ok, _ := s.NextWebhookDue(ctx, now); ok {
				t.Fatal("a leased delivery is reported due")
			}
			// The worker died: the lease runs out and the next attempt is
			// claimed; the first attempt's answer, arriving late, is dropped.
			later := now.Add(lease + time.Second)
			second, err := s.ClaimWebhookDeliveries(ctx, later, lease, 10)
			if err != nil || len(second) != 2 {
				t.Fatalf("claimed %d after the lease (%v), want 2", len(second), err)
			}
			var d2, other *ClaimedDelivery
			for _, d := range second {
				if d.ID == d1.ID {
					d2 = d
				} else {
					other = d
				}
			}
			if kept, err := s.RecordWebhookAttempt(ctx, other, AttemptResult{At: later, Status: 200, Delivered: true}); err != nil || !kept {
				t.Fatalf("record: %v %v", kept, err)
			}
			if d2 == nil || d2.Attempt != 2 || d2.EventID != id {
				t.Fatalf("second attempt %+v, want attempt 2 of the same event", d2)
			}
			if kept, err := s.RecordWebhookAttempt(ctx, d1, AttemptResult{At: later, Status: 200, Delivered: true}); err != nil || kept {
				t.Fatalf("the expired attempt's answer was kept (%v)", err)
			}
			// Out of retries: failed, and the endpoint is failing.
			if kept, err := s.RecordWebhookAttempt(ctx, d2, AttemptResult{At: later, Status: 500, Error: "HTTP 500"}); err != nil || !kept {
				t.Fatalf("record: %v %v", kept, err)
			}
			e, err := s.WebhookEndpoint(ctx, "prog", sales.ID)
			if err != nil || e.FailingSince.IsZero() {
				t.Fatalf("endpoint after a failed delivery: %+v %v, want failing", e, err)
			}
			list, err := s.WebhookDeliveries(ctx, DeliveryFilter{ProgramID: "prog", EndpointID: sales.ID})
			if err != nil || len(list) != 1 || list[0].Status != DeliveryFailed || list[0].Attempts != 2 || list[0].LastStatus != 500 ||
				list[0].LastError != "HTTP 500" || !list[0].NextAttemptAt.IsZero() {
				t.Fatalf("deliveries %+v %v", list, err)
			}
			// Resend: pending again, due now, same event.
			if err := s.Write(ctx, func(tx *Tx) error { return tx.ResendWebhookDelivery("prog", d2.ID) }); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, func(tx *Tx) error { return tx.ResendWebhookDelivery("other", d2.ID) }); !errors.Is(err, ErrNotFound) {
				t.Fatalf("resend through another program: %v, want ErrNotFound", err)
			}
			third, err := s.ClaimWebhookDeliveries(ctx, later.Add(2*lease), lease, 10)
			var d3 *ClaimedDelivery
			for _, d := range third {
				if d.ID == d2.ID {
					d3 = d
				}
			}
			if err != nil || d3 == nil || d3.Attempt != 3 || d3.EventID != id || d3.StartedAt.Before(later.Add(-time.Minute)) {
				t.Fatalf("resent delivery %+v (%v), want attempt 3 of the same event with a new window", d3, err)
			}
			if kept, err := s.RecordWebhookAttempt(ctx, d3, AttemptResult{At: later.Add(2 * lease), Status: 204, Delivered: true}); err != nil || !kept {
				t.Fatalf("record: %v %v", kept, err)
			}
			if e, _ := s.WebhookEndpoint(ctx, "prog", sales.ID); !e.FailingSince.IsZero() {
				t.Fatal("a success did not clear the endpoint's failing mark")
			}
			// A rotated secret signs beside the new one.
			if err := s.Write(ctx, func(tx *Tx) error {
				return tx.RotateWebhookSecret("prog", sales.ID, "whsec_bmV3bmV3bmV3bmV3bmV3bmV3bmV3bmV3", time.Hour)
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, func(tx *Tx) error { return tx.ResendWebhookDelivery("prog", d2.ID) }); err != nil {
				t.Fatal(err)
			}
			fourth, err := s.ClaimWebhookDeliveries(ctx, time.Now().Add(time.Second), lease, 10)
			if err != nil || len(fourth) != 1 || len(fourth[0].Secrets) != 2 || fourth[0].Secrets[1] != sales.Secret {
				t.Fatalf("after a rotation: %+v (%v), want the new and the old secret", fourth, err)
			}
			// Deleting the endpoint takes its deliveries.
			if err := s.Write(ctx, func(tx *Tx) error { return tx.DeleteWebhookEndpoint("prog", sales.ID) }); err != nil {
				t.Fatal(err)
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = ?`, sales.ID); n != 0 {
				t.Fatalf("%d deliveries of a deleted endpoint", n)
			}
			if kept, err := s.RecordWebhookAttempt(ctx, fourth[0], AttemptResult{At: time.Now(), Status: 200, Delivered: true}); err != nil || kept {
				t.Fatalf("an answer for a deleted endpoint was kept (%v)", err)
			}
			// Pruning: ended deliveries and their orphaned events go.
			n, err := s.PruneWebhooks(ctx, time.Now().Add(time.Hour), 100)
			if err != nil || n != 2 {
				t.Fatalf("pruned %d rows (%v), want the delivered one and its event", n, err)
			}
			if n := countRowsT(t, s, `SELECT count(*) FROM webhook_events`); n != 0 {
				t.Fatalf("%d events left after pruning", n)
			}
		})
	}
}

func TestNewEventID(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := NewEventID(at), NewEventID(at.Add(time.Millisecond))
	if a == b || len(a) != 30 || !strings.HasPrefix(a, "msg_") || a >= b {
		t.Fatalf("ids %q %q: want distinct, msg_ and 26 characters, sorting by time", a, b)
	}
	for _, c := range a[4:] {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) {
			t.Fatalf("%q: %q is not Crockford base32", a, c)
		}
	}
}
