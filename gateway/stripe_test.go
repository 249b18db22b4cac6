package gateway

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/potrack/potrack/rules"
)

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestParseStripe: what each Stripe event means, in the one shape every
// gateway shares.
func TestParseStripe(t *testing.T) {
	usd := func(minor int64) rules.Money { return rules.Money{Minor: minor, Currency: "USD"} }
	invoice := map[string]any{"id": "in_1", "customer": "cus_1", "amount_paid": 5000, "currency": "usd",
		"lines": map[string]any{"data": []any{map[string]any{"price": map[string]any{"product": "prod_1"}}}}}
	with := func(m map[string]any, kv ...any) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	session := map[string]any{"id": "cs_1", "object": "checkout.session", "mode": "subscription", "payment_status": "paid",
		"client_reference_id": "bob", "customer": "cus_1", "amount_total": 2500, "currency": "usd",
		"customer_details": map[string]any{"email": "casey@example.com", "name": "Casey"}}
	guest := with(session, "mode", "payment", "customer", nil, "payment_intent", "pi_1", "subscription", nil)

	tests := []struct {
		name   string
		typ    string
		object any
		want   Event
	}{
		{"an invoice is a sale of its customer, with its first line's product", "invoice.paid", invoice,
			Event{Sales: []Sale{{Key: "in_1", CustomerKey: "cus_1", Amount: usd(5000), ProductID: "prod_1"}}}},
		{"an invoice's discount (before basil): the promotion code's id, then the coupon's", "invoice.paid",
			with(invoice, "discount", map[string]any{"id": "di_1", "coupon": map[string]any{"id": "PODCAST20", "percent_off": 20},
				"promotion_code": "promo_1"}),
			Event{Sales: []Sale{{Key: "in_1", CustomerKey: "cus_1", Amount: usd(5000), ProductID: "prod_1",
				DiscountCodes: []string{"promo_1", "PODCAST20"}}}}},
		{"an invoice's discounts as ids (basil and later) name no code", "invoice.paid",
			with(invoice, "discounts", []any{"di_1", "di_2"}),
			Event{Sales: []Sale{{Key: "in_1", CustomerKey: "cus_1", Amount: usd(5000), ProductID: "prod_1"}}}},
		{"an expanded discount with its source coupon (clover) and promotion code object", "invoice.paid",
			with(invoice, "discounts", []any{"di_0", map[string]any{"id": "di_1", "source": map[string]any{"type": "coupon", "coupon": "SPRING"},
				"promotion_code": map[string]any{"id": "promo_2", "code": "ALICE10"}}}),
			Event{Sales: []Sale{{Key: "in_1", CustomerKey: "cus_1", Amount: usd(5000), ProductID: "prod_1",
				DiscountCodes: []string{"ALICE10", "promo_2", "SPRING"}}}}},
		{"an invoice with nothing paid", "invoice.paid", with(invoice, "amount_paid", 0),
			Event{Ignored: "Nothing was paid on this invoice."}},
		{"an invoice without customer", "invoice.paid", with(invoice, "customer", nil),
			Event{Ignored: "The payment has no Stripe customer, so no partner can be credited."}},
		{"a one-off charge keeps its PaymentIntent", "charge.succeeded",
			map[string]any{"id": "ch_1", "customer": "cus_1", "payment_intent": "pi_1", "amount": 4000, "amount_captured": 3000,
				"currency": "usd", "captured": true},
			Event{Sales: []Sale{{Key: "ch_1", CustomerKey: "cus_1", Amount: usd(3000), Payment: "pi_1"}}}},
		{"a refund of a one-off charge: found through links, kept under the PaymentIntent", "charge.refunded",
			map[string]any{"id": "ch_1", "customer": "cus_1", "payment_intent": "pi_1", "amount": 4000, "amount_refunded": 1000, "currency": "usd"},
			Event{Refunds: []Refund{{SaleKey: "ch_1", Payments: []string{"ch_1", "pi_1"}, KeepUnder: "pi_1", CustomerKey: "cus_1", Amount: usd(1000)}}}},
		{"a refund of an invoice's charge (before basil)", "charge.refunded",
			map[string]any{"id": "ch_1", "customer": "cus_1", "invoice": "in_1", "amount": 4000, "amount_refunded": 4000, "currency": "usd"},
			Event{Refunds: []Refund{{SaleKey: "in_1", CustomerKey: "cus_1", Amount: usd(4000)}}}},
		{"an invoice payment links its charge and PaymentIntent", "invoice_payment.paid",
			map[string]any{"invoice": "in_1", "payment": map[string]any{"type": "payment_intent", "payment_intent": "pi_1"}},
			Event{Links: []Link{{SaleKey: "in_1", Payments: []string{"pi_1"}}}}},
		{"a customer with partnero_partner metadata", "customer.created",
			map[string]any{"id": "cus_1", "name": "Casey", "email": "not an email", "metadata": map[string]string{"partnero_partner": "bob"}},
			Event{Attributions: []Attribution{{CustomerKey: "cus_1", Name: "Casey", PartnerKey: "bob", Source: "metadata.partnero_partner"}}}},
		{"a session with a customer attributes it by client_reference_id", "checkout.session.completed", session,
			Event{Attributions: []Attribution{{CustomerKey: "cus_1", Name: "Casey", Email: "casey@example.com", PartnerKey: "bob",
				Source: "client_reference_id"}}}},
		{"metadata.partnero_partner wins over client_reference_id", "checkout.session.completed",
			with(session, "metadata", map[string]string{"partnero_partner": "alice"}),
			Event{Attributions: []Attribution{{CustomerKey: "cus_1", Name: "Casey", Email: "casey@example.com", PartnerKey: "alice",
				Source: "metadata.partnero_partner"}}}},
		{"an unpaid session still attributes its customer", "checkout.session.completed", with(session, "payment_status", "unpaid"),
			Event{Attributions: []Attribution{{CustomerKey: "cus_1", Name: "Casey", Email: "casey@example.com", PartnerKey: "bob",
				Source: "client_reference_id"}}}},
		{"a session's discounts: promotion code id, then coupon id", "checkout.session.completed",
			with(session, "client_reference_id", nil, "discounts", []any{map[string]any{"coupon": "SHARED", "promotion_code": "promo_9"}}),
			Event{Attributions: []Attribution{{CustomerKey: "cus_1", Name: "Casey", Email: "casey@example.com",
				DiscountCodes: []string{"promo_9", "SHARED"}, Source: "client_reference_id"}}}},
		{"a paid guest session is a sale keyed by its PaymentIntent", "checkout.session.completed", guest,
			Event{Sales: []Sale{{Key: "pi_1", CustomerKey: "cs_1", CustomerName: "Casey", CustomerEmail: "casey@example.com",
				Amount: usd(2500), Payment: "pi_1", PartnerKey: "bob", Guest: true, LinkPayment: true}}}},
		{"an unpaid guest session waits for async_payment_succeeded", "checkout.session.completed", with(guest, "payment_status", "unpaid"),
			Event{Ignored: "The payment is not complete yet (payment_status unpaid); checkout.session.async_payment_succeeded reports it when it is."}},
		{"a guest session with nothing to pay", "checkout.session.completed", with(guest, "payment_status", "no_payment_required"),
			Event{Ignored: "Nothing was paid in this session."}},
		{"async_payment_succeeded of a guest session is the sale", "checkout.session.async_payment_succeeded", guest,
			Event{Sales: []Sale{{Key: "pi_1", CustomerKey: "cs_1", CustomerName: "Casey", CustomerEmail: "casey@example.com",
				Amount: usd(2500), Payment: "pi_1", PartnerKey: "bob", Guest: true, LinkPayment: true}}}},
		{"a session naming no partner and no code", "checkout.session.completed", with(session, "client_reference_id", nil),
			Event{Ignored: "The session names no partner (client_reference_id or metadata.partnero_partner) and no discount code."}},
		{"a guest session with an invoice is left to invoice.paid", "checkout.session.completed", with(guest, "invoice", "in_9"),
			Event{Ignored: "The session's invoice in_9 has no Stripe customer, so no partner can be credited."}},
		{"a setup session without customer", "checkout.session.completed", with(guest, "mode", "setup"),
			Event{Ignored: "The session has no Stripe customer and is not a one-time payment."}},
		{"other events", "payment_intent.created", map[string]any{"id": "pi_1"},
			Event{Ignored: "potrack does not use payment_intent.created events."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStripe("evt_1", tc.typ, 0, mustJSON(tc.object))
			if err != nil {
				t.Fatalf("ParseStripe: %v", err)
			}
			tc.want.ID, tc.want.Type, tc.want.Gateway = "evt_1", tc.typ, "Stripe"
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestParseStripeRefuses: wrong values are field errors (422), wrong
// shapes BadEvent (400).
func TestParseStripeRefuses(t *testing.T) {
	tests := []struct {
		typ    string
		object string
		field  string // "" means a BadEvent
	}{
		{"invoice.paid", `{"id":"in_1","customer":"cus_1","amount_paid":"50","currency":"usd"}`, ""},
		{"invoice.paid", `{"id":"in_1","customer":"cus_1","amount_paid":50.5,"currency":"usd"}`, ""},
		{"invoice.paid", `{"id":"in_1","customer":"cus_1","amount_paid":-1,"currency":"usd"}`, "data.object.amount_paid"},
		{"invoice.paid", `{"id":"in_1","customer":"cus_1","amount_paid":100050,"currency":"isk"}`, "data.object.amount_paid"},
		{"invoice.paid", `{"id":"","customer":"cus_1","amount_paid":5,"currency":"usd"}`, "data.object.id"},
		{"invoice.paid", `{"id":"in_1","customer":"cus_1","amount_paid":5,"currency":"x1"}`, "data.object.currency"},
		{"invoice.paid", `{"id":"in_1","customer":7,"amount_paid":5,"currency":"usd"}`, ""},
		{"checkout.session.completed", `{"id":"cs_1","mode":"payment","payment_status":"paid","client_reference_id":"bob","payment_intent":"pi_1","amount_total":-5,"currency":"usd"}`, "data.object.amount_total"},
		{"checkout.session.completed", `{"id":"","client_reference_id":"bob"}`, "data.object.id"},
		{"checkout.session.completed", `{"id":"cs_1","metadata":{"partnero_partner":7}}`, ""},
		{"customer.created", `{"id":"cus_1","metadata":{"partnero_partner":7}}`, ""},
		{"invoice.paid", ``, ""},
		{"invoice.paid", `[1]`, ""},
	}
	for _, tc := range tests {
		_, err := ParseStripe("evt_1", tc.typ, 0, json.RawMessage(tc.object))
		var (
			fe *rules.FieldError
			be *BadEvent
		)
		switch {
		case tc.field == "" && !errors.As(err, &be):
			t.Errorf("%s %s: %v, want a BadEvent", tc.typ, tc.object, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s %s: %v, want a field error on %s", tc.typ, tc.object, err, tc.field)
		}
	}
}

func TestStripeMoney(t *testing.T) {
	for _, tc := range []struct {
		minor    int64
		currency string
		want     int64
		ok       bool
	}{
		{5000, "usd", 5000, true}, {100000, "isk", 1000, true}, {100050, "isk", 0, false},
		{5000, "mga", 500000, true}, {1000, "jpy", 1000, true}, {1234, "kwd", 1234, true}, {-1, "usd", 0, false},
	} {
		got, err := StripeMoney("f", tc.minor, tc.currency)
		if (err == nil) != tc.ok || (tc.ok && got.Minor != tc.want) {
			t.Errorf("StripeMoney(%d %s) = %v, %v; want %d ok=%v", tc.minor, tc.currency, got, err, tc.want, tc.ok)
		}
	}
}

func TestCodes(t *testing.T) {
	got := Codes(" PODCAST20 ", "", "podcast20", "promo_1", "bad\ncode", string(make([]byte, 200)))
	if want := []string{"PODCAST20", "promo_1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Codes = %q, want %q", got, want)
	}
}
