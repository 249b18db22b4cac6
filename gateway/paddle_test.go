package gateway

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/potrack/potrack/rules"
)

func paddleBody(typ string, data map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"event_id": "evt_1", "event_type": typ,
		"occurred_at": "2026-04-12T10:18:49.621022Z", "notification_id": "ntf_1", "data": data})
	if err != nil {
		panic(err)
	}
	return b
}

// TestParsePaddle: what each Paddle notification means.
func TestParsePaddle(t *testing.T) {
	at := time.Date(2026, 4, 12, 10, 18, 49, 621022000, time.UTC)
	txn := func(kv ...any) map[string]any {
		m := map[string]any{"id": "txn_1", "status": "completed", "customer_id": "ctm_1", "currency_code": "USD",
			"custom_data": map[string]any{"partnero_partner": "bob"}, "discount_id": nil,
			"items":   []any{map[string]any{"price": map[string]any{"id": "pri_1", "product_id": "pro_1"}, "quantity": 1}},
			"details": map[string]any{"totals": map[string]any{"subtotal": "10000", "discount": "1000", "tax": "1800", "total": "10800", "credit": "800", "grand_total": "10000", "currency_code": "USD"}}}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	adj := func(kv ...any) map[string]any {
		m := map[string]any{"id": "adj_1", "action": "refund", "type": "partial", "status": "approved", "transaction_id": "txn_1",
			"customer_id": "ctm_1", "currency_code": "USD", "totals": map[string]any{"subtotal": "5000", "tax": "900", "total": "5900", "currency_code": "USD"}}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	usd := func(minor int64) rules.Money { return rules.Money{Minor: minor, Currency: "USD"} }
	tests := []struct {
		name string
		typ  string
		data map[string]any
		want Event
	}{
		{"a completed transaction is a sale of grand_total, its custom_data's partner named", "transaction.completed", txn(),
			Event{Sales: []Sale{{Key: "txn_1", CustomerKey: "ctm_1", Amount: usd(10000), ProductID: "pro_1", PartnerKey: "bob"}}}},
		{"the discount id is the code (webhooks carry no discount object)", "transaction.completed", txn("discount_id", "dsc_1", "custom_data", nil),
			Event{Sales: []Sale{{Key: "txn_1", CustomerKey: "ctm_1", Amount: usd(10000), ProductID: "pro_1", DiscountCodes: []string{"dsc_1"}}}}},
		{"an included discount's code comes first", "transaction.completed",
			txn("discount_id", "dsc_1", "discount", map[string]any{"id": "dsc_1", "code": "PODCAST20"}),
			Event{Sales: []Sale{{Key: "txn_1", CustomerKey: "ctm_1", Amount: usd(10000), ProductID: "pro_1", PartnerKey: "bob",
				DiscountCodes: []string{"PODCAST20", "dsc_1"}}}}},
		{"custom_data that is not ours is no error", "transaction.completed", txn("custom_data", map[string]any{"partnero_partner": 7, "x": []any{1}}),
			Event{Sales: []Sale{{Key: "txn_1", CustomerKey: "ctm_1", Amount: usd(10000), ProductID: "pro_1"}}}},
		{"yen are whole", "transaction.completed", txn("currency_code", "JPY",
			"details", map[string]any{"totals": map[string]any{"grand_total": "1500", "currency_code": "JPY"}}),
			Event{Sales: []Sale{{Key: "txn_1", CustomerKey: "ctm_1", Amount: rules.Money{Minor: 1500, Currency: "JPY"}, ProductID: "pro_1", PartnerKey: "bob"}}}},
		{"nothing paid", "transaction.completed", txn("details", map[string]any{"totals": map[string]any{"grand_total": "0"}}),
			Event{Ignored: "Nothing was paid in this transaction."}},
		{"credit is nothing paid", "transaction.completed", txn("details", map[string]any{"totals": map[string]any{"grand_total": "-2500"}}),
			Event{Ignored: "Nothing was paid in this transaction."}},
		{"an approved partial refund", "adjustment.updated", adj(),
			Event{Refunds: []Refund{{SaleKey: "txn_1", CustomerKey: "ctm_1", Amount: usd(5900), ID: "adj_1"}}}},
		{"an approved full refund", "adjustment.created", adj("type", "full"),
			Event{Refunds: []Refund{{SaleKey: "txn_1", CustomerKey: "ctm_1", Amount: usd(5900), ID: "adj_1", Full: true}}}},
		{"a refund waiting for approval", "adjustment.created", adj("status", "pending_approval"),
			Event{Ignored: "The refund is pending_approval; potrack applies it once Paddle approves it (adjustment.updated)."}},
		{"a rejected refund", "adjustment.updated", adj("status", "rejected"),
			Event{Ignored: "The refund is rejected; potrack applies it once Paddle approves it (adjustment.updated)."}},
		{"a credit", "adjustment.created", adj("action", "credit"),
			Event{Ignored: "The adjustment is a credit, not a refund; potrack applies refunds only."}},
		{"a customer's custom_data names its partner", "customer.created",
			map[string]any{"id": "ctm_1", "name": nil, "email": "casey@example.com", "custom_data": map[string]any{"partnero_partner": "bob"}},
			Event{Attributions: []Attribution{{CustomerKey: "ctm_1", Email: "casey@example.com", PartnerKey: "bob", Source: "custom_data.partnero_partner"}}}},
		{"a customer without it", "customer.updated", map[string]any{"id": "ctm_1", "custom_data": nil},
			Event{Ignored: "The customer has no custom_data.partnero_partner."}},
		{"other events", "subscription.created", map[string]any{"id": "sub_1"},
			Event{Ignored: "potrack does not use subscription.created events."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePaddle(paddleBody(tc.typ, tc.data))
			if err != nil {
				t.Fatalf("ParsePaddle: %v", err)
			}
			tc.want.ID, tc.want.Type, tc.want.At, tc.want.Gateway = "evt_1", tc.typ, at, "Paddle"
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParsePaddleRefuses(t *testing.T) {
	for _, tc := range []struct {
		body  string
		field string // "" means a BadEvent
	}{
		{`{"event_type":"transaction.completed","data":{"id":"txn_1","customer_id":"ctm_1","currency_code":"USD","details":{"totals":{"grand_total":"12.50"}}}}`, "data.details.totals.grand_total"},
		{`{"event_type":"transaction.completed","data":{"id":"txn_1","customer_id":"ctm_1","currency_code":"USD","details":{"totals":{"grand_total":1250}}}}`, ""},
		{`{"event_type":"transaction.completed","data":{"id":"txn_1","customer_id":"ctm_1","currency_code":"XX","details":{"totals":{"grand_total":"1250"}}}}`, "data.currency_code"},
		{`{"event_type":"transaction.completed","data":{"id":"","customer_id":"ctm_1","currency_code":"USD","details":{"totals":{"grand_total":"1250"}}}}`, "data.id"},
		{`{"event_type":"transaction.completed","data":{"id":"txn_1","customer_id":"ctm_1","currency_code":"USD","details":{"totals":{"grand_total":"99999999999999999999"}}}}`, "data.details.totals.grand_total"},
		{`{"event_type":"adjustment.created","data":{"id":"adj_1","action":"refund","status":"approved","transaction_id":"","totals":{"total":"5"}}}`, "data.transaction_id"},
		{`{"event_type":"adjustment.created","data":{"id":"adj_1","action":"refund","status":"approved","transaction_id":"txn_1","currency_code":"USD","totals":{"total":"x"}}}`, "data.totals.total"},
		{`{"event_type":"transaction.completed","data":[1]}`, ""},
		{`{"event_type":"transaction.completed"}`, ""},
		{`{"data":{}}`, ""},
		{`not json`, ""},
	} {
		_, err := ParsePaddle([]byte(tc.body))
		var (
			fe *rules.FieldError
			be *BadEvent
		)
		switch {
		case tc.field == "" && !errors.As(err, &be):
			t.Errorf("%s: %v, want a BadEvent", tc.body, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v, want a field error on %s", tc.body, err, tc.field)
		}
	}
}
