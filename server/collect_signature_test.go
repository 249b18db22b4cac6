package server

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// signedSale is the data of a browser sale. Empty product fields and an
// empty createdAt are left out of the body; sig "" sends no signature.
func signedSale(key, amount, customer, productID, productType, createdAt, sig string) string {
	m := map[string]any{"key": key, "amount": amount, "customer": map[string]string{"key": customer},
		"options": map[string]bool{"create_customer": true}}
	if productID != "" {
		m["product_id"] = productID
	}
	if productType != "" {
		m["product_type"] = productType
	}
	if createdAt != "" {
		m["created_at"] = createdAt
	}
	if sig != "" {
		m["signature"] = sig
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// rewardRows counts key's rewards of amountMinor.
func rewardRows(key string, amountMinor, want int) storedRows {
	return storedRows{"SELECT COUNT(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE t.key = '" +
		key + "' AND r.amount_minor = " + strconv.Itoa(amountMinor), want}
}

// TestCollectSignatureCoversTheReward: the signature covers every field that
// decides the reward (key|amount|CURRENCY|customer_key|product_id|
// product_type), a browser never dates a sale, and a signed sale is
// confirmed, not refused, by the merchant's own REST report of it.
func TestCollectSignatureCoversTheReward(t *testing.T) {
	ts := newTestServer(t, noLimits)
	const commission = `"commission":{"type":"percent","value":20,"rules":[` +
		`{"product_id":"vip","type":"fixed","value":"500.00"},{"product_type":"monthly","type":"percent","value":10}]}`
	usd := ts.createProgram(`{"name":"Signed","js_tracking":true,"js_require_signature":true,"allowed_origins":["https://shop.example"],` + commission + `}`)
	jpy := ts.createProgram(`{"name":"Yen","currency":"JPY","js_tracking":true,"js_require_signature":true,"allowed_origins":["https://shop.example"]}`)
	for _, p := range []testProgram{usd, jpy} {
		if r := ts.api(p, "POST", "/v1/partners", `{"key":"alice"}`); r.Status != 201 {
			t.Fatal(r.Body)
		}
	}
	f := &collectFixture{ts: ts}
	sale := func(p testProgram, data string) string {
		return collectBody(p.ID, "transactions.create", "alice", data)
	}
	s := usd.SigningSecret
	nothing := func(key, customer string) []storedRows {
		return []storedRows{txRows(key, 0), {"SELECT COUNT(*) FROM customers WHERE key = '" + customer + "'", 0}}
	}
	verified := func(key, productID, productType string) storedRows {
		return storedRows{"SELECT COUNT(*) FROM transactions WHERE key = '" + key + "' AND verified = TRUE AND source = 'js'" +
			" AND product_id = '" + productID + "' AND product_type = '" + productType + "'", 1}
	}
	f.run(t, []collectScenario{
		// The attack: a signature for o3|25.00|USD|c3 sent with the
		// 500.00 product (and backdated).
		{name: "old payload, sent with a product that pays more",
			body:   sale(usd, signedSale("o3", "25.00", "c3", "vip", "", "", sign(s, "o3|25.00|USD|c3"))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true, stored: nothing("o3", "c3")},
		{name: "the attack as sent: old payload, product and created_at",
			body:   sale(usd, signedSale("o3", "25.00", "c3", "vip", "", "2001-01-01", sign(s, "o3|25.00|USD|c3"))),
			status: 422, answer: "invalid_field", field: "data.created_at", cors: true, stored: nothing("o3", "c3")},
		// Fields holding the separator could pass one field's text for
		// the next one's: "a|b" + "x" and "a" + "b|x" sign alike.
		{name: "a signed field holding '|'",
			body:   sale(usd, signedSale("o4", "25.00", "c4", "a|b", "x", "", sign(s, "o4|25.00|USD|c4|a|b|x"))),
			status: 422, answer: "invalid_field", field: "data.product_id", cors: true, stored: nothing("o4", "c4")},
		{name: "a customer key holding '|'",
			body:   sale(usd, signedSale("o4", "25.00", "c4|a", "b", "", "", sign(s, "o4|25.00|USD|c4|a|b|"))),
			status: 422, answer: "invalid_field", field: "data.customer.key", cors: true, stored: nothing("o4", "c4|a")},
		{name: "a signature of the sale without product, sent with one",
			body:   sale(usd, signedSale("o3", "25.00", "c3", "vip", "", "", sign(s, "o3|25.00|USD|c3||"))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true, stored: nothing("o3", "c3")},
		{name: "a signature of the product, sent as a product type",
			body:   sale(usd, signedSale("o3", "25.00", "c3", "", "vip", "", sign(s, "o3|25.00|USD|c3|vip|"))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true, stored: nothing("o3", "c3")},
		{name: "the old four-field payload without product",
			body:   sale(usd, signedSale("o3", "25.00", "c3", "", "", "", sign(s, "o3|25.00|USD|c3"))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true, stored: nothing("o3", "c3")},

		// A browser never dates a sale, signed or not, whatever the type.
		{name: "created_at with a good signature",
			body:   sale(usd, signedSale("o8", "25.00", "c8", "", "", "2026-11-20T10:00:00Z", sign(s, "o8|25.00|USD|c8||"))),
			status: 422, answer: "invalid_field", field: "data.created_at", cors: true, stored: nothing("o8", "c8")},
		{name: "created_at as a number",
			body:   sale(usd, `{"key":"o8","amount":"25.00","created_at":978307200,"customer":{"key":"c8"},"options":{"create_customer":true},"signature":"`+sign(s, "o8|25.00|USD|c8||")+`"}`),
			status: 422, answer: "invalid_field", field: "data.created_at", cors: true, stored: nothing("o8", "c8")},
		{name: "created_at empty",
			body:   sale(usd, `{"key":"o8","amount":"25.00","created_at":"","customer":{"key":"c8"},"options":{"create_customer":true},"signature":"`+sign(s, "o8|25.00|USD|c8||")+`"}`),
			status: 422, answer: "invalid_field", field: "data.created_at", cors: true, stored: nothing("o8", "c8")},
		{name: "created_at null dates nothing",
			body:   sale(usd, `{"key":"o8","amount":"25.00","created_at":null,"customer":{"key":"c8"},"options":{"create_customer":true},"signature":"`+sign(s, "o8|25.00|USD|c8||")+`"}`),
			status: 201, answer: "created", cors: true, stored: []storedRows{verified("o8", "", ""), rewardRows("o8", 500, 1)}},

		// Correctly signed sales get the reward their products choose.
		{name: "signed with product_id and product_type",
			body:   sale(usd, signedSale("o4", "25.00", "c4", "pro", "monthly", "", sign(s, "o4|25.00|USD|c4|pro|monthly"))),
			status: 201, answer: "created", cors: true, stored: []storedRows{verified("o4", "pro", "monthly"), rewardRows("o4", 250, 1)}},
		{name: "signed for the 500.00 product",
			body:   sale(usd, signedSale("o5", "2500", "c5", "vip", "", "", sign(s, "o5|2500.00|USD|c5|vip|"))),
			status: 201, answer: "created", cors: true, stored: []storedRows{verified("o5", "vip", ""), rewardRows("o5", 50000, 1)}},
		{name: "JPY: amount without decimals",
			body:   sale(jpy, signedSale("oj", "1000", "cj", "", "yearly", "", sign(jpy.SigningSecret, "oj|1000|JPY|cj||yearly"))),
			status: 201, answer: "created", cors: true, stored: []storedRows{verified("oj", "", "yearly")}},
		{name: "the same signed sale again",
			body:   sale(usd, signedSale("o4", "25.00", "c4", "pro", "monthly", "", sign(s, "o4|25.00|USD|c4|pro|monthly"))),
			status: 200, answer: "duplicate", cors: true, stored: []storedRows{txRows("o4", 1), rewardRows("o4", 250, 1)}},
	})

	rest := func(body string) *response { return ts.api(usd, "POST", "/v1/transactions", body) }

	// The attack stored nothing, so the merchant's real sale is recorded.
	r := rest(`{"key":"o3","amount":"25.00","customer":{"key":"c3","partner":{"key":"alice"}},"options":{"create_customer":true}}`)
	if r.Status != 201 || !strings.Contains(r.Body, `"rewards":[{"amount":5.00`) {
		t.Errorf("merchant's sale after the refused forgery: %d %s", r.Status, r.Body)
	}
	// The merchant's server reports the signed sale: the same content is
	// a replay of the verified row, not a conflict.
	r = rest(`{"key":"o4","amount":"25.00","product_id":"pro","product_type":"monthly","customer":{"key":"c4"}}`)
	if r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "true" ||
		!strings.Contains(r.Body, `"verified":true`) || !strings.Contains(r.Body, `"rewards":[{"amount":2.50`) {
		t.Errorf("merchant's report of the signed sale: %d %s", r.Status, r.Body)
	}
	// Other content conflicts, and the signed row stands.
	for _, body := range []string{
		`{"key":"o4","amount":"25.00","product_id":"vip","product_type":"monthly","customer":{"key":"c4"}}`,
		`{"key":"o4","amount":"25.00","customer":{"key":"c4"}}`,
		`{"key":"o4","amount":"30.00","product_id":"pro","product_type":"monthly","customer":{"key":"c4"}}`,
	} {
		if r := rest(body); r.Status != 409 {
			t.Errorf("merchant's report with other content %s: %d %s", body, r.Status, r.Body)
		}
	}
	for _, q := range []storedRows{txRows("o4", 1), verified("o4", "pro", "monthly"), rewardRows("o4", 250, 1), txRows("o3", 1)} {
		if n := ts.count(q.query); n != q.want {
			t.Errorf("%s = %d, want %d", q.query, n, q.want)
		}
	}
}

// TestCollectBrowserNeverOverwritesVerified: where signatures are optional,
// an unsigned (or wrongly signed) browser report of a key that a signed one
// stored never changes it, and a signed report replaces an unsigned one.
func TestCollectBrowserNeverOverwritesVerified(t *testing.T) {
	ts := newTestServer(t, noLimits)
	p := ts.createProgram(`{"name":"Optional","js_tracking":true,"allowed_origins":["https://shop.example"],` +
		`"commission":{"type":"percent","value":20,"rules":[{"product_id":"vip","type":"fixed","value":"500.00"}]}}`)
	if r := ts.api(p, "POST", "/v1/partners", `{"key":"alice"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	f := &collectFixture{ts: ts}
	sale := func(data string) string { return collectBody(p.ID, "transactions.create", "alice", data) }
	s := p.SigningSecret
	unchanged := []storedRows{
		{"SELECT COUNT(*) FROM transactions WHERE key = 'o6' AND verified = TRUE AND amount_minor = 2500 AND product_id = ''", 1},
		txRows("o6", 1), rewardRows("o6", 500, 1),
	}
	f.run(t, []collectScenario{
		{name: "signed sale", body: sale(signedSale("o6", "25.00", "c6", "", "", "", sign(s, "o6|25.00|USD|c6||"))),
			status: 201, answer: "created", cors: true, stored: unchanged},
		{name: "unsigned report with another product", body: sale(signedSale("o6", "25.00", "c6", "vip", "", "", "")),
			status: 200, answer: "duplicate", cors: true, stored: unchanged},
		{name: "unsigned report with another amount", body: sale(signedSale("o6", "2500.00", "c6", "vip", "", "", "")),
			status: 409, answer: "key_conflict", field: "data.key", cors: true, stored: unchanged},
		{name: "wrongly signed report with another amount", body: sale(signedSale("o6", "2500.00", "c6", "vip", "", "", sign("guess", "o6|2500.00|USD|c6|vip|"))),
			status: 409, answer: "key_conflict", field: "data.key", cors: true, stored: unchanged},

		// The other way round: an unsigned report is replaced by the
		// signed sale of that key.
		{name: "unsigned report first", body: sale(signedSale("o7", "25.00", "c7", "vip", "", "", "")),
			status: 201, answer: "created", cors: true, stored: []storedRows{rewardRows("o7", 50000, 1)}},
		{name: "signed sale replaces it", body: sale(signedSale("o7", "25.00", "c7", "", "", "", sign(s, "o7|25.00|USD|c7||"))),
			status: 201, answer: "created", cors: true, stored: []storedRows{txRows("o7", 1), rewardRows("o7", 500, 1),
				{"SELECT COUNT(*) FROM transactions WHERE key = 'o7' AND verified = TRUE AND product_id = ''", 1}}},
	})
	if r := ts.api(p, "POST", "/v1/transactions", `{"key":"o6","amount":"25.00","customer":{"key":"c6"}}`); r.Status != 200 ||
		r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("merchant's report of the signed sale: %d %s", r.Status, r.Body)
	}
}
