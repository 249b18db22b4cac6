package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/potrack/potrack/store"
)

// Coupon codes through the REST API, the admin API and /collect: codes
// are created, listed, read and deleted per program, unique whatever
// their case; a sale naming one attributes a new customer to the code's
// partner, after an explicit partner and before the cookie.

const (
	newSam       = `POST /v1/partners {"key":"sam","email":"sam@example.com","name":"Sam"}`
	samSummer    = `POST /v1/coupons {"code":"SUMMER","partner":{"key":"sam"}}`
	couponsA     = `SELECT count(*) FROM coupons WHERE program_id = ?1`
	couponsB     = `SELECT count(*) FROM coupons WHERE program_id = ?2`
	rewardsSam   = `SELECT count(*) FROM rewards r JOIN partners p ON p.id = r.partner_id WHERE p.key = 'sam'`
	rewardsPat   = `SELECT count(*) FROM rewards r JOIN partners p ON p.id = r.partner_id WHERE p.key = 'partner_123'`
	customerOf   = `SELECT count(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.program_id = ?1 AND c.key = 'c' AND p.key = `
	txWithCode   = `SELECT count(*) FROM transactions WHERE program_id = ?1 AND key = 't' AND attributed_by = `
	customerPlan = `SELECT count(*) FROM customers WHERE program_id = ?1 AND key = 'c' AND partner_id IS NULL AND attributed_by = ''`
)

func TestV1Coupons(t *testing.T) {
	scenarios := []v1Scenario{
		// Create.
		{name: "create", before: []string{newSam}, method: "POST", path: "/v1/coupons", body: `{"code":"Summer-24","partner":{"key":"sam"}}`, status: 201,
			want: []string{`"status":1`, `"data":{"code":"Summer-24","partner":{"id":`, `"key":"sam"`, `"created_at":"`},
			rows: map[string]int{couponsA: 1, `SELECT count(*) FROM coupons WHERE code = 'Summer-24' AND code_norm = 'summer-24'`: 1}},
		{name: "create by partner email", before: []string{newSam}, method: "POST", path: "/v1/coupons", body: `{"code":"pod_cast","partner":{"email":"sam@example.com"}}`,
			status: 201, want: []string{`"key":"sam"`}},
		{name: "create by partner id", method: "POST", path: "/v1/coupons", body: `{"code":"ID1","partner":{"id":1}}`,
			status: 201, want: []string{`"key":"partner_123"`}},
		{name: "numeric code", method: "POST", path: "/v1/coupons", body: `{"code":2024,"partner":{"key":"partner_123"}}`, status: 201, want: []string{`"code":"2024"`}},
		{name: "trimmed", method: "POST", path: "/v1/coupons", body: `{"code":"  PAT  ","partner":{"key":"partner_123"}}`, status: 201,
			want: []string{`"code":"PAT"`}, rows: map[string]int{`SELECT count(*) FROM coupons WHERE code = 'PAT'`: 1}},
		{name: "duplicate in another case", before: []string{newSam, samSummer}, method: "POST", path: "/v1/coupons",
			body: `{"code":"summer","partner":{"key":"partner_123"}}`, status: 409,
			want: []string{`"code":[`, `already taken`, `as SUMMER by partner sam`, `without case`}, rows: map[string]int{couponsA: 1}},
		{name: "duplicate for the same partner", before: []string{newSam, samSummer}, method: "POST", path: "/v1/coupons", body: `{"code":"SUMMER","partner":{"key":"sam"}}`,
			status: 409, rows: map[string]int{couponsA: 1}},
		{name: "same code in another program", method: "POST", path: "/v1/coupons", body: `{"code":"SUMMER","partner":{"key":"partner_b"}}`, auth: "B", status: 201,
			rows: map[string]int{couponsB: 1, couponsA: 0}},
		{name: "code with a space", method: "POST", path: "/v1/coupons", body: `{"code":"SUM MER","partner":{"key":"partner_123"}}`, status: 422,
			want: []string{`"code":[`, `1 to 64 characters`, `a letter (A-Z, any case), a digit, '-' or '_'`}, rows: map[string]int{couponsA: 0}},
		{name: "code with an accent", method: "POST", path: "/v1/coupons", body: `{"code":"ÉTÉ","partner":{"key":"partner_123"}}`, status: 422, want: []string{`"code":[`}},
		{name: "code too long", method: "POST", path: "/v1/coupons", body: `{"code":"` + strings.Repeat("a", 65) + `","partner":{"key":"partner_123"}}`, status: 422,
			want: []string{`"code":[`}, notWant: []string{strings.Repeat("a", 65)}},
		{name: "64 characters", method: "POST", path: "/v1/coupons", body: `{"code":"` + strings.Repeat("a", 64) + `","partner":{"key":"partner_123"}}`, status: 201},
		{name: "code missing", method: "POST", path: "/v1/coupons", body: `{"partner":{"key":"partner_123"}}`, status: 422, want: []string{`"code":[`}},
		{name: "partner missing", method: "POST", path: "/v1/coupons", body: `{"code":"X1"}`, status: 422, want: []string{`"partner":[`}},
		{name: "unknown partner", method: "POST", path: "/v1/coupons", body: `{"code":"X1","partner":{"key":"ghost"}}`, status: 422,
			want: []string{`"partner":[`}, rows: map[string]int{couponsA: 0}},
		{name: "other program's partner", method: "POST", path: "/v1/coupons", body: `{"code":"X1","partner":{"key":"partner_b"}}`, status: 422,
			rows: map[string]int{couponsA: 0, couponsB: 0}},
		{name: "bad body", method: "POST", path: "/v1/coupons", body: `{"code":`, status: 400},
		{name: "no key", method: "POST", path: "/v1/coupons", body: `{"code":"X1","partner":{"key":"partner_123"}}`, auth: "none", status: 401},

		// Read.
		{name: "get in any case", before: []string{newSam, samSummer}, method: "GET", path: "/v1/coupons/summer", status: 200,
			want: []string{`"data":{"code":"SUMMER"`, `"key":"sam"`, `"status":1`}},
		{name: "get unknown", method: "GET", path: "/v1/coupons/NOPE", status: 404, want: []string{`without case`}},
		{name: "get other program's", before: []string{newSam, samSummer}, method: "GET", path: "/v1/coupons/SUMMER", auth: "B", status: 404},
		{name: "get an impossible code", method: "GET", path: "/v1/coupons/a%20b", status: 422, want: []string{`"code":[`}},
		{name: "list", before: []string{newSam, samSummer, `POST /v1/coupons {"code":"alpha","partner":{"key":"partner_123"}}`}, method: "GET", path: "/v1/coupons",
			status: 200, want: []string{`"data":[{"code":"alpha"`, `{"code":"SUMMER"`, `"links":{"first":`, `"meta":{`, `"total":2`, `"per_page":15`, `"status":1`}},
		{name: "list by partner", before: []string{newSam, samSummer, `POST /v1/coupons {"code":"alpha","partner":{"key":"partner_123"}}`}, method: "GET",
			path: "/v1/coupons?partner=sam", status: 200, want: []string{`"total":1`, `"code":"SUMMER"`}, notWant: []string{`alpha`}},
		{name: "list by unknown partner", before: []string{newSam, samSummer}, method: "GET", path: "/v1/coupons?partner=ghost", status: 200,
			want: []string{`"data":[]`, `"total":0`}},
		{name: "list paged", before: []string{newSam, samSummer, `POST /v1/coupons {"code":"alpha","partner":{"key":"partner_123"}}`}, method: "GET",
			path: "/v1/coupons?limit=1&page=2", status: 200, want: []string{`"total":2`, `"last_page":2`, `"code":"SUMMER"`}, notWant: []string{`alpha`}},
		{name: "list limit too big", method: "GET", path: "/v1/coupons?limit=251", status: 422, want: []string{`"limit":[`}},
		{name: "list is the program's", before: []string{newSam, samSummer}, method: "GET", path: "/v1/coupons", auth: "B", status: 200,
			want: []string{`"total":0`}},
		{name: "partner lists its codes", before: []string{newSam, samSummer, `POST /v1/coupons {"code":"sam2","partner":{"key":"sam"}}`}, method: "GET",
			path: "/v1/partners/sam", status: 200, want: []string{`"coupons":["sam2","SUMMER"]`, `"totals":{`}},
		{name: "partner without codes", method: "GET", path: "/v1/partners/partner_123", status: 200, want: []string{`"coupons":[]`}},

		// Delete.
		{name: "delete", before: []string{newSam, samSummer}, method: "DELETE", path: "/v1/coupons/Summer", status: 200,
			want: []string{`"code":"SUMMER"`}, rows: map[string]int{couponsA: 0}},
		{name: "delete twice", before: []string{newSam, samSummer, "DELETE /v1/coupons/SUMMER "}, method: "DELETE", path: "/v1/coupons/SUMMER", status: 404},
		{name: "get after delete", before: []string{newSam, samSummer, "DELETE /v1/coupons/SUMMER "}, method: "GET", path: "/v1/coupons/SUMMER", status: 404},
		{name: "delete other program's", before: []string{newSam, samSummer}, method: "DELETE", path: "/v1/coupons/SUMMER", auth: "B", status: 404,
			rows: map[string]int{couponsA: 1}},
		{name: "a deleted code's sales keep it", before: []string{newSam, samSummer,
			`POST /v1/transactions {"key":"t","amount":"10","discount_code":"SUMMER","customer":{"key":"c"},"options":{"create_customer":true}}`},
			method: "DELETE", path: "/v1/coupons/SUMMER", status: 200,
			rows: map[string]int{txWithCode + `'code' AND discount_code = 'SUMMER'`: 1, customerOf + `'sam'`: 1, couponsA: 0}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			newV1Fixture(t).run(t, sc)
		})
	}
}

// TestV1CouponAttribution: a REST sale's discount_code, for new and
// existing customers, known and unknown codes, against an explicit
// partner; its replays.
func TestV1CouponAttribution(t *testing.T) {
	withCode := func(code, customer string) string {
		return `{"key":"t","amount":"10","discount_code":` + code + `,"customer":` + customer + `,"options":{"create_customer":true}}`
	}
	codeSale := "POST /v1/transactions " + withCode(`"summer"`, `{"key":"c"}`)
	scenarios := []v1Scenario{
		{name: "new customer takes the code's partner", before: []string{newSam, samSummer}, method: "POST", path: "/v1/transactions",
			body: withCode(`"summer"`, `{"key":"c"}`), status: 201,
			want: []string{`"discount_code":"summer"`, `"attributed_by":"code"`, `"rewards":[{"amount":2.00`, `"key":"sam"`},
			rows: map[string]int{txWithCode + `'code' AND discount_code = 'summer'`: 1, rewardsSam: 1,
				customerOf + `'sam' AND c.attributed_by = 'code' AND c.discount_code = 'SUMMER'`: 1}},
		{name: "code with spaces around", before: []string{newSam, samSummer}, method: "POST", path: "/v1/transactions",
			body: withCode(`"  Summer "`, `{"key":"c"}`), status: 201, want: []string{`"discount_code":"Summer"`, `"attributed_by":"code"`},
			rows: map[string]int{txWithCode + `'code' AND discount_code = 'Summer'`: 1}},
		{name: "explicit partner beats the code", before: []string{newSam, samSummer}, method: "POST", path: "/v1/transactions",
			body: withCode(`"SUMMER"`, `{"key":"c","partner":{"key":"partner_123"}}`), status: 201,
			want: []string{`"attributed_by":"partner"`, `"discount_code":"SUMMER"`, `"key":"partner_123"`},
			rows: map[string]int{txWithCode + `'partner' AND discount_code = 'SUMMER'`: 1, rewardsPat: 1, rewardsSam: 0,
				customerOf + `'partner_123' AND c.attributed_by = 'partner' AND c.discount_code = ''`: 1}},
		{name: "an unknown explicit partner is 422 even with a known code", before: []string{newSam, samSummer}, method: "POST", path: "/v1/transactions",
			body: withCode(`"SUMMER"`, `{"key":"c","partner":{"key":"ghost"}}`), status: 422, want: []string{`"customer.partner":[`},
			rows: map[string]int{txA: 0, `SELECT count(*) FROM customers WHERE program_id = ?1`: 0}},
		{name: "existing customer keeps its partner despite a code", before: []string{newSam, samSummer,
			`POST /v1/customers {"key":"c","partner":{"key":"partner_123"}}`},
			method: "POST", path: "/v1/transactions", body: withCode(`"SUMMER"`, `{"key":"c"}`), status: 201,
			want: []string{`"attributed_by":"partner"`, `"discount_code":"SUMMER"`, `"key":"partner_123"`},
			rows: map[string]int{txWithCode + `'partner' AND discount_code = 'SUMMER'`: 1, rewardsPat: 1, rewardsSam: 0, customerOf + `'partner_123'`: 1}},
		{name: "an unattributed customer stays so despite a code", before: []string{newSam, samSummer, `POST /v1/customers {"key":"c"}`},
			method: "POST", path: "/v1/transactions", body: withCode(`"SUMMER"`, `{"key":"c"}`), status: 201,
			want: []string{`"attributed_by":null`, `"rewards":[]`}, rows: map[string]int{rewardsSam: 0, customerPlan: 1}},
		{name: "a code customer's next sale without code", before: []string{newSam, samSummer, codeSale}, method: "POST", path: "/v1/transactions",
			body: `{"key":"t2","amount":"5","customer":{"key":"c"}}`, status: 201,
			want: []string{`"attributed_by":"code"`, `"discount_code":null`, `"key":"sam"`}, rows: map[string]int{rewardsSam: 2}},
		{name: "unknown code: stored as given, attributes nothing", method: "POST", path: "/v1/transactions",
			body: withCode(`"NOSUCH"`, `{"key":"c"}`), status: 201, want: []string{`"discount_code":"NOSUCH"`, `"attributed_by":null`, `"rewards":[]`},
			rows: map[string]int{txWithCode + `'' AND discount_code = 'NOSUCH'`: 1, customerPlan: 1}},
		{name: "unknown code with a partner", method: "POST", path: "/v1/transactions",
			body: withCode(`"NOSUCH"`, `{"key":"c","partner":{"key":"partner_123"}}`), status: 201, want: []string{`"attributed_by":"partner"`},
			rows: map[string]int{rewardsPat: 1}},
		{name: "another program's code is unknown here", before: []string{newSam, samSummer}, method: "POST", path: "/v1/transactions",
			body: withCode(`"partner_b_code"`, `{"key":"c"}`), status: 201, want: []string{`"attributed_by":null`}},
		{name: "code without create_customer: the customer must exist", before: []string{newSam, samSummer}, method: "POST", path: "/v1/transactions",
			body: `{"key":"t","amount":"10","discount_code":"SUMMER","customer":{"key":"c"}}`, status: 422, want: []string{`"customer.key":[`},
			rows: map[string]int{txA: 0}},
		{name: "code too long", method: "POST", path: "/v1/transactions", body: withCode(`"`+strings.Repeat("x", 65)+`"`, `{"key":"c"}`), status: 422,
			want: []string{`"discount_code":[`, `at most 64 characters`}, notWant: []string{strings.Repeat("x", 65)}, rows: map[string]int{txA: 0}},
		{name: "code of 64 characters", method: "POST", path: "/v1/transactions", body: withCode(`"`+strings.Repeat("x", 64)+`"`, `{"key":"c"}`), status: 201},
		{name: "code with a control character", method: "POST", path: "/v1/transactions", body: withCode(`"a\u0001b"`, `{"key":"c"}`), status: 422,
			want: []string{`"discount_code":[`}},
		{name: "code not text", method: "POST", path: "/v1/transactions", body: withCode(`{"x":1}`, `{"key":"c"}`), status: 400},
		{name: "blank code is no code", method: "POST", path: "/v1/transactions", body: withCode(`"  "`, `{"key":"c"}`), status: 201,
			want: []string{`"discount_code":null`}},
		{name: "code in a batch entry", before: []string{newSam, samSummer}, method: "POST", path: "/v1/transactions",
			body: `{"transactions":[` + withCode(`"SUMMER"`, `{"key":"c"}`) + `]}`, status: 201, want: []string{`"attributed_by":"code"`}},
		{name: "code too long in a batch entry", method: "POST", path: "/v1/transactions",
			body: `{"transactions":[` + withCode(`"`+strings.Repeat("x", 65)+`"`, `{"key":"c"}`) + `]}`, status: 422, want: []string{`"transactions[0].discount_code":[`}},

		// Idempotency: the code is part of a REST sale's content, compared as
		// codes are; attributed_by is the server's and never compared.
		{name: "replay with the code", before: []string{newSam, samSummer, codeSale}, method: "POST", path: "/v1/transactions",
			body: withCode(`"summer"`, `{"key":"c"}`), status: 200, header: map[string]string{"Idempotent-Replayed": "true"},
			want: []string{`"attributed_by":"code"`, `"discount_code":"summer"`}, rows: map[string]int{txA: 1, rewardsSam: 1}},
		{name: "replay with the code in another case", before: []string{newSam, samSummer, codeSale}, method: "POST", path: "/v1/transactions",
			body: withCode(`" SUMMER"`, `{"key":"c"}`), status: 200, header: map[string]string{"Idempotent-Replayed": "true"},
			want: []string{`"discount_code":"summer"`}, rows: map[string]int{txA: 1}},
		{name: "replay after the code was deleted", before: []string{newSam, samSummer, codeSale, "DELETE /v1/coupons/SUMMER "}, method: "POST",
			path: "/v1/transactions", body: withCode(`"summer"`, `{"key":"c"}`), status: 200, header: map[string]string{"Idempotent-Replayed": "true"},
			want: []string{`"attributed_by":"code"`}},
		{name: "same key with another code", before: []string{newSam, samSummer, codeSale}, method: "POST", path: "/v1/transactions",
			body: withCode(`"WINTER"`, `{"key":"c"}`), status: 409, rows: map[string]int{txA: 1}},
		{name: "same key without the code", before: []string{newSam, samSummer, codeSale}, method: "POST", path: "/v1/transactions",
			body: `{"key":"t","amount":"10","customer":{"key":"c"},"options":{"create_customer":true}}`, status: 409, rows: map[string]int{txA: 1}},
		{name: "get shows the code and attribution", before: []string{newSam, samSummer, codeSale}, method: "GET", path: "/v1/transactions/t", status: 200,
			want: []string{`"discount_code":"summer"`, `"attributed_by":"code"`}},
		{name: "list shows them", before: []string{newSam, samSummer, codeSale}, method: "GET", path: "/v1/transactions?partner=sam", status: 200,
			want: []string{`"total":1`, `"discount_code":"summer"`, `"attributed_by":"code"`}},
		{name: "customer shows its attribution", before: []string{newSam, samSummer, codeSale}, method: "GET", path: "/v1/customers/c", status: 200,
			want: []string{`"attributed_by":"code"`, `"discount_code":"SUMMER"`, `"key":"sam"`}},
		{name: "customer named with its partner", before: []string{`POST /v1/customers {"key":"c","partner":{"key":"partner_123"}}`}, method: "GET",
			path: "/v1/customers/c", status: 200, want: []string{`"attributed_by":"partner"`, `"discount_code":null`}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			newV1Fixture(t).run(t, sc)
		})
	}
}

// TestCollectCoupons: the browser's data.discount_code, against the cookie.
func TestCollectCoupons(t *testing.T) {
	f := newCollectFixture(t)
	shop := f.shop.ID
	if r := f.ts.api(f.shop, "POST", "/v1/coupons", `{"code":"BOB10","partner":{"key":"bob"}}`); r.Status != 201 {
		t.Fatalf("coupon: %d %s", r.Status, r.Body)
	}
	if r := f.ts.api(f.off, "POST", "/v1/coupons", `{"code":"CAROL","partner":{"key":"carol"}}`); r.Status != 201 {
		t.Fatalf("coupon: %d %s", r.Status, r.Body)
	}
	sale := func(key, customer, code string, create bool) string {
		return fmt.Sprintf(`{"key":%q,"amount":"10.00","discount_code":%q,"customer":{"key":%q},"options":{"create_customer":%v}}`, key, code, customer, create)
	}
	stored := func(key, customer, partner, by, code string) []storedRows {
		return []storedRows{
			{`SELECT count(*) FROM transactions WHERE key = '` + key + `' AND attributed_by = '` + by + `' AND discount_code = '` + code + `'`, 1},
			{`SELECT count(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.key = '` + customer + `' AND p.key = '` + partner + `'`, 1},
			{`SELECT count(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id JOIN partners p ON p.id = r.partner_id
				WHERE t.key = '` + key + `' AND p.key = '` + partner + `'`, 1},
		}
	}
	f.run(t, []collectScenario{
		{name: "the code beats the cookie", body: collectBody(shop, "transactions.create", "alice", sale("o1", "c1", "bob10", true)),
			status: 201, answer: "created", cors: true, fields: map[string]string{"attributed_by": "code"},
			stored: append(stored("o1", "c1", "bob", "code", "bob10"),
				storedRows{`SELECT count(*) FROM customers WHERE key = 'c1' AND attributed_by = 'code' AND discount_code = 'BOB10'`, 1})},
		{name: "the cookie without a code", body: collectBody(shop, "transactions.create", "alice", sale("o2", "c2", "", true)),
			status: 201, answer: "created", cors: true, fields: map[string]string{"attributed_by": "cookie"}, stored: stored("o2", "c2", "alice", "cookie", "")},
		{name: "an unknown code: the cookie", body: collectBody(shop, "transactions.create", "alice", sale("o3", "c3", "NOPE", true)),
			status: 201, answer: "created", cors: true, fields: map[string]string{"attributed_by": "cookie"}, stored: stored("o3", "c3", "alice", "cookie", "NOPE")},
		{name: "a code without a cookie", body: collectBody(shop, "transactions.create", "", sale("o4", "c4", "BOB10", true)),
			status: 201, answer: "created", cors: true, fields: map[string]string{"attributed_by": "code"}, stored: stored("o4", "c4", "bob", "code", "BOB10")},
		{name: "a code and an unknown cookie partner", body: collectBody(shop, "transactions.create", "ghost", sale("o5", "c5", "BOB10", true)),
			status: 201, answer: "created", cors: true, fields: map[string]string{"attributed_by": "code"}, stored: stored("o5", "c5", "bob", "code", "BOB10")},
		{name: "an unknown code and no cookie: ignored", body: collectBody(shop, "transactions.create", "", sale("o6", "c6", "NOPE", true)),
			status: 202, answer: "ignored", cors: true, fields: map[string]string{"attributed_by": "<nil>"},
			stored: []storedRows{txRows("o6", 0), {`SELECT count(*) FROM customers WHERE key = 'c6'`, 0}}},
		{name: "another program's code is unknown here", body: collectBody(shop, "transactions.create", "", sale("o7", "c7", "CAROL", true)),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{txRows("o7", 0)}},
		{name: "an existing customer keeps its partner", body: collectBody(shop, "transactions.create", "alice", sale("o8", "cust_alice", "BOB10", false)),
			status: 201, answer: "created", cors: true, fields: map[string]string{"attributed_by": "partner"}, stored: stored("o8", "cust_alice", "alice", "partner", "BOB10")},
		{name: "a cookie customer's next sale names a code", before: []string{collectBody(shop, "transactions.create", "alice", sale("o9", "c9", "", true))},
			body:   collectBody(shop, "transactions.create", "", sale("o10", "c9", "BOB10", false)),
			status: 201, answer: "created", cors: true, fields: map[string]string{"attributed_by": "cookie"}, stored: stored("o10", "c9", "alice", "cookie", "BOB10")},
		{name: "a code without create_customer for an unknown customer", body: collectBody(shop, "transactions.create", "", sale("o11", "c11", "BOB10", false)),
			status: 422, answer: "customer_not_found", field: "data.customer.key", stored: []storedRows{txRows("o11", 0)}},
		{name: "replay", before: []string{collectBody(shop, "transactions.create", "alice", sale("o12", "c12", "BOB10", true))},
			body:   collectBody(shop, "transactions.create", "alice", sale("o12", "c12", "bob10", true)),
			status: 200, answer: "duplicate", cors: true, fields: map[string]string{"attributed_by": "code"}, stored: []storedRows{txRows("o12", 1)}},
		{name: "a repeat with another code is a duplicate (the browser compares amount, currency and customer)",
			before: []string{collectBody(shop, "transactions.create", "alice", sale("o13", "c13", "BOB10", true))},
			body:   collectBody(shop, "transactions.create", "alice", sale("o13", "c13", "OTHER", true)),
			status: 200, answer: "duplicate", cors: true, stored: []storedRows{{`SELECT count(*) FROM transactions WHERE key = 'o13' AND discount_code = 'BOB10'`, 1}}},
		{name: "code too long", body: collectBody(shop, "transactions.create", "alice", sale("o14", "c14", strings.Repeat("b", 65), true)),
			status: 422, answer: "invalid_field", field: "data.discount_code", stored: []storedRows{txRows("o14", 0)}},
		{name: "signup ignores the code field", body: collectBody(shop, "customers.signup", "alice", `{"key":"c15","discount_code":"BOB10"}`),
			status: 201, answer: "created", cors: true,
			stored: []storedRows{{`SELECT count(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.key = 'c15' AND p.key = 'alice' AND c.attributed_by = 'cookie'`, 1}}},
	})
}

// TestAdminCoupons: the admin API's codes of a program.
func TestAdminCoupons(t *testing.T) {
	type sc struct {
		name         string
		before       []string // "METHOD path body" admin requests first ({id} replaced)
		method, path string
		body         string
		status       int
		want         []string
		notWant      []string
		coupons      int
	}
	const addPat = `POST /admin/api/programs/{id}/coupons {"code":"PAT10","partner":{"key":"pat"}}`
	scenarios := []sc{
		{name: "create", method: "POST", path: "/admin/api/programs/{id}/coupons", body: `{"code":"PAT10","partner":{"key":"pat"}}`, status: 201,
			want: []string{`"data":{"code":"PAT10","partner":{`, `"key":"pat"`}, notWant: []string{`"status"`}, coupons: 1},
		{name: "duplicate", before: []string{addPat}, method: "POST", path: "/admin/api/programs/{id}/coupons", body: `{"code":"pat10","partner":{"key":"pat"}}`,
			status: 409, want: []string{`"code":"code_taken"`, `"field":"code"`, `already taken`}, coupons: 1},
		{name: "invalid code", method: "POST", path: "/admin/api/programs/{id}/coupons", body: `{"code":"a/b","partner":{"key":"pat"}}`, status: 422,
			want: []string{`"field":"code"`, `letter`}},
		{name: "unknown partner", method: "POST", path: "/admin/api/programs/{id}/coupons", body: `{"code":"X","partner":{"key":"ghost"}}`, status: 422,
			want: []string{`"code":"partner_not_found"`, `"field":"partner"`}},
		{name: "unknown field", method: "POST", path: "/admin/api/programs/{id}/coupons", body: `{"code":"X","partner":{"key":"pat"},"percent":10}`, status: 400,
			want: []string{`"field":"percent"`}},
		{name: "unknown program", method: "POST", path: "/admin/api/programs/nope/coupons", body: `{"code":"X","partner":{"key":"pat"}}`, status: 404,
			want: []string{`program_not_found`}},
		{name: "without token", method: "GET", path: "/admin/api/programs/{id}/coupons", status: 401},
		{name: "list", before: []string{addPat}, method: "GET", path: "/admin/api/programs/{id}/coupons", status: 200,
			want: []string{`"data":[{"code":"PAT10"`, `"meta":{`, `"total":1`, `"links":{`}, coupons: 1},
		{name: "list by partner", before: []string{addPat}, method: "GET", path: "/admin/api/programs/{id}/coupons?partner=other", status: 200,
			want: []string{`"data":[]`}, coupons: 1},
		{name: "get", before: []string{addPat}, method: "GET", path: "/admin/api/programs/{id}/coupons/Pat10", status: 200, want: []string{`"code":"PAT10"`}, coupons: 1},
		{name: "get unknown", method: "GET", path: "/admin/api/programs/{id}/coupons/NOPE", status: 404, want: []string{`"code":"coupon_not_found"`}},
		{name: "delete", before: []string{addPat}, method: "DELETE", path: "/admin/api/programs/{id}/coupons/pat10", status: 200, want: []string{`"code":"PAT10"`}},
		{name: "delete twice", before: []string{addPat, "DELETE /admin/api/programs/{id}/coupons/PAT10 "}, method: "DELETE",
			path: "/admin/api/programs/{id}/coupons/PAT10", status: 404},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			p := ts.createProgram(`{"name":"Shop"}`)
			for _, body := range []string{`{"key":"pat"}`, `{"key":"other"}`} {
				if r := ts.api(p, "POST", "/v1/partners", body); r.Status != 201 {
					t.Fatal(r.Status, r.Body)
				}
			}
			for _, b := range sc.before {
				parts := strings.SplitN(strings.ReplaceAll(b, "{id}", p.ID), " ", 3)
				if r := ts.admin(parts[0], parts[1], parts[2]); r.Status >= 300 {
					t.Fatalf("before %q: %d %s", b, r.Status, r.Body)
				}
			}
			path := strings.ReplaceAll(sc.path, "{id}", p.ID)
			var r *response
			if sc.name == "without token" {
				r = ts.request(sc.method, path, sc.body)
			} else {
				r = ts.admin(sc.method, path, sc.body)
			}
			if r.Status != sc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, sc.status, r.Body)
			}
			r.expectBody(t, sc.want, sc.notWant)
			if r.Status >= 400 && r.JSON(t)["error"] == nil {
				t.Errorf("error body lacks 'error': %s", r.Body)
			}
			if n := ts.count(`SELECT count(*) FROM coupons WHERE program_id = ?`, p.ID); n != sc.coupons {
				t.Errorf("%d coupons stored, want %d", n, sc.coupons)
			}
		})
	}
}

// TestPaddleSecretNeverShown: the Paddle webhook secret is kept for the
// webhook and appears in no answer of the admin API.
func TestPaddleSecretNeverShown(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	const secret = "pdl_ntfset_secretvalue"
	if err := ts.store.Write(context.Background(), func(tx *store.Tx) error {
		return tx.SetSecret(p.ID, store.SecretPaddleWebhookSecret, secret)
	}); err != nil {
		t.Fatal(err)
	}
	if n := ts.count(`SELECT count(*) FROM programs WHERE paddle_webhook_secret = ?`, secret); n != 1 {
		t.Fatal("the secret was not stored")
	}
	for _, path := range []string{"/admin/api/programs", "/admin/api/programs/" + p.ID} {
		r := ts.admin("GET", path, "")
		if r.Status != 200 || strings.Contains(r.Body, secret) {
			t.Errorf("GET %s: %d, shows the Paddle secret: %v", path, r.Status, strings.Contains(r.Body, secret))
		}
	}
	r := ts.admin("PATCH", "/admin/api/programs/"+p.ID, `{"name":"Renamed"}`)
	if r.Status != 200 || strings.Contains(r.Body, secret) {
		t.Errorf("PATCH: %d %s", r.Status, r.Body)
	}
}
