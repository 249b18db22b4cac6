package server

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

const testDay = 24 * time.Hour

// payoutFixture is a program with partners alice (with an email) and bob
// (without), and helpers for sales, refunds and balances.
type payoutFixture struct {
	ts *testServer
	p  testProgram
}

func newPayoutFixture(t *testing.T, program string) *payoutFixture {
	ts := newTestServer(t)
	if program == "" {
		program = `{"name":"Payout shop","allowed_origins":["https://shop.example"]}`
	}
	f := &payoutFixture{ts: ts, p: ts.createProgram(program)}
	for _, body := range []string{`{"key":"alice","email":"alice@example.com","name":"Alice"}`, `{"key":"bob","name":"Bob"}`} {
		if r := ts.api(f.p, "POST", "/v1/partners", body); r.Status != 201 {
			t.Fatalf("partner: %d %s", r.Status, r.Body)
		}
	}
	return f
}

// sale records a REST sale by a new customer of partner.
func (f *payoutFixture) sale(partner, key, amount, currency string) {
	f.ts.t.Helper()
	body := fmt.Sprintf(`{"key":%q,"amount":%q,"amount_units":%q,"customer":{"key":"c-%s","partner":{"key":%q}},"options":{"create_customer":true}}`,
		key, amount, currency, key, partner)
	if r := f.ts.api(f.p, "POST", "/v1/transactions", body); r.Status != 201 {
		f.ts.t.Fatalf("sale %s: %d %s", key, r.Status, r.Body)
	}
}

// balances is GET /v1/partners/{key}'s balances.
func (f *payoutFixture) balances(partner string) []map[string]any {
	f.ts.t.Helper()
	r := f.ts.api(f.p, "GET", "/v1/partners/"+partner, "")
	if r.Status != 200 {
		f.ts.t.Fatalf("get partner: %d %s", r.Status, r.Body)
	}
	var out []map[string]any
	for _, b := range r.JSON(f.ts.t)["data"].(map[string]any)["balances"].([]any) {
		out = append(out, b.(map[string]any))
	}
	return out
}

// balance is one currency's balance as "pending/held/approved/in_payout/paid/clawback".
func (f *payoutFixture) balance(partner, currency string) string {
	f.ts.t.Helper()
	for _, b := range f.balances(partner) {
		if b["currency"] == currency {
			return fmt.Sprintf("%v/%v/%v/%v/%v/%v", b["pending"], b["held"], b["approved"], b["in_payout"], b["paid"], b["clawback"])
		}
	}
	return "none"
}

func (f *payoutFixture) wantBalance(partner, currency, want, when string) {
	f.ts.t.Helper()
	if got := f.balance(partner, currency); got != want {
		f.ts.t.Errorf("%s: %s's %s balance (pending/held/approved/in_payout/paid/clawback) %s, want %s", when, partner, currency, got, want)
	}
}

func (f *payoutFixture) admin(method, path, body string) *response {
	f.ts.t.Helper()
	return f.ts.admin(method, "/admin/api/programs/"+f.p.ID+path, body)
}

// createPayout posts a batch and returns its id.
func (f *payoutFixture) createPayout(body string) (int64, map[string]any) {
	f.ts.t.Helper()
	r := f.admin("POST", "/payouts", body)
	if r.Status != 201 {
		f.ts.t.Fatalf("create payout: %d %s", r.Status, r.Body)
	}
	d := r.JSON(f.ts.t)["data"].(map[string]any)
	id, _ := d["id"].(json.Number).Int64()
	return id, d
}

// csvRows parses a CSV body.
func csvRows(t *testing.T, body string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, body)
	}
	return rows
}

// TestPayoutsAPI: a reward pending through the hold (default 30 days) and
// approved after it in GET /v1/partners/{key}; a batch over the minimum,
// both CSV layouts parsed back, marking paid idempotent (the same
// reference 200, another 409), no second batch of the same rewards, and a
// refund after payout owed back.
func TestPayoutsAPI(t *testing.T) {
	f := newPayoutFixture(t, "")
	view := f.admin("GET", "", "").JSON(t)["data"].(map[string]any)
	if fmt.Sprint(view["hold_days"]) != "30" || fmt.Sprint(view["min_payout"]) != "map[]" || view["landing_url"] != "" {
		t.Errorf("a new program's payout settings: %v %v %q", view["hold_days"], view["min_payout"], view["landing_url"])
	}
	for _, bad := range []string{`{"hold_days":-1}`, `{"hold_days":366}`, `{"min_payout":{"usd":-5}}`, `{"min_payout":{"XYZ":5}}`,
		`{"landing_url":"ftp://shop.example"}`, `{"landing_url":"https://shop.example/#x"}`} {
		if r := f.admin("PATCH", "", bad); r.Status != 422 {
			t.Errorf("PATCH %s: %d %s", bad, r.Status, r.Body)
		}
	}
	if r := f.admin("PATCH", "", `{"min_payout":{"usd":5000},"landing_url":"https://shop.example/welcome?x=1"}`); r.Status != 200 ||
		!strings.Contains(r.Body, `"min_payout":{"USD":5000}`) {
		t.Fatalf("PATCH min_payout: %d %s", r.Status, r.Body)
	}

	f.sale("alice", "o1", "400.00", "USD") // reward 80.00
	f.sale("bob", "o2", "100.00", "USD")   // reward 20.00: under the 50.00 minimum
	f.wantBalance("alice", "USD", "80.00/0.00/0.00/0.00/0.00/0.00", "a new sale")
	tr := f.ts.api(f.p, "GET", "/v1/transactions/o1", "").JSON(t)["data"].(map[string]any)
	reward := tr["rewards"].([]any)[0].(map[string]any)
	if reward["state"] != "pending" || reward["held"] != false || reward["due_at"] == nil {
		t.Errorf("the reward's ledger fields: %v", reward)
	}
	if r := f.admin("POST", "/payouts", ""); r.Status != 422 || !strings.Contains(r.Body, "nothing_to_pay") {
		t.Errorf("a batch within the hold: %d %s", r.Status, r.Body)
	}

	f.ts.store.AdvanceClockForTest(31 * testDay)
	f.wantBalance("alice", "USD", "0.00/0.00/80.00/0.00/0.00/0.00", "past the hold")
	if n, err := f.ts.ApproveDueRewards(t.Context()); err != nil || n != 2 {
		t.Errorf("the approval job approved %d (%v), want 2", n, err)
	}
	id, d := f.createPayout("")
	items := d["items"].([]any)
	if len(items) != 1 || d["status"] != "created" || d["reference"] != nil {
		t.Fatalf("batch %s", mustJSON(d))
	}
	item := items[0].(map[string]any)
	if item["partner"].(map[string]any)["key"] != "alice" || fmt.Sprint(item["amount"]) != "80.00" || fmt.Sprint(item["reward_count"]) != "1" {
		t.Errorf("item %v", item)
	}
	f.wantBalance("alice", "USD", "0.00/0.00/0.00/80.00/0.00/0.00", "batched")
	f.wantBalance("bob", "USD", "0.00/0.00/20.00/0.00/0.00/0.00", "under the minimum")
	if r := f.admin("POST", "/payouts", `{"partner":"alice"}`); r.Status != 422 {
		t.Errorf("a second batch of alice's rewards: %d %s", r.Status, r.Body)
	}
	if r := f.admin("POST", "/payouts", `{"partner":"nobody"}`); r.Status != 404 {
		t.Errorf("a batch for an unknown partner: %d %s", r.Status, r.Body)
	}
	got := f.admin("GET", fmt.Sprintf("/payouts/%d", id), "")
	if got.Status != 200 || !strings.Contains(got.Body, `"transaction_key":"o1"`) {
		t.Errorf("GET the batch: %d %s", got.Status, got.Body)
	}

	generic := f.admin("GET", fmt.Sprintf("/payouts/%d/export?format=generic", id), "")
	if generic.Status != 200 || !strings.HasPrefix(generic.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(generic.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("generic CSV: %d %v", generic.Status, generic.Header)
	}
	rows := csvRows(t, generic.Body)
	want := [][]string{{"partner_key", "partner_name", "partner_email", "amount", "currency", "reward_count", "batch_id"},
		{"alice", "Alice", "alice@example.com", "80.00", "USD", "1", fmt.Sprint(id)}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("generic CSV %v, want %v", rows, want)
	}
	paypal := f.admin("GET", fmt.Sprintf("/payouts/%d/export?format=paypal", id), "")
	rows = csvRows(t, paypal.Body)
	want = [][]string{{"alice@example.com", "80.00", "USD", "alice", fmt.Sprintf("Affiliate payout %d", id), "PAYPAL"}}
	if paypal.Status != 200 || fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("PayPal CSV %d %v, want %v", paypal.Status, rows, want)
	}
	if r := f.admin("GET", fmt.Sprintf("/payouts/%d/export?format=xls", id), ""); r.Status != 422 {
		t.Errorf("an unknown format: %d", r.Status)
	}

	for _, step := range []struct {
		body     string
		status   int
		replayed string
	}{
		{`{"reference":"PAYOUT-1"}`, 200, ""},
		{`{"reference":"PAYOUT-1"}`, 200, "true"},
		{`{"reference":"PAYOUT-2"}`, 409, ""},
		{`{"reference":""}`, 422, ""},
	} {
		r := f.admin("POST", fmt.Sprintf("/payouts/%d/paid", id), step.body)
		if r.Status != step.status || r.Header.Get("Idempotent-Replayed") != step.replayed {
			t.Errorf("mark paid %s: %d (replayed %q) %s", step.body, r.Status, r.Header.Get("Idempotent-Replayed"), r.Body)
		}
	}
	if r := f.admin("POST", "/payouts/999/paid", `{"reference":"x"}`); r.Status != 404 {
		t.Errorf("mark an unknown batch: %d", r.Status)
	}
	f.wantBalance("alice", "USD", "0.00/0.00/0.00/0.00/80.00/0.00", "paid")
	if n := f.ts.count(`SELECT count(*) FROM ledger_entries WHERE kind = 'paid'`); n != 2 {
		t.Errorf("%d paid entries, want one pair", n)
	}

	// A refund after payout is owed back, and the next batch nets it.
	if r := f.ts.api(f.p, "DELETE", "/v1/transactions/o1", ""); r.Status != 200 || !strings.Contains(r.Body, `"state":"paid"`) {
		t.Fatalf("refund after payout: %d %s", r.Status, r.Body)
	}
	f.wantBalance("alice", "USD", "0.00/0.00/0.00/0.00/80.00/80.00", "refunded after payout")
	f.sale("alice", "o3", "1000.00", "USD") // 200.00
	f.ts.store.AdvanceClockForTest(31 * testDay)
	_, d = f.createPayout(`{"partner":"alice"}`)
	item = d["items"].([]any)[0].(map[string]any)
	if fmt.Sprint(item["amount"]) != "120.00" || fmt.Sprint(item["clawback_amount"]) != "80.00" || fmt.Sprint(item["rewards_amount"]) != "200.00" {
		t.Errorf("the next item %v, want 200.00 less 80.00", item)
	}
	list := f.admin("GET", "/payouts", "")
	if list.Status != 200 || len(list.JSON(t)["data"].([]any)) != 2 {
		t.Errorf("list: %d %s", list.Status, list.Body)
	}
	bal := f.admin("GET", "/payouts/balances", "")
	if bal.Status != 200 || !strings.Contains(bal.Body, `"key":"bob"`) || !strings.Contains(bal.Body, `"in_payout":120.00`) {
		t.Errorf("balances: %d %s", bal.Status, bal.Body)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestPayoutPayPalOneCurrency: a batch in two currencies gets a PayPal
// file per currency (PayPal takes one currency a file), the generic CSV
// holds both; a partner key PayPal would refuse as a customer ID is
// replaced by the partner's id; a name that a spreadsheet would run is
// defused.
func TestPayoutPayPalOneCurrency(t *testing.T) {
	f := newPayoutFixture(t, "")
	if r := f.ts.api(f.p, "POST", "/v1/partners", `{"key":"carol smith","email":"carol@example.com","name":"=HYPERLINK(\"x\")"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	f.sale("alice", "u1", "100.00", "USD")
	f.sale("alice", "e1", "50.00", "EUR")
	f.sale("carol smith", "u2", "10.00", "USD")
	f.ts.store.AdvanceClockForTest(31 * testDay)
	id, _ := f.createPayout("")
	if r := f.admin("GET", fmt.Sprintf("/payouts/%d/export?format=paypal", id), ""); r.Status != 422 || !strings.Contains(r.Body, "currency") {
		t.Errorf("PayPal file of two currencies: %d %s", r.Status, r.Body)
	}
	eur := csvRows(t, f.admin("GET", fmt.Sprintf("/payouts/%d/export?format=paypal&currency=eur", id), "").Body)
	if len(eur) != 1 || eur[0][0] != "alice@example.com" || eur[0][1] != "10.00" || eur[0][2] != "EUR" {
		t.Errorf("EUR file %v", eur)
	}
	usd := csvRows(t, f.admin("GET", fmt.Sprintf("/payouts/%d/export?format=paypal&currency=USD", id), "").Body)
	if len(usd) != 2 {
		t.Fatalf("USD file %v", usd)
	}
	for _, row := range usd {
		if len(row) != 6 || row[2] != "USD" || row[5] != "PAYPAL" {
			t.Errorf("USD row %v", row)
		}
		if row[0] == "carol@example.com" && !strings.HasPrefix(row[3], "partner-") {
			t.Errorf("carol's customer ID %q: PayPal takes no spaces", row[3])
		}
	}
	generic := csvRows(t, f.admin("GET", fmt.Sprintf("/payouts/%d/export", id), "").Body)
	if len(generic) != 4 {
		t.Fatalf("generic CSV %v", generic)
	}
	for _, row := range generic[1:] {
		if row[0] == "carol smith" && !strings.HasPrefix(row[1], "'=") {
			t.Errorf("a formula name came out as %q", row[1])
		}
	}
}

// TestFlagsAPI: a self-referral (the customer's email is the partner's,
// in another case) and a cookie customer after a paid-ad click are
// flagged, recorded and shown; their rewards stay pending past the hold
// and out of batches until approved through the admin API.
func TestFlagsAPI(t *testing.T) {
	f := newCollectFixture(t)
	p := f.shop
	admin := func(method, path, body string) *response {
		return f.ts.admin(method, "/admin/api/programs/"+p.ID+path, body)
	}
	if r := f.ts.api(p, "POST", "/v1/partners", `{"key":"selfie","email":"Me@Example.com"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	if r := f.ts.api(p, "POST", "/v1/transactions", `{"key":"self-1","amount":"100.00","customer":{"key":"me","email":"me@example.COM","partner":{"key":"selfie"}},"options":{"create_customer":true}}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	cust := f.ts.api(p, "GET", "/v1/customers/me", "")
	if !strings.Contains(cust.Body, `"flags":["self_referral"]`) || !strings.Contains(cust.Body, `"flags_approved_at":null`) {
		t.Errorf("the customer view: %s", cust.Body)
	}
	tr := f.ts.api(p, "GET", "/v1/transactions/self-1", "")
	if !strings.Contains(tr.Body, `"held":true`) || !strings.Contains(tr.Body, `"flags":["self_referral"]`) {
		t.Errorf("the transaction view: %s", tr.Body)
	}

	// A click from a Google ad, then a sign-up the cookie attributes.
	if r := f.ts.request("POST", "/collect", clickBody(p.ID, "https://shop.example/?ref=bob&gclid=EAIaIQ", "", ""), "Origin", shopOrigin); r.Status != 201 {
		t.Fatalf("click: %d %s", r.Status, r.Body)
	}
	if n := f.ts.count(`SELECT count(*) FROM clicks WHERE flags = 'gclid'`); n != 1 {
		t.Errorf("%d clicks flagged", n)
	}
	body := collectBody(p.ID, "transactions.create", "bob", `{"key":"ad-1","amount":"50.00","customer":{"key":"from-ad"},"options":{"create_customer":true}}`)
	if r := f.ts.request("POST", "/collect", body, "Origin", shopOrigin); r.Status != 201 {
		t.Fatalf("sale: %d %s", r.Status, r.Body)
	}
	if c := f.ts.api(p, "GET", "/v1/customers/from-ad", ""); !strings.Contains(c.Body, `"flags":["paid_ad"]`) {
		t.Errorf("a cookie customer after a paid-ad click: %s", c.Body)
	}
	flags := admin("GET", "/flags", "")
	if flags.Status != 200 || !strings.Contains(flags.Body, `"key":"me"`) || !strings.Contains(flags.Body, `"key":"from-ad"`) ||
		!strings.Contains(flags.Body, `"flags":["gclid"]`) || !strings.Contains(flags.Body, `"held":true`) {
		t.Errorf("flags: %d %s", flags.Status, flags.Body)
	}

	f.ts.store.AdvanceClockForTest(46 * testDay)
	if r := admin("POST", "/payouts", ""); r.Status != 422 {
		t.Errorf("a batch of held rewards only: %d %s", r.Status, r.Body)
	}
	if r := admin("POST", "/flags/nobody/approve", ""); r.Status != 404 {
		t.Errorf("approve an unknown customer: %d", r.Status)
	}
	if r := admin("POST", "/flags/cust_plain/approve", ""); r.Status != 404 {
		t.Errorf("approve a customer without flags: %d", r.Status)
	}
	r := admin("POST", "/flags/me/approve", "")
	if r.Status != 200 || strings.Contains(r.Body, `"flags_approved_at":null`) || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	if r := admin("POST", "/flags/me/approve", ""); r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("approve again: %d %v", r.Status, r.Header)
	}
	if r := f.ts.api(p, "GET", "/v1/transactions/self-1", ""); !strings.Contains(r.Body, `"state":"approved"`) {
		t.Errorf("after approval: %s", r.Body)
	}
	r = admin("POST", "/payouts", "")
	if r.Status != 201 || !strings.Contains(r.Body, `"key":"selfie"`) || strings.Contains(r.Body, `"key":"bob"`) {
		t.Errorf("the batch after approval: %d %s", r.Status, r.Body)
	}
}

// TestPartnerPageIsolation: a partner's page shows their own link, codes,
// numbers, masked customers, rewards and payouts, and nothing of another
// partner's (distinctive values of each are seeded) nor of the program's
// secrets; a revoked link and a rotated one's old token answer 404 with a
// plain page; wrong tokens are limited per IP.
func TestPartnerPageIsolation(t *testing.T) {
	f := newPayoutFixture(t, `{"name":"Isolation shop","allowed_origins":["https://shop.example"],"referral_params":["via"]}`)
	ts := f.ts
	seeds := []struct{ partner, code, domain, amount string }{
		{"alice", "ALICECODE7", "alicebuyers.test", "1234.56"},
		{"bob", "BOBCODE9", "bobbuyers.test", "987.65"},
	}
	for _, s := range seeds {
		if r := ts.api(f.p, "POST", "/v1/coupons", fmt.Sprintf(`{"code":%q,"partner":{"key":%q}}`, s.code, s.partner)); r.Status != 201 {
			t.Fatalf("coupon: %d %s", r.Status, r.Body)
		}
		body := fmt.Sprintf(`{"key":"sale-%s","amount":%q,"customer":{"key":"buyer-%s","email":"zed@%s","partner":{"key":%q}},"options":{"create_customer":true}}`,
			s.partner, s.amount, s.partner, s.domain, s.partner)
		if r := ts.api(f.p, "POST", "/v1/transactions", body); r.Status != 201 {
			t.Fatal(r.Body)
		}
	}
	make := func(partner string) string {
		t.Helper()
		r := f.admin("POST", "/partners/"+partner+"/page", "")
		if r.Status != 201 {
			t.Fatalf("make page: %d %s", r.Status, r.Body)
		}
		u := r.JSON(t)["data"].(map[string]any)["url"].(string)
		pu, err := url.Parse(u)
		if err != nil || !strings.HasPrefix(pu.Path, "/p/") || len(pu.Path) != 3+43 {
			t.Fatalf("page url %q", u)
		}
		return pu.Path
	}
	alicePage, bobPage := make("alice"), make("bob")
	if n := ts.count(`SELECT count(*) FROM partner_pages WHERE token_hash = ?`, hashSecret(strings.TrimPrefix(alicePage, "/p/"))); n != 1 {
		t.Errorf("the token's hash is not what is stored")
	}
	secrets := []string{f.p.APIKey, f.p.SigningSecret, f.p.WebhookSecret, testAdminToken}
	for i, s := range seeds {
		path := alicePage
		if i == 1 {
			path = bobPage
		}
		other := seeds[1-i]
		r := ts.request("GET", path, "")
		if r.Status != 200 {
			t.Fatalf("%s's page: %d %s", s.partner, r.Status, r.Body)
		}
		if r.Header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(r.Header.Get("X-Robots-Tag"), "noindex") || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s's page headers %v", s.partner, r.Header)
		}
		r.expectBody(t, []string{s.code, "z***@" + s.domain, "https://shop.example/?via=" + s.partner, "Isolation shop"},
			append([]string{other.code, other.domain, other.amount, "via=" + other.partner, "sale-" + other.partner, "buyer-" + other.partner,
				"zed@" + s.domain}, secrets...))
		if s.partner == "alice" && (!strings.Contains(r.Body, "$246.91") || strings.Contains(r.Body, "$197.53")) {
			t.Errorf("alice's page lacks her reward or shows bob's:\n%s", r.Body)
		}
	}

	// Rotated: the old token is 404, the new one works.
	rotated := make("alice")
	if r := ts.request("GET", alicePage, ""); r.Status != 404 || !strings.Contains(r.Body, "This link does not work") || strings.Contains(r.Body, "alice") {
		t.Errorf("the rotated link: %d %s", r.Status, r.Body)
	}
	if r := ts.request("GET", rotated, ""); r.Status != 200 {
		t.Errorf("the new link: %d", r.Status)
	}
	// Revoked: 404, and the state says so.
	r := f.admin("DELETE", "/partners/alice/page", "")
	if r.Status != 200 || !strings.Contains(r.Body, `"active":false`) || strings.Contains(r.Body, `"revoked_at":null`) {
		t.Errorf("revoke: %d %s", r.Status, r.Body)
	}
	if r := ts.request("GET", rotated, ""); r.Status != 404 {
		t.Errorf("the revoked link: %d", r.Status)
	}
	if r := f.admin("GET", "/partners/bob/page", ""); !strings.Contains(r.Body, `"active":true`) || strings.Contains(r.Body, `"url"`) {
		t.Errorf("bob's page state: %s", r.Body)
	}
	if r := f.admin("GET", "/partners/nobody/page", ""); r.Status != 404 {
		t.Errorf("an unknown partner's page: %d", r.Status)
	}
	for _, bad := range []string{"/p/short", "/p/" + strings.Repeat("A", 43), "/p/" + strings.Repeat("%C3%A9", 43), "/p/" + strings.Repeat("A", 44)} {
		if r := ts.request("GET", bad, ""); r.Status != 404 {
			t.Errorf("GET %s: %d", bad, r.Status)
		}
	}
	// Wrong tokens past ten a minute from one address: 429; the right one still works.
	limited := false
	for range 12 {
		if r := ts.request("GET", "/p/"+strings.Repeat("B", 43), ""); r.Status == 429 {
			limited = true
		}
	}
	if !limited {
		t.Error("a dozen wrong tokens were never limited")
	}
	if r := ts.request("GET", bobPage, ""); r.Status != 200 {
		t.Errorf("the right token after the limit: %d", r.Status)
	}
}
