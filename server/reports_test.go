package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The admin API's numbers, lists and exports (reports.go, export.go), on
// a program with sales on 2026-03-01 and 2026-03-02, asked for the range
// 2026-03-01 to 2026-03-03 (to=2026-03-04).

const reportQuery = "from=2026-03-01&to=2026-03-04"

var (
	march1 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	march2 = time.Date(2026, 3, 2, 20, 0, 0, 0, time.UTC)
)

// Text a spreadsheet would run as a formula, stored as given.
const (
	injectKey      = `=HYPERLINK("http://evil.example","click")`
	injectCustomer = "@SUM(A1)"
	injectEmail    = "+1@evil.example"
	injectProduct  = "-2+3"
	injectReferrer = "\t=cmd"
)

// reportFixture: partners alice (Alice Smith), bob and a_b% (100% Deals);
// customers c1 (alice), c2 (bob), c3 (nobody) and one whose key and email
// are formulas (alice); sales t1 (c1, 100.00, reward 20.00), t2 (c1,
// 50.00, refunded, its 10.00 reversed), t3 (c2, 10.00 from the browser,
// unverified, reward 2.00), t4 (c3, 7.00), a 1.00 sale of the formula
// customer with a formula key and product, and one in EUR (c2, 30.00,
// reward 3.00, from the gateway); clicks: alice 3 on March 1 (one with a
// formula referrer), bob 1 on March 2; alice has the code ALICE10.
func reportFixture(t *testing.T) (*testServer, testProgram) {
	t.Helper()
	ts := newTestServer(t, noLimits)
	p := ts.createProgram(`{"name":"Shop","allowed_origins":["https://shop.example"]}`)
	for _, body := range []string{`{"key":"alice","name":"Alice Smith","email":"alice@example.com"}`, `{"key":"bob","name":"Bob"}`, `{"key":"a_b%","name":"100% Deals"}`} {
		if r := ts.api(p, "POST", "/v1/partners", body); r.Status != 201 {
			t.Fatalf("partner %s: %d %s", body, r.Status, r.Body)
		}
	}
	if r := ts.admin("POST", "/admin/api/programs/"+p.ID+"/coupons", `{"code":"ALICE10","partner":{"key":"alice"}}`); r.Status != 201 {
		t.Fatalf("coupon: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	partner := func(key string) *store.Partner {
		pa, err := ts.store.Partner(ctx, p.ID, store.PartnerRef{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return pa
	}
	alice, bob := partner("alice"), partner("bob")
	err := ts.store.Write(ctx, func(tx *store.Tx) error {
		customers := map[string]*store.Customer{}
		for _, c := range []*store.Customer{
			{ProgramID: p.ID, Key: "c1", Email: "Ann@Example.com", Name: "Ann", Partner: alice, AttributedBy: store.AttributedPartner},
			{ProgramID: p.ID, Key: "c2", Email: "bo_b@shop.test", Partner: bob, AttributedBy: store.AttributedCookie},
			{ProgramID: p.ID, Key: "c3", Email: "carl@shop.test"},
			{ProgramID: p.ID, Key: injectCustomer, Email: injectEmail, Name: "=2+5", Partner: alice},
		} {
			if err := tx.InsertCustomer(c); err != nil {
				return err
			}
			customers[c.Key] = c
		}
		sale := func(key, customer string, at time.Time, amount, reward int64, currency, source string) *store.Transaction {
			c := customers[customer]
			tr := &store.Transaction{ProgramID: p.ID, Key: key, Customer: c, CreatedAt: at, Action: "sale", ProductID: "pro",
				Amount: rules.Money{Minor: amount, Currency: currency}, Source: source, Verified: source != store.SourceJS, Rewardable: true}
			if reward > 0 {
				tr.Rewards = []*store.Reward{{Partner: c.Partner, Amount: rules.Money{Minor: reward, Currency: currency}}}
			}
			if err := tx.InsertTransaction(tr); err != nil {
				t.Fatal(err)
			}
			return tr
		}
		sale("t1", "c1", march1, 10000, 2000, "USD", store.SourceAPI)
		t2 := sale("t2", "c1", march2, 5000, 1000, "USD", store.SourceAPI)
		sale("t3", "c2", march2, 1000, 200, "USD", store.SourceJS)
		sale("t4", "c3", march1, 700, 0, "USD", store.SourceAPI)
		sale(injectKey, injectCustomer, march2, 100, 0, "USD", store.SourceAPI) // its product is set below
		sale("eur1", "c2", march2, 3000, 300, "EUR", store.SourceGateway)
		t2.Status, t2.RefundedMinor = store.StatusRefunded, 5000
		t2.Rewards[0].ReversedMinor, t2.Rewards[0].Status = 1000, store.RewardReversed
		return tx.SaveRefund(t2)
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.exec(`UPDATE transactions SET product_id = ? WHERE key = ?`, injectProduct, injectKey)
	clicks := []struct {
		p        *store.Partner
		at       time.Time
		referrer string
	}{{alice, march1, ""}, {alice, march1, injectReferrer}, {alice, march1, "https://blog.example/"}, {bob, march2, ""}}
	for i, k := range clicks {
		if err := ts.store.RecordClick(ctx, store.Click{ProgramID: p.ID, PartnerID: k.p.ID, URL: fmt.Sprintf("https://shop.example/?aff=%s&n=%d", k.p.Key, i), Referrer: k.referrer}); err != nil {
			t.Fatal(err)
		}
		ts.exec(`UPDATE clicks SET created_at = ? WHERE url = ?`, k.at.Unix(), fmt.Sprintf("https://shop.example/?aff=%s&n=%d", k.p.Key, i))
	}
	for key, at := range map[string]time.Time{"c1": march1, "c2": march2, "c3": march1, injectCustomer: march2} {
		ts.exec(`UPDATE customers SET created_at = ? WHERE key = ?`, at.Unix(), key)
	}
	return ts, p
}

// TestReportsAPI: every endpoint of the admin's numbers: what it answers,
// and every validation error (422 invalid_field with its field).
func TestReportsAPI(t *testing.T) {
	ts, p := reportFixture(t)
	long := strings.Repeat("x", maxSearchLen+1)
	type sc struct {
		name    string
		path    string // {id} is the program's id
		token   string // "" the admin token
		status  int
		want    []string
		notWant []string
	}
	scenarios := []sc{
		// The overview and a program's numbers.
		{name: "overview", path: "/admin/api/overview?" + reportQuery, status: 200,
			want: []string{`"name":"Shop"`, `"clicks":4,"signups":4,"sales":6`, `"revenue":[{"amount":30.00,"amount_units":"EUR"},{"amount":118.00,"amount_units":"USD"}]`,
				`"rewards":[{"amount":3.00,"amount_units":"EUR"},{"amount":22.00,"amount_units":"USD"}]`, `"range":{"from":"2026-03-01T00:00:00Z","to":"2026-03-04T00:00:00Z"}`}},
		{name: "overview, the last 7 days", path: "/admin/api/overview?days=7", status: 200, want: []string{`"name":"Shop"`, `"clicks":0`}},
		{name: "overview by default 30 days", path: "/admin/api/overview", status: 200, want: []string{`"range":{"from":"`}},
		{name: "numbers with every day", path: "/admin/api/programs/{id}/numbers?" + reportQuery, status: 200,
			want: []string{`"day":"2026-03-01","clicks":3,"signups":2,"sales":2,"revenue":[{"amount":107.00,"amount_units":"USD"}],"rewards":[{"amount":20.00,"amount_units":"USD"}]`,
				`"day":"2026-03-02","clicks":1,"signups":2,"sales":4`, `"day":"2026-03-03","clicks":0,"signups":0,"sales":0,"revenue":[],"rewards":[]`}},
		{name: "numbers from only", path: "/admin/api/programs/{id}/numbers?from=2026-03-02", status: 200, want: []string{`"from":"2026-03-02T00:00:00Z"`}, notWant: []string{`"day":"2026-03-01"`}},
		{name: "numbers of an RFC 3339 range", path: "/admin/api/programs/{id}/numbers?from=2026-03-01T12:00:00%2B02:00&to=2026-03-02T00:00:00Z", status: 200,
			want: []string{`"from":"2026-03-01T10:00:00Z"`, `"clicks":3`}},
		{name: "numbers of an unknown program", path: "/admin/api/programs/nope/numbers", status: 404, want: []string{`"code":"program_not_found"`}},
		{name: "numbers without the token", path: "/admin/api/programs/{id}/numbers", token: "none", status: 401},
		{name: "days zero", path: "/admin/api/overview?days=0", status: 422, want: []string{`"code":"invalid_field"`, `"field":"days"`}},
		{name: "days over two years", path: "/admin/api/overview?days=732", status: 422, want: []string{`"field":"days"`, `from 1 to 731`}},
		{name: "days not a number", path: "/admin/api/overview?days=week", status: 422, want: []string{`"field":"days"`}},
		{name: "days and from", path: "/admin/api/overview?days=7&from=2026-03-01", status: 422, want: []string{`"field":"days"`, `not both`}},
		{name: "from after to", path: "/admin/api/programs/{id}/numbers?from=2026-03-04&to=2026-03-01", status: 422, want: []string{`"field":"to"`}},
		{name: "from equal to", path: "/admin/api/programs/{id}/numbers?from=2026-03-01&to=2026-03-01", status: 422, want: []string{`"field":"to"`}},
		{name: "range over two years", path: "/admin/api/programs/{id}/numbers?from=2024-01-01&to=2026-03-01", status: 422, want: []string{`"field":"from"`, `731 days`}},
		{name: "from not a date", path: "/admin/api/programs/{id}/numbers?from=01/03/2026", status: 422, want: []string{`"field":"from"`}},
		{name: "to not a date", path: "/admin/api/programs/{id}/numbers?to=tomorrow", status: 422, want: []string{`"field":"to"`}},
		{name: "a year no sale has", path: "/admin/api/programs/{id}/numbers?from=0001-01-01&to=2026-03-01", status: 422, want: []string{`"field":"from"`}},

		// Partners with their numbers.
		{name: "partners by revenue", path: "/admin/api/programs/{id}/partners?" + reportQuery, status: 200,
			want: []string{`"sort":"revenue"`, `"order":"desc"`, `"key":"alice"`, `"clicks":3,"customers":2,"sales":3,"revenue":[{"amount":101.00,"amount_units":"USD"}],"rewards":[{"amount":20.00,"amount_units":"USD"}],"conversion":0.6666666666666666`,
				`"clicks":1,"customers":1,"sales":2,"revenue":[{"amount":30.00,"amount_units":"EUR"},{"amount":10.00,"amount_units":"USD"}]`, `"conversion":null`, `"total":3`}},
		{name: "partners sort whitelist", path: "/admin/api/programs/{id}/partners?sort=clicks;DROP%20TABLE%20partners", status: 422,
			want: []string{`"field":"sort"`, `clicks, conversion, created, customers, key, name, revenue, rewards, sales`}},
		{name: "partners sort unknown", path: "/admin/api/programs/{id}/partners?sort=p.email", status: 422, want: []string{`"field":"sort"`}},
		{name: "partners order unknown", path: "/admin/api/programs/{id}/partners?order=sideways", status: 422, want: []string{`"field":"order"`}},
		{name: "partners by key, ascending by default", path: "/admin/api/programs/{id}/partners?sort=key&limit=1", status: 200, want: []string{`"order":"asc"`, `"key":"a_b%"`}, notWant: []string{`"key":"alice"`}},
		{name: "partners paged", path: "/admin/api/programs/{id}/partners?sort=key&limit=1&page=2", status: 200, want: []string{`"key":"alice"`, `"current_page":2`, `"last_page":3`}, notWant: []string{`"key":"bob"`}},
		{name: "partners past the end", path: "/admin/api/programs/{id}/partners?page=9", status: 200, want: []string{`"data":[]`}},
		{name: "partners limit zero", path: "/admin/api/programs/{id}/partners?limit=0", status: 422, want: []string{`"field":"limit"`}},
		{name: "partners limit too large", path: "/admin/api/programs/{id}/partners?limit=251", status: 422, want: []string{`"field":"limit"`}},
		{name: "partners page zero", path: "/admin/api/programs/{id}/partners?page=0", status: 422, want: []string{`"field":"page"`}},
		{name: "partners by key prefix, any case", path: "/admin/api/programs/{id}/partners?q=ALI", status: 200, want: []string{`"key":"alice"`, `"total":1`}},
		{name: "partners by name", path: "/admin/api/programs/{id}/partners?q=smith", status: 200, want: []string{`"key":"alice"`, `"total":1`}},
		{name: "partners search with _ literal", path: "/admin/api/programs/{id}/partners?q=a_", status: 200, want: []string{`"key":"a_b%"`, `"total":1`}},
		{name: "partners search with % literal", path: "/admin/api/programs/{id}/partners?q=%25", status: 200, want: []string{`"key":"a_b%"`, `"total":1`}},
		{name: "partners search too long", path: "/admin/api/programs/{id}/partners?q=" + long, status: 422, want: []string{`"field":"q"`}},
		{name: "partners by conversion", path: "/admin/api/programs/{id}/partners?sort=conversion&" + reportQuery, status: 200, want: []string{`"sort":"conversion"`}},
		{name: "partners of an unknown program", path: "/admin/api/programs/nope/partners", status: 404},

		// A partner's page.
		{name: "partner page", path: "/admin/api/programs/{id}/partners/alice?" + reportQuery, status: 200,
			want: []string{`"key":"alice"`, `"clicks":3`, `"link":"https://shop.example/?aff=alice"`, `"code":"ALICE10"`,
				`"funnel":[{"day":"2026-03-01","clicks":3,"customers":1,"sales":1},{"day":"2026-03-02","clicks":0,"customers":1,"sales":2},{"day":"2026-03-03","clicks":0,"customers":0,"sales":0}]`,
				`"clicks":3,"customers":2,"sales":3`, `"customers_total":2`, `"transactions_total":3`, `"latest_customers":[{"key":"`, `"key":"c1"`, `"latest_transactions":[{"key":"`, `"key":"t2"`}},
		{name: "partner page of a key with %", path: "/admin/api/programs/{id}/partners/a_b%25", status: 200, want: []string{`"key":"a_b%"`, `"customers_total":0`}},
		{name: "partner page of nobody", path: "/admin/api/programs/{id}/partners/nobody", status: 404, want: []string{`"code":"partner_not_found"`}},
		{name: "partner page with a bad range", path: "/admin/api/programs/{id}/partners/alice?days=-1", status: 422, want: []string{`"field":"days"`}},

		// Customers.
		{name: "customers", path: "/admin/api/programs/{id}/customers", status: 200, want: []string{`"total":4`}},
		{name: "customers by email, any case", path: "/admin/api/programs/{id}/customers?q=ann@EXAMPLE", status: 200, want: []string{`"key":"c1"`, `"total":1`}},
		{name: "customers by key prefix", path: "/admin/api/programs/{id}/customers?q=c", status: 200, want: []string{`"total":3`}},
		{name: "customers search with _ literal", path: "/admin/api/programs/{id}/customers?q=_b@", status: 200, want: []string{`"key":"c2"`, `"total":1`}},
		{name: "customers of a partner", path: "/admin/api/programs/{id}/customers?partner=bob", status: 200, want: []string{`"key":"c2"`, `"total":1`}},
		{name: "customers of a range", path: "/admin/api/programs/{id}/customers?from=2026-03-02&to=2026-03-03", status: 200, want: []string{`"total":2`}},
		{name: "customers with a bad range", path: "/admin/api/programs/{id}/customers?from=yesterday", status: 422, want: []string{`"field":"from"`}},
		{name: "customers paged", path: "/admin/api/programs/{id}/customers?limit=3&page=2", status: 200, want: []string{`"per_page":3`, `"current_page":2`, `"to":4`}},

		// Transactions.
		{name: "transactions of a range", path: "/admin/api/programs/{id}/transactions?from=2026-03-02&to=2026-03-03", status: 200, want: []string{`"total":4`}, notWant: []string{`"key":"t1"`}},
		{name: "transactions from REST", path: "/admin/api/programs/{id}/transactions?source=rest", status: 200, want: []string{`"total":4`, `"source":"api"`}, notWant: []string{`"source":"js"`}},
		{name: "transactions from the browser", path: "/admin/api/programs/{id}/transactions?source=browser", status: 200, want: []string{`"key":"t3"`, `"total":1`}},
		{name: "transactions from the gateway", path: "/admin/api/programs/{id}/transactions?source=gateway", status: 200, want: []string{`"key":"eur1"`, `"total":1`}},
		{name: "transactions source unknown", path: "/admin/api/programs/{id}/transactions?source=stripe", status: 422, want: []string{`"field":"source"`}},
		{name: "transactions refunded", path: "/admin/api/programs/{id}/transactions?status=refunded", status: 200, want: []string{`"key":"t2"`, `"total":1`}},
		{name: "transactions status unknown", path: "/admin/api/programs/{id}/transactions?status=void", status: 422, want: []string{`"field":"status"`}},
		{name: "transactions unverified", path: "/admin/api/programs/{id}/transactions?verified=false", status: 200, want: []string{`"key":"t3"`, `"total":1`}},
		{name: "transactions verified", path: "/admin/api/programs/{id}/transactions?verified=true&partner=alice", status: 200, want: []string{`"total":3`}},
		{name: "transactions verified unknown", path: "/admin/api/programs/{id}/transactions?verified=maybe", status: 422, want: []string{`"field":"verified"`}},
		{name: "transactions of a customer", path: "/admin/api/programs/{id}/transactions?customer=c2", status: 200, want: []string{`"total":2`}},
		{name: "transactions with a bad range", path: "/admin/api/programs/{id}/transactions?days=7&to=2026-03-01", status: 422, want: []string{`"field":"days"`}},
		{name: "transactions of an unknown program", path: "/admin/api/programs/nope/transactions", status: 404},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			headers := []string{}
			switch sc.token {
			case "":
				headers = append(headers, "Authorization", "Bearer "+testAdminToken)
			case "none":
			default:
				headers = append(headers, "Authorization", "Bearer "+sc.token)
			}
			r := ts.request("GET", strings.ReplaceAll(sc.path, "{id}", p.ID), "", headers...)
			if r.Status != sc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, sc.status, r.Body)
			}
			r.expectBody(t, sc.want, sc.notWant)
			if r.Status >= 400 && r.JSON(t)["error"] == nil {
				t.Errorf("error body lacks 'error': %s", r.Body)
			}
		})
	}
}

// TestPartnerSortOrders: each sort key orders the partners list, both ways.
func TestPartnerSortOrders(t *testing.T) {
	ts, p := reportFixture(t)
	for _, c := range []struct{ query, want string }{
		{"sort=clicks", "alice bob a_b%"},
		{"sort=clicks&order=asc", "a_b% bob alice"},
		{"sort=customers", "alice bob a_b%"},
		{"sort=sales", "alice bob a_b%"},
		{"sort=revenue", "alice bob a_b%"},
		{"sort=rewards&order=asc", "a_b% bob alice"},
		{"sort=conversion", "bob alice a_b%"}, // 1/1, 2/3, none
		{"sort=conversion&order=asc", "alice bob a_b%"},
		{"sort=name", "a_b% alice bob"},
		{"sort=key&order=desc", "bob alice a_b%"},
		{"sort=created", "a_b% bob alice"},
	} {
		r := ts.admin("GET", "/admin/api/programs/"+p.ID+"/partners?"+reportQuery+"&"+c.query, "")
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", c.query, r.Status, r.Body)
		}
		var keys []string
		for _, row := range r.JSON(t)["data"].([]any) {
			keys = append(keys, row.(map[string]any)["partner"].(map[string]any)["key"].(string))
		}
		if got := strings.Join(keys, " "); got != c.want {
			t.Errorf("%s: %s, want %s", c.query, got, c.want)
		}
	}
}
