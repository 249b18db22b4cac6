package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// seedTransaction is SPEC.md's seed request, verbatim in shape.
const seedTransaction = `{
  "customer": {"key": "customer_123", "partner": {"key": "partner_123"}},
  "key": "transaction_123",
  "amount": 99.99,
  "amount_units": "usd",
  "product_id": "123",
  "product_type": "monthly",
  "action": "sale",
  "rewardable": true,
  "created_at": "2026-11-20T10:00:00Z",
  "options": {"create_customer": true}
}`

// v1Fixture is two programs: A (the caller, 20% commission) with a partner,
// and B with its own partner and transaction, which A must never reach.
type v1Fixture struct {
	ts   *testServer
	a, b testProgram
}

func newV1Fixture(t *testing.T) *v1Fixture {
	ts := newTestServer(t)
	f := &v1Fixture{ts: ts,
		a: ts.createProgram(`{"name":"A","commission":{"type":"percent","value":20,"rules":[{"product_id":"pro","type":"fixed","value":"5.00"}]}}`),
		b: ts.createProgram(`{"name":"B"}`),
	}
	for _, step := range []struct {
		p          testProgram
		path, body string
	}{
		{f.a, "/v1/partners", `{"key":"partner_123","email":"pat@example.com","name":"Pat"}`},
		{f.b, "/v1/partners", `{"key":"partner_b","email":"bee@example.com","name":"Bee"}`},
		{f.b, "/v1/transactions", `{"key":"tx_b","amount":"10","customer":{"key":"cust_b","partner":{"key":"partner_b"}},"options":{"create_customer":true}}`},
	} {
		if r := ts.api(step.p, "POST", step.path, step.body); r.Status != 201 {
			t.Fatalf("fixture %s: %d %s", step.path, r.Status, r.Body)
		}
	}
	return f
}

type v1Scenario struct {
	name    string
	before  []string // "METHOD path body" requests sent first with A's key, each must answer 2xx
	method  string
	path    string
	body    string
	auth    string // "" A's key, "B" B's key, "none", or a literal Authorization header
	status  int
	want    []string          // substrings of the body
	header  map[string]string // response headers
	rows    map[string]int    // count query (program A's id as ?1, B's as ?2) -> rows
	notWant []string
}

func (f *v1Fixture) run(t *testing.T, sc v1Scenario) {
	t.Helper()
	for _, b := range sc.before {
		parts := strings.SplitN(b, " ", 3)
		if r := f.ts.api(f.a, parts[0], parts[1], parts[2]); r.Status >= 300 {
			t.Fatalf("before %q: %d %s", b, r.Status, r.Body)
		}
	}
	var headers []string
	switch sc.auth {
	case "":
		headers = []string{"Authorization", "Bearer " + f.a.APIKey}
	case "B":
		headers = []string{"Authorization", "Bearer " + f.b.APIKey}
	case "none":
	default:
		headers = []string{"Authorization", sc.auth}
	}
	r := f.ts.request(sc.method, sc.path, sc.body, headers...)
	if r.Status != sc.status {
		t.Fatalf("status %d, want %d; body %s", r.Status, sc.status, r.Body)
	}
	r.expectBody(t, sc.want, sc.notWant)
	for k, v := range sc.header {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	for q, want := range sc.rows {
		if got := f.ts.count(q, f.a.ID, f.b.ID); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	if r.Status >= 400 {
		body := r.JSON(t)
		if body["status"] == nil || body["message"] == nil || body["errors"] == nil {
			t.Errorf("error body is not in the REST shape: %s", r.Body)
		}
	}
}

const (
	txA      = `SELECT count(*) FROM transactions WHERE program_id = ?1`
	txB      = `SELECT count(*) FROM transactions WHERE program_id = ?2`
	rewardsA = `SELECT count(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE t.program_id = ?1`
)

func TestV1API(t *testing.T) {
	seed := "POST /v1/transactions " + seedTransaction
	scenarios := []v1Scenario{
		// Authentication.
		{name: "no key", method: "POST", path: "/v1/partners", body: `{"key":"x"}`, auth: "none", status: 401, want: []string{`"status":0`}},
		{name: "wrong key", method: "GET", path: "/v1/transactions", auth: "Bearer pk_wrong", status: 401},
		{name: "not bearer", method: "GET", path: "/v1/transactions", auth: "Basic abc", status: 401},

		// Partners.
		{name: "create partner", method: "POST", path: "/v1/partners", body: `{"key":"p2","email":"p2@example.com","name":"Two"}`, status: 201,
			want: []string{`"key":"p2"`, `"status":1`}, rows: map[string]int{`SELECT count(*) FROM partners WHERE program_id = ?1`: 2}},
		{name: "partner replay", before: []string{`POST /v1/partners {"key":"p2","name":"Two"}`}, method: "POST", path: "/v1/partners",
			body: `{"key":"p2","name":"Two"}`, status: 200, header: map[string]string{"Idempotent-Replayed": "true"},
			rows: map[string]int{`SELECT count(*) FROM partners WHERE program_id = ?1`: 2}},
		{name: "partner conflict", method: "POST", path: "/v1/partners", body: `{"key":"partner_123","name":"Other"}`, status: 409},
		{name: "partner without key", method: "POST", path: "/v1/partners", body: `{"name":"x"}`, status: 422, want: []string{`"key":[`}},
		{name: "partner bad email", method: "POST", path: "/v1/partners", body: `{"key":"k","email":"nope"}`, status: 422, want: []string{`"email":[`}},
		{name: "partner key too long", method: "POST", path: "/v1/partners", body: `{"key":"` + strings.Repeat("k", 256) + `"}`, status: 422},
		{name: "partner key with control char", method: "POST", path: "/v1/partners", body: `{"key":"a\u0000b"}`, status: 422},
		{name: "partner key numeric", method: "POST", path: "/v1/partners", body: `{"key":42}`, status: 201, want: []string{`"key":"42"`}},
		{name: "partner key wrong type", method: "POST", path: "/v1/partners", body: `{"key":{"a":1}}`, status: 400},
		{name: "get partner with totals", before: []string{seed}, method: "GET", path: "/v1/partners/partner_123", status: 200,
			want: []string{`"customers":1`, `"transactions":1`, `"amount":20.00`, `"amount_units":"USD"`}},
		{name: "get unknown partner", method: "GET", path: "/v1/partners/nobody", status: 404},
		{name: "other program's partner", method: "GET", path: "/v1/partners/partner_b", status: 404},

		// Customers.
		{name: "create customer", method: "POST", path: "/v1/customers", body: `{"key":"c1","name":"Cy","email":"c@example.com","partner":{"key":"partner_123"}}`,
			status: 201, want: []string{`"key":"c1"`, `"partner":{`}},
		{name: "customer by partner email", method: "POST", path: "/v1/customers", body: `{"key":"c1","partner":{"email":"pat@example.com"}}`,
			status: 201, want: []string{`"key":"partner_123"`}},
		{name: "customer unattributed", method: "POST", path: "/v1/customers", body: `{"key":"c1"}`, status: 201, want: []string{`"partner":null`}},
		{name: "customer unknown partner", method: "POST", path: "/v1/customers", body: `{"key":"c1","partner":{"key":"ghost"}}`, status: 422,
			rows: map[string]int{`SELECT count(*) FROM customers WHERE program_id = ?1`: 0}},
		{name: "customer other program's partner", method: "POST", path: "/v1/customers", body: `{"key":"c1","partner":{"key":"partner_b"}}`, status: 422},
		{name: "customer replay", before: []string{`POST /v1/customers {"key":"c1","partner":{"key":"partner_123"}}`}, method: "POST",
			path: "/v1/customers", body: `{"key":"c1","partner":{"key":"partner_123"}}`, status: 200, header: map[string]string{"Idempotent-Replayed": "true"}},
		{name: "customer conflict", before: []string{`POST /v1/customers {"key":"c1"}`}, method: "POST", path: "/v1/customers",
			body: `{"key":"c1","partner":{"key":"partner_123"}}`, status: 409},
		{name: "customer bad partner id", method: "POST", path: "/v1/customers", body: `{"key":"c1","partner":{"id":"x"}}`, status: 422},
		{name: "get customer", before: []string{seed}, method: "GET", path: "/v1/customers/customer_123", status: 200, want: []string{`"key":"partner_123"`}},
		{name: "get unknown customer", method: "GET", path: "/v1/customers/none", status: 404},
		{name: "other program's customer", method: "GET", path: "/v1/customers/cust_b", status: 404},

		// Transactions.
		{name: "seed transaction", method: "POST", path: "/v1/transactions", body: seedTransaction, status: 201,
			want: []string{`"amount":99.99`, `"amount_units":"USD"`, `"source":"api"`, `"verified":true`, `"rewards":[{"amount":20.00`, `"created_at":"2026-11-20T10:00:00Z"`},
			rows: map[string]int{txA: 1, rewardsA: 1, txB: 1}},
		{name: "seed replay", before: []string{seed}, method: "POST", path: "/v1/transactions", body: seedTransaction, status: 200,
			header: map[string]string{"Idempotent-Replayed": "true"}, rows: map[string]int{txA: 1, rewardsA: 1}},
		{name: "same key other product", before: []string{seed}, method: "POST", path: "/v1/transactions",
			body: strings.Replace(seedTransaction, `"product_id": "123"`, `"product_id": "456"`, 1), status: 409, rows: map[string]int{txA: 1}},
		{name: "same key not rewardable", before: []string{seed}, method: "POST", path: "/v1/transactions",
			body: strings.Replace(seedTransaction, `"rewardable": true`, `"rewardable": false`, 1), status: 409, rows: map[string]int{rewardsA: 1}},
		{name: "same key other amount", before: []string{seed}, method: "POST", path: "/v1/transactions",
			body: strings.Replace(seedTransaction, "99.99", "98.99", 1), status: 409, rows: map[string]int{txA: 1}},
		{name: "same key in another program is independent", method: "POST", path: "/v1/transactions",
			body: `{"key":"tx_b","amount":"10","customer":{"key":"c","partner":{"key":"partner_123"}},"options":{"create_customer":true}}`, status: 201,
			rows: map[string]int{txA: 1, txB: 1}},
		{name: "product override fixed reward", method: "POST", path: "/v1/transactions",
			body:   `{"key":"t","amount":"300","product_id":"pro","customer":{"key":"c","partner":{"key":"partner_123"}},"options":{"create_customer":true}}`,
			status: 201, want: []string{`"rewards":[{"amount":5.00`}},
		{name: "not rewardable", method: "POST", path: "/v1/transactions",
			body:   `{"key":"t","amount":"10","rewardable":false,"customer":{"key":"c","partner":{"key":"partner_123"}},"options":{"create_customer":true}}`,
			status: 201, want: []string{`"rewards":[]`}, rows: map[string]int{rewardsA: 0, txA: 1}},
		{name: "unattributed customer stored without reward", method: "POST", path: "/v1/transactions",
			body: `{"key":"t","amount":"10","customer":{"key":"c"},"options":{"create_customer":true}}`, status: 201, want: []string{`"rewards":[]`}},
		{name: "customer not found", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":"10","customer":{"key":"c"}}`,
			status: 422, want: []string{`"customer.key":[`}, rows: map[string]int{txA: 0}},
		{name: "partner not found", method: "POST", path: "/v1/transactions",
			body: `{"key":"t","amount":"10","customer":{"key":"c","partner":{"key":"ghost"}},"options":{"create_customer":true}}`, status: 422,
			want: []string{`"customer.partner":[`}, rows: map[string]int{txA: 0, `SELECT count(*) FROM customers WHERE program_id = ?1`: 0}},
		{name: "existing customer keeps partner", before: []string{`POST /v1/customers {"key":"c","partner":{"key":"partner_123"}}`},
			method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":"10","customer":{"key":"c"}}`, status: 201, want: []string{`"rewards":[{"amount":2.00`}},
		{name: "three decimals rejected", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":1.005,"customer":{"key":"c"},"options":{"create_customer":true}}`,
			status: 422, want: []string{`"amount":[`}, rows: map[string]int{txA: 0}},
		{name: "JPY decimals rejected", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":"10.5","amount_units":"JPY","customer":{"key":"c"},"options":{"create_customer":true}}`, status: 422},
		{name: "JPY whole yen", method: "POST", path: "/v1/transactions",
			body:   `{"key":"t","amount":1000,"amount_units":"jpy","customer":{"key":"c","partner":{"key":"partner_123"}},"options":{"create_customer":true}}`,
			status: 201, want: []string{`"amount":1000,`, `"rewards":[{"amount":200,`}},
		{name: "negative amount", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":-5,"customer":{"key":"c"},"options":{"create_customer":true}}`, status: 422},
		{name: "huge amount", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":1e30,"customer":{"key":"c"},"options":{"create_customer":true}}`, status: 422},
		{name: "amount missing", method: "POST", path: "/v1/transactions", body: `{"key":"t","customer":{"key":"c"}}`, status: 422, want: []string{`"amount":[`}},
		{name: "amount as text word", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":"ten","customer":{"key":"c"}}`, status: 422,
			want: []string{`"amount":[`}, notWant: []string{"ten", "json:", "Number"}},
		{name: "bad currency", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":"1","amount_units":"dollars","customer":{"key":"c"}}`, status: 422, want: []string{`"amount_units":[`}},
		{name: "no customer", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":"1"}`, status: 422},
		{name: "bad created_at", method: "POST", path: "/v1/transactions", body: `{"key":"t","amount":"1","created_at":"yesterday","customer":{"key":"c"},"options":{"create_customer":true}}`, status: 422},
		{name: "not JSON", method: "POST", path: "/v1/transactions", body: `{"key":`, status: 400},
		{name: "empty body", method: "POST", path: "/v1/transactions", body: ``, status: 400},
		{name: "JSON array", method: "POST", path: "/v1/transactions", body: `[1,2]`, status: 400},
		{name: "trailing data", method: "POST", path: "/v1/transactions", body: `{"key":"t"} {}`, status: 400},
		{name: "taken key with a new customer creates no customer", before: []string{seed}, method: "POST", path: "/v1/transactions",
			body:   `{"key":"transaction_123","amount":"5","customer":{"key":"newcomer","partner":{"key":"partner_123"}},"options":{"create_customer":true}}`,
			status: 409, rows: map[string]int{txA: 1, `SELECT count(*) FROM customers WHERE program_id = ?1 AND key = 'newcomer'`: 0}},
		{name: "replay with the customer options stores nothing new", before: []string{seed}, method: "POST", path: "/v1/transactions",
			body: seedTransaction, status: 200, header: map[string]string{"Idempotent-Replayed": "true"},
			rows: map[string]int{txA: 1, rewardsA: 1, `SELECT count(*) FROM customers WHERE program_id = ?1`: 1}},
		{name: "key generated when absent", method: "POST", path: "/v1/transactions",
			body: `{"amount":"1","customer":{"key":"c","partner":{"key":"partner_123"}},"options":{"create_customer":true}}`, status: 201, want: []string{`"key":"tx_`}},

		// Batches: all or nothing.
		{name: "batch", method: "POST", path: "/v1/transactions",
			body: `{"transactions":[` + seedTransaction + `,{"key":"t2","amount":"5","customer":{"key":"customer_123"}}]}`, status: 201,
			want: []string{`"key":"transaction_123"`, `"key":"t2"`}, rows: map[string]int{txA: 2, rewardsA: 2}},
		{name: "batch with an invalid entry stores nothing", method: "POST", path: "/v1/transactions",
			body: `{"transactions":[` + seedTransaction + `,{"key":"t2","amount":"5.555","customer":{"key":"customer_123"}}]}`, status: 422,
			want: []string{`"transactions[1].amount":[`}, rows: map[string]int{txA: 0, `SELECT count(*) FROM customers WHERE program_id = ?1`: 0}},
		{name: "batch with a late conflict stores nothing", before: []string{`POST /v1/transactions {"key":"t9","amount":"1","customer":{"key":"c9"},"options":{"create_customer":true}}`},
			method: "POST", path: "/v1/transactions",
			body: `{"transactions":[` + seedTransaction + `,{"key":"t9","amount":"2","customer":{"key":"c9"}}]}`, status: 409,
			want: []string{`"transactions[1].key":[`}, rows: map[string]int{txA: 1}},
		{name: "batch replay", before: []string{seed}, method: "POST", path: "/v1/transactions", body: `{"transactions":[` + seedTransaction + `]}`,
			status: 200, header: map[string]string{"Idempotent-Replayed": "true"}, rows: map[string]int{txA: 1}},
		{name: "empty batch", method: "POST", path: "/v1/transactions", body: `{"transactions":[]}`, status: 422},
		{name: "batch not an array", method: "POST", path: "/v1/transactions", body: `{"transactions":{"a":1}}`, status: 400},
		{name: "batch too big", method: "POST", path: "/v1/transactions", body: `{"transactions":[` + strings.TrimSuffix(strings.Repeat(`{"amount":"1"},`, 101), ",") + `]}`, status: 422},

		// Reading and refunding.
		{name: "get transaction", before: []string{seed}, method: "GET", path: "/v1/transactions/transaction_123", status: 200, want: []string{`"status":"ok"`}},
		{name: "get unknown transaction", method: "GET", path: "/v1/transactions/none", status: 404},
		{name: "other program's transaction", method: "GET", path: "/v1/transactions/tx_b", status: 404},
		{name: "key with escaped characters", before: []string{`POST /v1/transactions {"key":"order 9/x","amount":"1","customer":{"key":"c"},"options":{"create_customer":true}}`},
			method: "GET", path: "/v1/transactions/order%209%2Fx", status: 200, want: []string{`"key":"order 9/x"`}},
		{name: "refund", before: []string{seed}, method: "DELETE", path: "/v1/transactions/transaction_123", status: 200,
			want: []string{`"status":"refunded"`, `"refunded_amount":99.99`, `"reversed_amount":20.00`, `"status":"reversed"`},
			rows: map[string]int{`SELECT count(*) FROM rewards WHERE reversed_minor = amount_minor AND status = 'reversed'`: 1}},
		{name: "refund twice is harmless", before: []string{seed, "DELETE /v1/transactions/transaction_123 "}, method: "DELETE",
			path: "/v1/transactions/transaction_123", status: 200, want: []string{`"status":"refunded"`},
			rows: map[string]int{`SELECT count(*) FROM rewards WHERE reversed_minor = amount_minor`: 1, txA: 1}},
		{name: "refund unknown", method: "DELETE", path: "/v1/transactions/none", status: 404},
		{name: "refund other program's transaction", method: "DELETE", path: "/v1/transactions/tx_b", status: 404,
			rows: map[string]int{`SELECT count(*) FROM transactions WHERE program_id = ?2 AND status = 'ok'`: 1}},
		{name: "unknown route", method: "GET", path: "/v1/nothing", status: 404},
		{name: "wrong method", method: "PUT", path: "/v1/transactions", status: 405},

		// Lists.
		{name: "list", before: []string{seed}, method: "GET", path: "/v1/transactions", status: 200,
			want: []string{`"total":1`, `"per_page":15`, `"links":{`, `"key":"transaction_123"`}, notWant: []string{`tx_b`}},
		{name: "list filter by partner", before: []string{seed}, method: "GET", path: "/v1/transactions?partner=partner_123", status: 200, want: []string{`"total":1`}},
		{name: "list filter by partner includes unrewarded sales", before: []string{seed,
			`POST /v1/transactions {"key":"nr1","amount":"5","rewardable":false,"customer":{"key":"customer_123"}}`},
			method: "GET", path: "/v1/transactions?partner=partner_123", status: 200, want: []string{`"total":2`, `"key":"nr1"`}},
		{name: "partner totals count unrewarded sales", before: []string{seed,
			`POST /v1/transactions {"key":"nr1","amount":"5","rewardable":false,"customer":{"key":"customer_123"}}`},
			method: "GET", path: "/v1/partners/partner_123", status: 200, want: []string{`"transactions":2`, `"amount":20.00`}},
		{name: "list filter by other partner", before: []string{seed}, method: "GET", path: "/v1/transactions?partner=partner_b", status: 200, want: []string{`"total":0`}},
		{name: "list filter by customer", before: []string{seed}, method: "GET", path: "/v1/transactions?customer=customer_123&key=transaction_123", status: 200, want: []string{`"total":1`}},
		{name: "list limit too big", method: "GET", path: "/v1/transactions?limit=251", status: 422, want: []string{`"limit":[`}},
		{name: "list limit zero", method: "GET", path: "/v1/transactions?limit=0", status: 422},
		{name: "list page not a number", method: "GET", path: "/v1/transactions?page=x", status: 422},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			newV1Fixture(t).run(t, sc)
		})
	}
}

func TestV1ListPagination(t *testing.T) {
	f := newV1Fixture(t)
	for i := 0; i < 7; i++ {
		body := fmt.Sprintf(`{"key":"t%d","amount":"1","customer":{"key":"c","partner":{"key":"partner_123"}},"options":{"create_customer":true}}`, i)
		if r := f.ts.api(f.a, "POST", "/v1/transactions", body); r.Status != 201 {
			t.Fatal(r.Status, r.Body)
		}
	}
	r := f.ts.api(f.a, "GET", "/v1/transactions?limit=3&page=3", "")
	m := r.JSON(t)
	meta := m["meta"].(map[string]any)
	if meta["total"].(interface{ String() string }).String() != "7" || meta["last_page"].(interface{ String() string }).String() != "3" {
		t.Fatalf("meta = %v", meta)
	}
	if n := len(m["data"].([]any)); n != 1 {
		t.Fatalf("page 3 has %d rows, want 1", n)
	}
	links := m["links"].(map[string]any)
	if links["next"] != nil || !strings.Contains(links["prev"].(string), "page=2") {
		t.Fatalf("links = %v", links)
	}
}

// TestV1ConcurrentSameKey: 50 writers racing with one key produce one row
// and one reward; every caller gets a success answer.
func TestV1ConcurrentSameKey(t *testing.T) {
	f := newV1Fixture(t)
	var wg sync.WaitGroup
	statuses := make([]int, 50)
	for i := range statuses {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			statuses[i] = f.ts.api(f.a, "POST", "/v1/transactions", seedTransaction).Status
		}(i)
	}
	wg.Wait()
	created, replayed := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusOK:
			replayed++
		default:
			t.Errorf("status %d", s)
		}
	}
	if created != 1 || replayed != 49 {
		t.Errorf("created %d, replayed %d; want 1 and 49", created, replayed)
	}
	if n := f.ts.count(txA, f.a.ID); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
	if n := f.ts.count(rewardsA, f.a.ID); n != 1 {
		t.Errorf("%d rewards, want 1", n)
	}
}
