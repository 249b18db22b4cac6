package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"
)

// stripeFixture is a program (20% commission) with partners alice and bob,
// customer cus_A referred by alice, customer cus_plain referred by nobody,
// and a second program whose secret must not sign for the first.
type stripeFixture struct {
	ts          *testServer
	shop, other testProgram
}

func newStripeFixture(t *testing.T) *stripeFixture {
	t.Helper()
	ts := newTestServer(t)
	f := &stripeFixture{ts: ts,
		shop:  ts.createProgram(`{"name":"Shop","commission":{"type":"percent","value":20}}`),
		other: ts.createProgram(`{"name":"Other"}`),
	}
	for _, step := range []struct{ path, body string }{
		{"/v1/partners", `{"key":"alice","email":"alice@example.com","name":"Alice"}`},
		{"/v1/partners", `{"key":"bob","email":"bob@example.com","name":"Bob"}`},
		{"/v1/customers", `{"key":"cus_A","partner":{"key":"alice"}}`},
		{"/v1/customers", `{"key":"cus_plain"}`},
	} {
		if r := ts.api(f.shop, "POST", step.path, step.body); r.Status != 201 {
			t.Fatalf("fixture %s %s: %d %s", step.path, step.body, r.Status, r.Body)
		}
	}
	return f
}

var stripeTestEventSeq int

// stripeTestEvent is an event as Stripe delivers it, rendered in apiVersion
// ("" means the library's own).
func stripeTestEvent(typ, apiVersion string, object any) string {
	if apiVersion == "" {
		apiVersion = stripe.APIVersion
	}
	stripeTestEventSeq++
	b, err := json.Marshal(map[string]any{
		"id": fmt.Sprintf("evt_test_%d", stripeTestEventSeq), "object": "event", "api_version": apiVersion,
		"created": time.Now().Unix(), "livemode": false, "pending_webhooks": 1, "type": typ,
		"data": map[string]any{"object": object},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func stripeTestInvoice(id, customer string, amountPaid int64, currency string) map[string]any {
	return map[string]any{
		"id": id, "object": "invoice", "customer": customer, "amount_paid": amountPaid, "currency": currency,
		"status": "paid",
		"lines": map[string]any{"object": "list", "data": []any{
			map[string]any{"id": "il_1", "object": "line_item", "amount": amountPaid,
				"price": map[string]any{"id": "price_1", "object": "price", "product": "prod_pro"}},
		}},
	}
}

// stripeTestCharge is a captured charge; invoice "" renders null, as API
// versions before 2025-03-31.basil do for one-off charges.
func stripeTestCharge(id, customer, invoice string, amount, refunded int64) map[string]any {
	ch := map[string]any{
		"id": id, "object": "charge", "customer": customer, "amount": amount, "amount_captured": amount,
		"amount_refunded": refunded, "refunded": refunded == amount, "currency": "usd", "captured": true,
		"paid": true, "status": "succeeded", "invoice": nil,
	}
	if invoice != "" {
		ch["invoice"] = invoice
	}
	return ch
}

func stripeTestCustomer(id string, metadata map[string]string) map[string]any {
	return map[string]any{"id": id, "object": "customer", "name": "Casey", "email": "casey@example.com", "metadata": metadata}
}

// stripeStep is one delivery to the shop's endpoint.
type stripeStep struct {
	event   string
	secret  string                      // "" signs with the shop's webhook secret
	signAt  time.Time                   // zero: now
	signAgo time.Duration               // signed this long before it is sent (negative: in the future)
	header  *string                     // replaces the Stripe-Signature header
	tamper  func(payload string) string // changes the payload after signing
	program string                      // "" posts to the shop's endpoint
	status  int                         // 0 means 200
	answer  string                      // body "status", or error.code for errors
	rows    map[string]int              // after this step: count query (?1 is the shop's id) -> rows
}

func (f *stripeFixture) deliver(t *testing.T, st stripeStep) *response {
	t.Helper()
	secret := st.secret
	if secret == "" {
		secret = f.shop.WebhookSecret
	}
	at := st.signAt
	if st.signAgo != 0 {
		at = time.Now().Add(-st.signAgo)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: []byte(st.event), Secret: secret, Timestamp: at})
	header := signed.Header
	if st.header != nil {
		header = *st.header
	}
	payload := st.event
	if st.tamper != nil {
		payload = st.tamper(payload)
	}
	program := st.program
	if program == "" {
		program = f.shop.ID
	}
	return f.ts.request("POST", "/webhooks/stripe/"+program, payload,
		"Content-Type", "application/json", "Stripe-Signature", header)
}

func (f *stripeFixture) assertRows(t *testing.T, step int, rows map[string]int) {
	t.Helper()
	for q, want := range rows {
		var args []any
		if strings.Contains(q, "?1") {
			args = []any{f.shop.ID}
		}
		if got := f.ts.count(q, args...); got != want {
			t.Errorf("step %d: %s = %d, want %d", step, q, got, want)
		}
	}
}

// Row queries shared by the scenarios.
const (
	qTransactions = `SELECT count(*) FROM transactions WHERE program_id = ?1`
	qRewards      = `SELECT count(*) FROM rewards`
	qPending      = `SELECT count(*) FROM pending_refunds`
	qCustomers    = `SELECT count(*) FROM customers WHERE program_id = ?1`
)

// qSale matches a stored gateway sale by key, amount, status and refunded amount.
func qSale(key string, amount int64, status string, refunded int64) string {
	return fmt.Sprintf(`SELECT count(*) FROM transactions t JOIN customers c ON c.id = t.customer_id
		WHERE t.program_id = ?1 AND t.key = '%s' AND t.amount_minor = %d AND t.currency = 'USD'
		AND t.source = 'gateway' AND t.verified = TRUE AND t.action = 'sale'
		AND t.status = '%s' AND t.refunded_minor = %d`, key, amount, status, refunded)
}

// qReward matches the reward of a transaction by partner, amount, reversal and status.
func qReward(key, partner string, amount, reversed int64, status string) string {
	return fmt.Sprintf(`SELECT count(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id
		JOIN partners p ON p.id = r.partner_id
		WHERE t.program_id = ?1 AND t.key = '%s' AND p.key = '%s' AND r.amount_minor = %d
		AND r.reversed_minor = %d AND r.status = '%s' AND r.currency = 'USD'`, key, partner, amount, reversed, status)
}

func TestStripeWebhook(t *testing.T) {
	sale := stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_1", "cus_A", 5000, "usd"))
	saleStored := map[string]int{
		qTransactions: 1, qRewards: 1,
		qSale("in_1", 5000, "ok", 0):                                                       1,
		qReward("in_1", "alice", 1000, 0, "ok"):                                            1,
		`SELECT count(*) FROM transactions WHERE key = 'in_1' AND product_id = 'prod_pro'`: 1,
	}
	nothing := map[string]int{qTransactions: 0, qRewards: 0, qPending: 0, qCustomers: 2}
	invoiceCharge := stripeTestCharge("ch_1", "cus_A", "in_1", 5000, 0)
	oneOff := stripeTestCharge("ch_2", "cus_A", "", 4000, 0)
	// Since 2025-03-31.basil a charge has no invoice field at all.
	basilCharge := stripeTestCharge("ch_3", "cus_A", "", 3000, 0)
	delete(basilCharge, "invoice")
	refundOf := func(ch map[string]any, refunded int64) string {
		c := map[string]any{}
		for k, v := range ch {
			c[k] = v
		}
		c["amount_refunded"] = refunded
		c["refunded"] = refunded == c["amount"].(int64)
		return stripeTestEvent("charge.refunded", "", c)
	}
	blank := ""
	garbage := "t=123,v1=zz"
	// Since 2025-03-31.basil a charge does not name its invoice; an
	// invoice_payment.paid event links its PaymentIntent to the invoice.
	basilInvoiceCharge := func(refunded int64) string {
		ch := stripeTestCharge("ch_9", "cus_A", "", 5000, refunded)
		delete(ch, "invoice")
		ch["payment_intent"] = "pi_1"
		typ := "charge.refunded"
		if refunded == 0 {
			typ = "charge.succeeded"
		}
		return stripeTestEvent(typ, "2026-03-25.dahlia", ch)
	}
	invoicePayment := stripeTestEvent("invoice_payment.paid", "2026-03-25.dahlia", map[string]any{
		"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1", "amount_paid": 5000, "currency": "usd", "status": "paid",
		"payment": map[string]any{"type": "payment_intent", "payment_intent": "pi_1"},
	})
	saleRefunded := map[string]int{qTransactions: 1, qPending: 0,
		qSale("in_1", 5000, "refunded", 5000): 1, qReward("in_1", "alice", 1000, 1000, "reversed"): 1}

	tests := []struct {
		name  string
		steps []stripeStep
	}{
		{"sale for a referred customer stores one rewarded transaction", []stripeStep{
			{event: sale, answer: "created", rows: saleStored},
		}},
		{"Stripe's minor units are converted where they are not the currency's", []stripeStep{
			// 1,000 kr arrives as 100000 (Stripe counts ISK in hundredths).
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_isk", "cus_A", 100000, "isk")), answer: "created", rows: map[string]int{
				`SELECT count(*) FROM transactions WHERE key = 'in_isk' AND amount_minor = 1000 AND currency = 'ISK'`: 1,
				`SELECT count(*) FROM rewards WHERE amount_minor = 200 AND currency = 'ISK'`:                          1}},
			// 5,000 Ar arrives as 5000 (Stripe counts MGA in whole ariary).
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_mga", "cus_A", 5000, "mga")), answer: "created", rows: map[string]int{
				`SELECT count(*) FROM transactions WHERE key = 'in_mga' AND amount_minor = 500000 AND currency = 'MGA'`: 1}},
			// JPY and KWD mean the same in both.
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_jpy", "cus_A", 1000, "jpy")), answer: "created", rows: map[string]int{
				`SELECT count(*) FROM transactions WHERE key = 'in_jpy' AND amount_minor = 1000 AND currency = 'JPY'`: 1}},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_kwd", "cus_A", 1234, "kwd")), answer: "created", rows: map[string]int{
				`SELECT count(*) FROM transactions WHERE key = 'in_kwd' AND amount_minor = 1234 AND currency = 'KWD'`: 1}},
			// An ISK amount with a fraction of a krona cannot be stored.
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_isk2", "cus_A", 100050, "isk")), status: 422, answer: "invalid_field", rows: map[string]int{
				`SELECT count(*) FROM transactions WHERE key = 'in_isk2'`: 0}},
		}},
		{"basil: a refund of an invoice's charge reverses the invoice's reward", []stripeStep{
			{event: sale, answer: "created"},
			{event: invoicePayment, answer: "linked"},
			{event: basilInvoiceCharge(5000), answer: "refunded", rows: saleRefunded},
		}},
		{"basil: a refund before the link applies when the link arrives", []stripeStep{
			{event: sale, answer: "created"},
			{event: basilInvoiceCharge(5000), answer: "pending", rows: map[string]int{qPending: 1, qSale("in_1", 5000, "ok", 0): 1}},
			{event: invoicePayment, answer: "refunded", rows: saleRefunded},
		}},
		{"basil: a refund before the link and the sale applies when the sale arrives", []stripeStep{
			{event: basilInvoiceCharge(5000), answer: "pending"},
			{event: invoicePayment, answer: "linked", rows: map[string]int{qPending: 1, qTransactions: 0}},
			{event: sale, answer: "created", rows: saleRefunded},
		}},
		{"basil: a charge linked to an invoice is not counted twice", []stripeStep{
			{event: invoicePayment, answer: "linked"},
			{event: sale, answer: "created"},
			{event: basilInvoiceCharge(0), answer: "ignored", rows: map[string]int{qTransactions: 1,
				`SELECT count(*) FROM transactions WHERE key = 'ch_9'`: 0}},
		}},
		{"duplicate delivery stores nothing new", []stripeStep{
			{event: sale, answer: "created"},
			{event: sale, answer: "duplicate", rows: saleStored},
		}},
		{"same invoice in another event with another amount is acknowledged, not applied", []stripeStep{
			{event: sale, answer: "created"},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_1", "cus_A", 9000, "usd")),
				answer: "conflict", rows: saleStored},
		}},
		{"charge of an invoice is not counted twice", []stripeStep{
			{event: sale, answer: "created"},
			{event: stripeTestEvent("charge.succeeded", "", invoiceCharge), answer: "ignored", rows: map[string]int{
				qTransactions: 1, qRewards: 1, `SELECT count(*) FROM transactions WHERE key = 'ch_1'`: 0}},
		}},
		{"one-off charges are sales, with or without the invoice field", []stripeStep{
			{event: stripeTestEvent("charge.succeeded", "2024-06-20", oneOff), answer: "created", rows: map[string]int{
				qSale("ch_2", 4000, "ok", 0): 1, qReward("ch_2", "alice", 800, 0, "ok"): 1}},
			{event: stripeTestEvent("charge.succeeded", "2025-03-31.basil", basilCharge), answer: "created", rows: map[string]int{
				qTransactions: 2, qSale("ch_3", 3000, "ok", 0): 1, qReward("ch_3", "alice", 600, 0, "ok"): 1}},
		}},
		{"uncaptured charge waits for charge.captured", []stripeStep{
			{event: stripeTestEvent("charge.succeeded", "", func() map[string]any {
				c := stripeTestCharge("ch_auth", "cus_A", "", 2500, 0)
				c["captured"], c["amount_captured"] = false, 0
				return c
			}()), answer: "ignored", rows: map[string]int{qTransactions: 0}},
			{event: stripeTestEvent("charge.captured", "", stripeTestCharge("ch_auth", "cus_A", "", 2500, 0)),
				answer: "created", rows: map[string]int{qSale("ch_auth", 2500, "ok", 0): 1}},
		}},
		{"refund of an invoice's charge reverses the reward", []stripeStep{
			{event: sale, answer: "created"},
			{event: refundOf(invoiceCharge, 5000), answer: "refunded", rows: map[string]int{
				qTransactions: 1, qSale("in_1", 5000, "refunded", 5000): 1,
				qReward("in_1", "alice", 1000, 1000, "reversed"): 1}},
		}},
		{"partial refund reverses proportionally, then the full refund reverses all", []stripeStep{
			{event: sale, answer: "created"},
			{event: refundOf(invoiceCharge, 1250), answer: "refunded", rows: map[string]int{
				qSale("in_1", 5000, "ok", 1250): 1, qReward("in_1", "alice", 1000, 250, "ok"): 1}},
			{event: refundOf(invoiceCharge, 1250), answer: "duplicate", rows: map[string]int{
				qReward("in_1", "alice", 1000, 250, "ok"): 1}},
			{event: refundOf(invoiceCharge, 5000), answer: "refunded", rows: map[string]int{
				qSale("in_1", 5000, "refunded", 5000): 1, qReward("in_1", "alice", 1000, 1000, "reversed"): 1}},
			// A late, smaller refund event changes nothing.
			{event: refundOf(invoiceCharge, 1250), answer: "duplicate", rows: map[string]int{
				qSale("in_1", 5000, "refunded", 5000): 1, qReward("in_1", "alice", 1000, 1000, "reversed"): 1}},
		}},
		{"refund before its sale is applied when the sale arrives", []stripeStep{
			{event: refundOf(oneOff, 4000), answer: "pending", rows: map[string]int{qTransactions: 0, qPending: 1}},
			{event: stripeTestEvent("charge.succeeded", "", oneOff), answer: "created", rows: map[string]int{
				qPending: 0, qSale("ch_2", 4000, "refunded", 4000): 1,
				qReward("ch_2", "alice", 800, 800, "reversed"): 1}},
		}},
		{"partial refunds before the sale keep the largest total", []stripeStep{
			{event: refundOf(invoiceCharge, 2500), answer: "pending"},
			{event: refundOf(invoiceCharge, 1000), answer: "pending", rows: map[string]int{
				`SELECT count(*) FROM pending_refunds WHERE key = 'in_1' AND refunded_minor = 2500`: 1}},
			{event: sale, answer: "created", rows: map[string]int{
				qPending: 0, qSale("in_1", 5000, "ok", 2500): 1, qReward("in_1", "alice", 1000, 500, "ok"): 1}},
		}},
		{"bad signature stores nothing", []stripeStep{
			{event: sale, secret: "whsec_not_the_programs", status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, secret: "", program: "", header: &blank, status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, header: &garbage, status: 400, answer: "bad_signature", rows: nothing},
		}},
		{"another program's secret does not sign for this one", []stripeStep{
			{event: sale, secret: "other", status: 400, answer: "bad_signature", rows: nothing},
		}},
		{"tampered payload stores nothing", []stripeStep{
			{event: sale, tamper: func(p string) string { return strings.Replace(p, `"amount_paid":5000`, `"amount_paid":500000`, 1) },
				status: 400, answer: "bad_signature", rows: nothing},
			{event: refundOf(invoiceCharge, 5000), tamper: func(p string) string { return strings.Replace(p, "cus_A", "cus_B", 1) },
				status: 400, answer: "bad_signature", rows: nothing},
		}},
		{"signature older than five minutes is refused, a recent one accepted", []stripeStep{
			{event: sale, signAgo: 6 * time.Minute, status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, signAgo: 4 * time.Minute, answer: "created", rows: saleStored},
		}},
		{"unknown program", []stripeStep{
			{event: sale, program: "nosuchprogram", status: 404, answer: "program_not_found", rows: nothing},
		}},
		{"unattributed customers store nothing", []stripeStep{
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_2", "cus_unknown", 5000, "usd")), answer: "ignored", rows: nothing},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_3", "cus_plain", 5000, "usd")), answer: "ignored", rows: nothing},
			{event: stripeTestEvent("charge.succeeded", "", stripeTestCharge("ch_9", "", "", 5000, 0)), answer: "ignored", rows: nothing},
			{event: refundOf(stripeTestCharge("ch_9", "", "", 5000, 0), 5000), answer: "ignored", rows: nothing},
		}},
		{"customer.created with partnero_partner attributes the customer", []stripeStep{
			{event: stripeTestEvent("customer.created", "", stripeTestCustomer("cus_M", map[string]string{"partnero_partner": "bob"})),
				answer: "created", rows: map[string]int{`SELECT count(*) FROM customers c JOIN partners p ON p.id = c.partner_id
					WHERE c.program_id = ?1 AND c.key = 'cus_M' AND p.key = 'bob' AND c.email = 'casey@example.com'`: 1}},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_M", "cus_M", 10000, "usd")), answer: "created",
				rows: map[string]int{qSale("in_M", 10000, "ok", 0): 1, qReward("in_M", "bob", 2000, 0, "ok"): 1}},
		}},
		{"a sale before the event that attributes its customer is recorded when it arrives", []stripeStep{
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_E", "cus_E", 10000, "usd")), answer: "ignored",
				rows: map[string]int{qTransactions: 0, `SELECT count(*) FROM pending_sales WHERE key = 'in_E'`: 1}},
			{event: refundOf(stripeTestCharge("ch_E", "cus_E", "in_E", 10000, 0), 2500), answer: "pending"},
			{event: stripeTestEvent("customer.created", "", stripeTestCustomer("cus_E", map[string]string{"partnero_partner": "bob"})),
				answer: "created", rows: map[string]int{qSale("in_E", 10000, "ok", 2500): 1, qReward("in_E", "bob", 2000, 500, "ok"): 1,
					`SELECT count(*) FROM pending_sales`: 0, qPending: 0}},
			// Stripe retries the sale: it is stored once.
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_E", "cus_E", 10000, "usd")), answer: "duplicate",
				rows: map[string]int{`SELECT count(*) FROM transactions WHERE key = 'in_E'`: 1}},
		}},
		{"a one-off charge refunded before its customer is attributed arrives refunded", func() []stripeStep {
			ch := stripeTestCharge("ch_X", "cus_X", "", 5000, 0)
			ch["payment_intent"] = "pi_X"
			refunded := stripeTestCharge("ch_X", "cus_X", "", 5000, 5000)
			refunded["payment_intent"] = "pi_X"
			return []stripeStep{
				{event: stripeTestEvent("charge.succeeded", "", ch), answer: "ignored"},
				{event: stripeTestEvent("charge.refunded", "", refunded), answer: "pending"},
				{event: stripeTestEvent("customer.created", "", stripeTestCustomer("cus_X", map[string]string{"partnero_partner": "bob"})),
					answer: "created", rows: map[string]int{qSale("ch_X", 5000, "refunded", 5000): 1,
						qReward("ch_X", "bob", 1000, 1000, "reversed"): 1, qPending: 0}},
			}
		}()},
		{"basil: kept charge and invoice of one payment are counted once", func() []stripeStep {
			ch := stripeTestCharge("ch_Z", "cus_Z", "", 5000, 0)
			delete(ch, "invoice")
			ch["payment_intent"] = "pi_Z"
			return []stripeStep{
				{event: stripeTestEvent("charge.succeeded", "2026-03-25.dahlia", ch), answer: "ignored"},
				{event: stripeTestEvent("invoice_payment.paid", "2026-03-25.dahlia", map[string]any{
					"id": "inpay_Z", "object": "invoice_payment", "invoice": "in_Z", "amount_paid": 5000, "currency": "usd", "status": "paid",
					"payment": map[string]any{"type": "payment_intent", "payment_intent": "pi_Z"},
				}), answer: "linked"},
				{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_Z", "cus_Z", 5000, "usd")), answer: "ignored"},
				{event: stripeTestEvent("customer.created", "", stripeTestCustomer("cus_Z", map[string]string{"partnero_partner": "bob"})),
					answer: "created", rows: map[string]int{qTransactions: 1, qSale("in_Z", 5000, "ok", 0): 1, `SELECT count(*) FROM pending_sales`: 0}},
			}
		}()},
		{"a customer event without a partner leaves a kept sale waiting", []stripeStep{
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_F", "cus_F", 5000, "usd")), answer: "ignored"},
			{event: stripeTestEvent("customer.created", "", stripeTestCustomer("cus_F", nil)), answer: "ignored",
				rows: map[string]int{`SELECT count(*) FROM pending_sales WHERE key = 'in_F'`: 1}},
		}},
		{"an existing customer is never re-attributed", []stripeStep{
			{event: stripeTestEvent("customer.updated", "", stripeTestCustomer("cus_A", map[string]string{"partnero_partner": "bob"})),
				answer: "duplicate"},
			{event: stripeTestEvent("customer.updated", "", stripeTestCustomer("cus_plain", map[string]string{"partnero_partner": "bob"})),
				answer: "duplicate", rows: map[string]int{
					`SELECT count(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.key = 'cus_A' AND p.key = 'alice'`: 1,
					`SELECT count(*) FROM customers WHERE key = 'cus_plain' AND partner_id IS NULL`:                                     1}},
		}},
		{"customer events without a known partner store nothing", []stripeStep{
			{event: stripeTestEvent("customer.created", "", stripeTestCustomer("cus_N", map[string]string{"partnero_partner": "nobody"})),
				answer: "ignored", rows: nothing},
			{event: stripeTestEvent("customer.created", "", stripeTestCustomer("cus_N", nil)), answer: "ignored", rows: nothing},
		}},
		{"events in other API versions are accepted", []stripeStep{
			{event: stripeTestEvent("invoice.paid", "2017-08-15", stripeTestInvoice("in_old", "cus_A", 1000, "usd")), answer: "created"},
			{event: stripeTestEvent("invoice.paid", "2025-03-31.basil", func() map[string]any {
				inv := stripeTestInvoice("in_basil", "cus_A", 2000, "usd")
				inv["lines"] = map[string]any{"object": "list", "data": []any{map[string]any{"id": "il_2", "object": "line_item",
					"pricing": map[string]any{"type": "price_details", "price_details": map[string]any{"price": "price_1", "product": "prod_new"}}}}}
				return inv
			}()), answer: "created"},
			{event: stripeTestEvent("invoice.paid", "2099-01-01.future", stripeTestInvoice("in_future", "cus_A", 3000, "usd")), answer: "created",
				rows: map[string]int{qTransactions: 3, qRewards: 3,
					`SELECT count(*) FROM transactions WHERE key = 'in_basil' AND product_id = 'prod_new'`: 1}},
		}},
		{"other events are acknowledged and ignored", []stripeStep{
			{event: stripeTestEvent("payment_intent.created", "", map[string]any{"id": "pi_1", "object": "payment_intent"}),
				answer: "ignored", rows: nothing},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_trial", "cus_A", 0, "usd")), answer: "ignored", rows: nothing},
		}},
		{"malformed signed payloads are 4xx and store nothing", []stripeStep{
			{event: `{"id": "evt_x", "object": "event", "type": "invoice.paid", "data": {`, status: 400, answer: "bad_request", rows: nothing},
			{event: `{"id": "evt_x", "object": "invoice"}`, status: 400, answer: "bad_request", rows: nothing},
			{event: `{"id": "evt_x", "object": "event", "type": "invoice.paid"}`, status: 400, answer: "bad_request", rows: nothing},
			{event: stripeTestEvent("invoice.paid", "", map[string]any{"id": "in_x", "customer": "cus_A", "amount_paid": "50", "currency": "usd"}),
				status: 400, answer: "bad_request", rows: nothing},
			{event: stripeTestEvent("invoice.paid", "", map[string]any{"id": "in_x", "customer": "cus_A", "amount_paid": 50.5, "currency": "usd"}),
				status: 400, answer: "bad_request", rows: nothing},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_x", "cus_A", 5000, "xx1")),
				status: 422, answer: "invalid_field", rows: nothing},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_x", "cus_A", -5, "usd")),
				status: 422, answer: "invalid_field", rows: nothing},
			{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("", "cus_A", 5000, "usd")),
				status: 422, answer: "invalid_field", rows: nothing},
			{event: stripeTestEvent("customer.created", "", map[string]any{"id": "cus_Q", "metadata": map[string]any{"partnero_partner": 7}}),
				status: 400, answer: "bad_request", rows: nothing},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newStripeFixture(t)
			for i, st := range tc.steps {
				if st.secret == "other" {
					st.secret = f.other.WebhookSecret
				}
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

// The merchant pastes the signing secret Stripe shows for the endpoint (or
// that `stripe listen` prints): from then on only that secret verifies, and
// no read of the program ever shows it.
func TestStripeWebhookSecretFromStripe(t *testing.T) {
	f := newStripeFixture(t)
	const pasted = "whsec_pasted_from_the_stripe_dashboard"
	r := f.ts.admin("PATCH", "/admin/api/programs/"+f.shop.ID, `{"webhook_secret":"`+pasted+`"}`)
	if r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	for _, read := range []*response{
		r,
		f.ts.admin("GET", "/admin/api/programs/"+f.shop.ID, ""),
		f.ts.admin("GET", "/admin/api/programs", ""),
	} {
		if strings.Contains(read.Body, pasted) || strings.Contains(read.Body, f.shop.WebhookSecret) ||
			strings.Contains(read.Body, `"webhook_secret"`) {
			t.Errorf("a program read shows the webhook secret: %s", read.Body)
		}
		if !strings.Contains(read.Body, `/webhooks/stripe/`+f.shop.ID+`"`) {
			t.Errorf("a program read lacks the webhook URL: %s", read.Body)
		}
	}

	sale := stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_1", "cus_A", 5000, "usd"))
	steps := []stripeStep{
		{event: sale, secret: f.shop.WebhookSecret, status: 400, answer: "bad_signature"},
		{event: sale, secret: pasted, status: 200, answer: "created"},
	}
	for i, st := range steps {
		r := f.deliver(t, st)
		if r.Status != st.status || !strings.Contains(r.Body, `"`+st.answer+`"`) {
			t.Fatalf("step %d: %d %s, want %d %s", i, r.Status, r.Body, st.status, st.answer)
		}
	}
	f.assertRows(t, 1, map[string]int{qTransactions: 1, qSale("in_1", 5000, "ok", 0): 1})

	if r := f.ts.admin("PATCH", "/admin/api/programs/"+f.shop.ID, `{"webhook_secret":""}`); r.Status != 422 {
		t.Errorf("an empty webhook secret: %d %s, want 422", r.Status, r.Body)
	}
}

// TestStripeKeptSaleRecordedByAPICustomer: a sale kept for an unknown
// customer is recorded when the merchant creates that customer, attributed,
// through the REST API.
func TestStripeKeptSaleRecordedByAPICustomer(t *testing.T) {
	f := newStripeFixture(t)
	if r := f.deliver(t, stripeStep{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice("in_G", "cus_G", 5000, "usd"))}); r.Status != 200 || !strings.Contains(r.Body, `"ignored"`) {
		t.Fatalf("sale of an unknown customer: %d %s", r.Status, r.Body)
	}
	if r := f.ts.api(f.shop, "POST", "/v1/customers", `{"key":"cus_G","partner":{"key":"alice"}}`); r.Status != 201 {
		t.Fatalf("create customer: %d %s", r.Status, r.Body)
	}
	f.assertRows(t, 2, map[string]int{qSale("in_G", 5000, "ok", 0): 1, qReward("in_G", "alice", 1000, 0, "ok"): 1, `SELECT count(*) FROM pending_sales`: 0})
}

// TestStripeKeptSaleRecordedByInlineCustomer: a transaction that creates
// its customer (REST with create_customer, or the browser) records the
// gateway sales kept for that customer first, then itself.
func TestStripeKeptSaleRecordedByInlineCustomer(t *testing.T) {
	f := newStripeFixture(t)
	for _, key := range []string{"in_Y1", "in_Y2"} {
		f.deliver(t, stripeStep{event: stripeTestEvent("invoice.paid", "", stripeTestInvoice(key, "cus_Y", 5000, "usd"))})
	}
	// The second kept sale reported again by the merchant's server: a replay.
	r := f.ts.api(f.shop, "POST", "/v1/transactions", `{"key":"in_Y2","amount":"50.00","product_id":"prod_pro","customer":{"key":"cus_Y","partner":{"key":"alice"}},"options":{"create_customer":true}}`)
	if r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("REST report of a kept sale: %d %s", r.Status, r.Body)
	}
	r = f.ts.api(f.shop, "POST", "/v1/transactions", `{"key":"tx_y3","amount":"10","customer":{"key":"cus_Y"}}`)
	if r.Status != 201 {
		t.Fatalf("later sale: %d %s", r.Status, r.Body)
	}
	f.assertRows(t, 3, map[string]int{
		qSale("in_Y1", 5000, "ok", 0): 1, qSale("in_Y2", 5000, "ok", 0): 1,
		`SELECT count(*) FROM transactions WHERE program_id = ?1`: 3, `SELECT count(*) FROM pending_sales`: 0,
	})
}
