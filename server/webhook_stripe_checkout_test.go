package server

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Stripe Checkout (Checkout, Payment Links, pricing tables, buy buttons):
// checkout.session.completed and checkout.session.async_payment_succeeded
// attribute the session's customer, or, for a guest payment, are the sale.

// stripeTestSession is a completed Checkout Session: mode payment or
// subscription, customer "" for a guest, partner in client_reference_id.
func stripeTestSession(id, mode, customer, partner string, amount int64) map[string]any {
	s := map[string]any{
		"id": id, "object": "checkout.session", "mode": mode, "status": "complete", "payment_status": "paid",
		"client_reference_id": partner, "customer": customer, "amount_total": amount, "amount_subtotal": amount,
		"currency": "usd", "metadata": map[string]string{}, "invoice": nil, "subscription": nil, "payment_intent": nil,
		"customer_details": map[string]any{"email": "guest@example.com", "name": "Gus"},
		"total_details":    map[string]any{"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
	}
	if partner == "" {
		s["client_reference_id"] = nil
	}
	if customer == "" {
		s["customer"] = nil
	}
	if mode == "payment" {
		s["payment_intent"] = "pi_" + strings.TrimPrefix(id, "cs_")
	}
	return s
}

func withFields(m map[string]any, kv ...any) map[string]any {
	c := map[string]any{}
	for k, v := range m {
		c[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

// qCustomer matches a customer by key, partner and attributed_by.
func qCustomer(key, partner, by string) string {
	return fmt.Sprintf(`SELECT count(*) FROM customers c JOIN partners p ON p.id = c.partner_id
		WHERE c.program_id = ?1 AND c.key = '%s' AND p.key = '%s' AND c.attributed_by = '%s'`, key, partner, by)
}

// qSaleBy matches a transaction by key, attributed_by and discount_code.
func qSaleBy(key, by, code string) string {
	return fmt.Sprintf(`SELECT count(*) FROM transactions WHERE program_id = ?1 AND key = '%s'
		AND attributed_by = '%s' AND discount_code = '%s'`, key, by, code)
}

func TestStripeCheckout(t *testing.T) {
	completed := func(object map[string]any) string {
		return stripeTestEvent("checkout.session.completed", "2026-03-25.dahlia", object)
	}
	subscription := stripeTestSession("cs_S", "subscription", "cus_S", "bob", 10000)
	invoiceS := stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_S", "cus_S", 10000, "usd"))
	guest := stripeTestSession("cs_G", "payment", "", "bob", 4000)
	guestCharge := func(customer string, refunded int64) string {
		ch := stripeTestCharge("ch_G", customer, "", 4000, refunded)
		delete(ch, "invoice")
		ch["payment_intent"] = "pi_G"
		typ := "charge.succeeded"
		if refunded > 0 {
			typ = "charge.refunded"
		}
		return stripeTestEvent(typ, "2026-03-25.dahlia", ch)
	}
	guestStored := map[string]int{qTransactions: 1, qSale("pi_G", 4000, "ok", 0): 1, qReward("pi_G", "bob", 800, 0, "ok"): 1,
		qCustomer("cs_G", "bob", "metadata"): 1, qSaleBy("pi_G", "metadata", ""): 1,
		`SELECT count(*) FROM customers WHERE key = 'cs_G' AND email = 'guest@example.com' AND name = 'Gus'`: 1}
	nothing := map[string]int{qTransactions: 0, qRewards: 0, qPending: 0, qCustomers: 2, `SELECT count(*) FROM pending_sales`: 0}

	tests := []struct {
		name  string
		steps []stripeStep
	}{
		{"client_reference_id attributes the session's new customer; its invoices are the partner's", []stripeStep{
			{event: completed(subscription), answer: "created", rows: map[string]int{qCustomer("cus_S", "bob", "metadata"): 1,
				`SELECT count(*) FROM customers WHERE key = 'cus_S' AND email = 'guest@example.com'`: 1, qTransactions: 0}},
			{event: invoiceS, answer: "created", rows: map[string]int{qSale("in_S", 10000, "ok", 0): 1,
				qReward("in_S", "bob", 2000, 0, "ok"): 1, qSaleBy("in_S", "metadata", ""): 1}},
		}},
		{"metadata.partnero_partner wins over client_reference_id", []stripeStep{
			{event: completed(withFields(subscription, "metadata", map[string]string{"partnero_partner": "alice"})), answer: "created",
				rows: map[string]int{qCustomer("cus_S", "alice", "metadata"): 1}},
		}},
		{"an invoice before its session is counted when the session arrives, once", []stripeStep{
			{event: invoiceS, answer: "ignored", rows: map[string]int{qTransactions: 0, `SELECT count(*) FROM pending_sales WHERE key = 'in_S'`: 1}},
			{event: completed(subscription), answer: "created", rows: map[string]int{qSale("in_S", 10000, "ok", 0): 1,
				qReward("in_S", "bob", 2000, 0, "ok"): 1, `SELECT count(*) FROM pending_sales`: 0}},
			{event: invoiceS, answer: "duplicate", rows: map[string]int{qTransactions: 1, qRewards: 1}},
			{event: completed(subscription), answer: "duplicate", rows: map[string]int{qTransactions: 1, qRewards: 1}},
		}},
		{"a charge before its session is counted when the session arrives, once", func() []stripeStep {
			ch := stripeTestCharge("ch_P", "cus_P", "", 2500, 0)
			ch["payment_intent"] = "pi_P"
			charge := stripeTestEvent("charge.succeeded", "", ch)
			session := stripeTestEvent("checkout.session.async_payment_succeeded", "", stripeTestSession("cs_P", "payment", "cus_P", "bob", 2500))
			return []stripeStep{
				{event: charge, answer: "ignored", rows: map[string]int{`SELECT count(*) FROM pending_sales WHERE key = 'ch_P'`: 1}},
				{event: session, answer: "created", rows: map[string]int{qSale("ch_P", 2500, "ok", 0): 1, qReward("ch_P", "bob", 500, 0, "ok"): 1,
					qTransactions: 1, `SELECT count(*) FROM pending_sales`: 0}},
				{event: charge, answer: "duplicate", rows: map[string]int{qTransactions: 1}},
				{event: session, answer: "duplicate", rows: map[string]int{qTransactions: 1}},
			}
		}()},
		{"an existing customer keeps its partner", []stripeStep{
			{event: completed(stripeTestSession("cs_A", "subscription", "cus_A", "bob", 5000)), answer: "duplicate"},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_A", "cus_A", 5000, "usd")), answer: "created",
				rows: map[string]int{qReward("in_A", "alice", 1000, 0, "ok"): 1}},
		}},
		{"a completed but unpaid session attributes, and records no sale", []stripeStep{
			{event: completed(withFields(subscription, "payment_status", "unpaid")), answer: "created",
				rows: map[string]int{qCustomer("cus_S", "bob", "metadata"): 1, qTransactions: 0}},
		}},
		{"a guest payment is a sale of the session, keyed by its PaymentIntent", []stripeStep{
			{event: completed(guest), answer: "created", rows: guestStored},
			{event: completed(guest), answer: "duplicate", rows: guestStored},
		}},
		{"a guest's delayed payment: completed unpaid stores nothing, async_payment_succeeded the sale", []stripeStep{
			{event: completed(withFields(guest, "payment_status", "unpaid")), answer: "ignored", rows: nothing},
			{event: stripeTestEvent("checkout.session.async_payment_succeeded", "", guest), answer: "created", rows: guestStored},
			{event: stripeTestEvent("checkout.session.async_payment_succeeded", "", guest), answer: "duplicate", rows: guestStored},
		}},
		{"a guest payment's charge is not counted again, and its refund reverses the session's sale", []stripeStep{
			{event: completed(guest), answer: "created"},
			// A guest charge has no customer.
			{event: guestCharge("", 0), answer: "ignored", rows: guestStored},
			// Even one that names a customer is the session's sale.
			{event: guestCharge("cus_G", 0), answer: "ignored", rows: map[string]int{qTransactions: 1,
				`SELECT count(*) FROM transactions WHERE key = 'ch_G'`: 0, `SELECT count(*) FROM pending_sales`: 0}},
			{event: guestCharge("", 1000), answer: "refunded", rows: map[string]int{qSale("pi_G", 4000, "ok", 1000): 1,
				qReward("pi_G", "bob", 800, 200, "ok"): 1}},
			{event: guestCharge("", 4000), answer: "refunded", rows: map[string]int{qSale("pi_G", 4000, "refunded", 4000): 1,
				qReward("pi_G", "bob", 800, 800, "reversed"): 1}},
			{event: guestCharge("", 4000), answer: "duplicate"},
		}},
		{"a guest's charge before the session is not counted; the session is", []stripeStep{
			{event: guestCharge("", 0), answer: "ignored", rows: nothing},
			{event: completed(guest), answer: "created", rows: guestStored},
		}},
		{"a guest session naming no partner of the program stores nothing, and keeps nothing", []stripeStep{
			{event: completed(withFields(guest, "client_reference_id", "order-8841")), answer: "ignored", rows: nothing},
			{event: completed(withFields(guest, "client_reference_id", nil)), answer: "ignored", rows: nothing},
		}},
		{"a session of a customer naming no partner of the program stores nothing", []stripeStep{
			{event: completed(withFields(subscription, "client_reference_id", "user_42")), answer: "ignored", rows: nothing},
		}},
		{"tampered, wrongly signed and stale sessions are refused and store nothing", []stripeStep{
			{event: completed(guest), tamper: func(p string) string { return strings.Replace(p, `"amount_total":4000`, `"amount_total":400000`, 1) },
				status: 400, answer: "bad_signature", rows: nothing},
			{event: completed(guest), tamper: func(p string) string {
				return strings.Replace(p, `"client_reference_id":"bob"`, `"client_reference_id":"alice"`, 1)
			},
				status: 400, answer: "bad_signature", rows: nothing},
			{event: completed(guest), secret: "whsec_not_the_programs", status: 400, answer: "bad_signature", rows: nothing},
			{event: completed(guest), signAgo: 6 * time.Minute, status: 400, answer: "bad_signature", rows: nothing},
		}},
		{"malformed sessions are 4xx and store nothing", []stripeStep{
			{event: completed(withFields(guest, "amount_total", "40.00")), status: 400, answer: "bad_request", rows: nothing},
			{event: completed(withFields(guest, "amount_total", -1)), status: 422, answer: "invalid_field", rows: nothing},
			{event: completed(withFields(guest, "id", "")), status: 422, answer: "invalid_field", rows: nothing},
			{event: completed(withFields(guest, "currency", "x")), status: 422, answer: "invalid_field", rows: nothing},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newStripeFixture(t)
			for i, st := range tc.steps {
				r := f.deliver(t, st)
				want := st.status
				if want == 0 {
					want = 200
				}
				if r.Status != want {
					t.Fatalf("step %d: status %d, want %d: %s", i, r.Status, want, r.Body)
				}
				body := r.JSON(t)
				got, _ := body["status"].(string)
				if e, ok := body["error"].(map[string]any); ok {
					got, _ = e["code"].(string)
				}
				if got != st.answer {
					t.Fatalf("step %d: answer %q, want %q: %s", i, got, st.answer, r.Body)
				}
				f.assertRows(t, i, st.rows)
			}
		})
	}
}

// TestStripeCoupons: a Stripe sale's promotion code or coupon that is one
// of the program's codes attributes a new customer to the code's partner
// (attributed_by "code"), before client_reference_id or metadata; an
// existing customer keeps its partner, and the sale keeps the code.
func TestStripeCoupons(t *testing.T) {
	// The invoice's discount as API versions before 2025-03-31.basil
	// render it: the coupon expanded, the promotion code's id.
	discounted := func(id, customer, promo, coupon string) string {
		inv := stripeTestInvoice(id, customer, 8000, "usd")
		inv["discount"] = map[string]any{"id": "di_1", "object": "discount", "promotion_code": promo,
			"coupon": map[string]any{"id": coupon, "object": "coupon", "percent_off": 20}}
		inv["discounts"] = []any{"di_1"}
		return stripeTestEvent("invoice.paid", "2025-02-24.acacia", inv)
	}
	guest := stripeTestSession("cs_C", "payment", "", "alice", 4000)
	tests := []struct {
		name  string
		steps []stripeStep
	}{
		{"an invoice's coupon that is a partner's code attributes its new customer", []stripeStep{
			{event: discounted("in_C", "cus_C", "promo_1", "PODCAST20"), answer: "created", rows: map[string]int{
				qCustomer("cus_C", "bob", "code"): 1, qSaleBy("in_C", "code", "PODCAST20"): 1, qReward("in_C", "bob", 1600, 0, "ok"): 1,
				`SELECT count(*) FROM customers WHERE key = 'cus_C' AND discount_code = 'podcast20'`: 1}},
			{event: discounted("in_C", "cus_C", "promo_1", "PODCAST20"), answer: "duplicate", rows: map[string]int{qTransactions: 1}},
		}},
		{"a promotion code's id registered as the code attributes too", []stripeStep{
			{event: discounted("in_D", "cus_D", "promo_bob7", "SHARED"), answer: "created", rows: map[string]int{
				qCustomer("cus_D", "bob", "code"): 1, qSaleBy("in_D", "code", "promo_bob7"): 1}},
		}},
		{"an unknown code attributes nothing: the sale is kept, with its code", []stripeStep{
			{event: discounted("in_E", "cus_E", "promo_x", "NOPE"), answer: "ignored", rows: map[string]int{
				qTransactions: 0, `SELECT count(*) FROM pending_sales WHERE key = 'in_E' AND discount_code = 'promo_x'`: 1}},
		}},
		{"an existing customer keeps its partner; the sale keeps the code", []stripeStep{
			{event: discounted("in_A", "cus_A", "promo_1", "PODCAST20"), answer: "created", rows: map[string]int{
				qReward("in_A", "alice", 1600, 0, "ok"): 1, `SELECT count(*) FROM transactions WHERE key = 'in_A' AND discount_code = 'PODCAST20'`: 1}},
		}},
		{"a guest session's promotion code wins over its client_reference_id", []stripeStep{
			{event: stripeTestEvent("checkout.session.completed", "", withFields(guest, "discounts",
				[]any{map[string]any{"coupon": "SHARED", "promotion_code": map[string]any{"id": "promo_2", "object": "promotion_code", "code": "podcast20"}}})),
				answer: "created", rows: map[string]int{qCustomer("cs_C", "bob", "code"): 1, qSaleBy("pi_C", "code", "podcast20"): 1,
					qReward("pi_C", "bob", 800, 0, "ok"): 1}},
		}},
		{"a session's code attributes its customer; the invoice that follows is the code's partner's", []stripeStep{
			{event: stripeTestEvent("checkout.session.completed", "", withFields(stripeTestSession("cs_F", "subscription", "cus_F", "", 8000),
				"discounts", []any{map[string]any{"coupon": "SHARED", "promotion_code": "promo_bob7"}})),
				answer: "created", rows: map[string]int{qCustomer("cus_F", "bob", "code"): 1}},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_F", "cus_F", 8000, "usd")), answer: "created",
				rows: map[string]int{qReward("in_F", "bob", 1600, 0, "ok"): 1, qSaleBy("in_F", "code", ""): 1}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newStripeFixture(t)
			for _, c := range []string{`{"code":"podcast20","partner":{"key":"bob"}}`, `{"code":"promo_bob7","partner":{"key":"bob"}}`} {
				if r := f.ts.api(f.shop, "POST", "/v1/coupons", c); r.Status != 201 {
					t.Fatalf("coupon %s: %d %s", c, r.Status, r.Body)
				}
			}
			for i, st := range tc.steps {
				r := f.deliver(t, st)
				if r.Status != 200 || !strings.Contains(r.Body, `"status":"`+st.answer+`"`) {
					t.Fatalf("step %d: %d %s, want %s", i, r.Status, r.Body, st.answer)
				}
				f.assertRows(t, i, st.rows)
			}
		})
	}
}
