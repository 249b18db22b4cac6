package server

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestAdminWebPayouts: the Payouts tab shows balances; a batch is made
// after a confirmation page, marked paid after another, both
// post/redirect/get; its CSV files download through the session; the
// settings card validates like the API; a flagged customer is approved
// from the tab.
func TestAdminWebPayouts(t *testing.T) {
	f := newPayoutFixture(t, "")
	ts := f.ts
	w := ts.signIn()
	base := "/admin/programs/" + f.p.ID + "/payouts"
	f.sale("alice", "o1", "400.00", "USD")
	if r := ts.api(f.p, "POST", "/v1/transactions", `{"key":"self","amount":"100.00","customer":{"key":"me","email":"ALICE@example.com","partner":{"key":"alice"}},"options":{"create_customer":true}}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	page := w.get(base)
	if page.Status != 200 {
		t.Fatalf("payouts page: %d %s", page.Status, page.Body)
	}
	page.expectBody(t, []string{"Balances", "$100.00", `aria-current="page">Payouts`, "Self-referral", "Held by fraud flags", "$20.00 held"},
		[]string{`id="new-payout"`})

	ts.store.AdvanceClockForTest(31 * testDay)
	page = w.get(base)
	page.expectBody(t, []string{`id="new-payout"`, "$80.00"}, nil)
	confirm := w.get(base + "/new")
	if confirm.Status != 200 || !strings.Contains(confirm.Body, "Create a payout batch?") || !strings.Contains(confirm.Body, `id="confirm-payout"`) {
		t.Fatalf("confirm page: %d %s", confirm.Status, confirm.Body)
	}
	if n := ts.count(`SELECT count(*) FROM payouts`); n != 0 {
		t.Fatal("the confirmation page made a batch")
	}
	r := w.post(base, url.Values{"partner": {""}})
	if r.Status != 303 || !regexp.MustCompile(`/payouts/\d+\?created=1$`).MatchString(r.Header.Get("Location")) {
		t.Fatalf("create: %d %v %s", r.Status, r.Header, r.Body)
	}
	batch := strings.TrimSuffix(r.Header.Get("Location"), "?created=1")
	got := w.get(r.Header.Get("Location"))
	got.expectBody(t, []string{"Payout batch created", "To pay", "alice@example.com", "$80.00", "format=paypal&amp;currency=USD"}, []string{"me@"})

	csvPage := w.get(batch + "/export?format=paypal&currency=USD")
	if csvPage.Status != 200 || !strings.HasPrefix(csvPage.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV from the page: %d %v", csvPage.Status, csvPage.Header)
	}
	if rows := csvRows(t, csvPage.Body); len(rows) != 1 || rows[0][0] != "alice@example.com" || rows[0][1] != "80.00" {
		t.Errorf("PayPal rows %v", rows)
	}
	// Without a session, no file.
	if r := ts.request("GET", batch+"/export?format=generic", ""); r.Status != 303 {
		t.Errorf("export without a session: %d", r.Status)
	}

	// Mark paid: an empty reference is refused on the page; then a confirmation.
	if r := w.get(batch + "/pay?reference="); r.Status != 422 || !strings.Contains(r.Body, "reference") {
		t.Errorf("empty reference: %d", r.Status)
	}
	conf := w.get(batch + "/pay?reference=" + url.QueryEscape("PP batch 7"))
	if conf.Status != 200 || !strings.Contains(conf.Body, "Mark batch") || !strings.Contains(conf.Body, "PP batch 7") {
		t.Fatalf("pay confirmation: %d %s", conf.Status, conf.Body)
	}
	if n := ts.count(`SELECT count(*) FROM payouts WHERE status = 'paid'`); n != 0 {
		t.Fatal("the confirmation page marked the batch")
	}
	r = w.post(batch+"/pay", url.Values{"reference": {"PP batch 7"}})
	if r.Status != 303 || !strings.HasSuffix(r.Header.Get("Location"), "?paid=1") {
		t.Fatalf("pay: %d %s", r.Status, r.Body)
	}
	w.get(r.Header.Get("Location")).expectBody(t, []string{"Batch marked paid", "PP batch 7", `id="batch-status">Paid`}, []string{`id="mark-paid"`})
	if r := w.post(batch+"/pay", url.Values{"reference": {"other"}}); r.Status != 409 || !strings.Contains(r.Body, "already marked paid") {
		t.Errorf("pay again with another reference: %d", r.Status)
	}
	if r := w.post(batch+"/pay", url.Values{"reference": {"PP batch 7"}}); r.Status != 303 {
		t.Errorf("pay again with the same reference: %d", r.Status)
	}
	// A form without the session's CSRF token changes nothing.
	if r := w.post(base, url.Values{"csrf": {"nope"}}); r.Status != 403 {
		t.Errorf("create without CSRF: %d", r.Status)
	}

	// Approve the flagged customer from the tab.
	r = w.post("/admin/programs/"+f.p.ID+"/flags/approve", url.Values{"customer": {"me"}})
	if r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "saved=approved") {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	loc, _, _ := strings.Cut(r.Header.Get("Location"), "#")
	w.get(loc).expectBody(t, []string{"Customer approved", `id="new-payout"`}, []string{"Held by fraud flags"})

	// Settings: refused in place, saved with a redirect.
	bad := w.post(base+"/settings", url.Values{"hold_days": {"400"}, "min_payout": {""}, "landing_url": {""}})
	if bad.Status != 422 || !strings.Contains(bad.Body, "hold_days") {
		t.Errorf("hold 400: %d", bad.Status)
	}
	bad = w.post(base+"/settings", url.Values{"hold_days": {"14"}, "min_payout": {"USD fifty"}, "landing_url": {""}})
	if bad.Status != 422 || !strings.Contains(bad.Body, "USD fifty") {
		t.Errorf("min payout text: %d", bad.Status)
	}
	r = w.post(base+"/settings", url.Values{"hold_days": {"14"}, "min_payout": {"usd 50, 40.5 EUR"}, "landing_url": {"https://shop.example/welcome"}})
	if r.Status != 303 {
		t.Fatalf("save settings: %d %s", r.Status, r.Body)
	}
	v := f.admin("GET", "", "").Body
	for _, want := range []string{`"hold_days":14`, `"min_payout":{"EUR":4050,"USD":5000}`, `"landing_url":"https://shop.example/welcome"`} {
		if !strings.Contains(v, want) {
			t.Errorf("after saving: %s lacks %s", v, want)
		}
	}
	w.get(base).expectBody(t, []string{`value="EUR 40.50, USD 50.00"`, `value="14"`}, nil)
}

// TestAdminWebPartnerPage: a partner's payouts page makes a link (shown
// once), rotates it (the old one 404) and revokes it (404, and the page
// says so).
func TestAdminWebPartnerPage(t *testing.T) {
	f := newPayoutFixture(t, "")
	ts := f.ts
	w := ts.signIn()
	base := "/admin/programs/" + f.p.ID + "/partners/alice/payouts"
	page := w.get(base)
	if page.Status != 200 || !strings.Contains(page.Body, "No link yet") {
		t.Fatalf("partner payouts page: %d %s", page.Status, page.Body)
	}
	if r := w.get("/admin/programs/" + f.p.ID + "/partners/nobody/payouts"); r.Status != 404 {
		t.Errorf("an unknown partner: %d", r.Status)
	}
	linkRe := regexp.MustCompile(`id="page-url" class="secret">[^<]*(/p/[A-Za-z0-9_-]{43})<`)
	action := func(a string) *response {
		return w.post("/admin/programs/"+f.p.ID+"/partners/alice/page", url.Values{"action": {a}})
	}
	made := action("make")
	m := linkRe.FindStringSubmatch(made.Body)
	if made.Status != 200 || m == nil {
		t.Fatalf("make: %d %s", made.Status, made.Body)
	}
	first := m[1]
	if r := ts.request("GET", first, ""); r.Status != 200 || !strings.Contains(r.Body, "Alice") {
		t.Fatalf("the new link: %d", r.Status)
	}
	if again := w.get(base); strings.Contains(again.Body, first) || !strings.Contains(again.Body, "Active") {
		t.Errorf("the link is shown again, or not active:\n%s", again.Body)
	}
	rot := action("rotate")
	m = linkRe.FindStringSubmatch(rot.Body)
	if m == nil || m[1] == first {
		t.Fatalf("rotate: %s", rot.Body)
	}
	if r := ts.request("GET", first, ""); r.Status != 404 {
		t.Errorf("the old link after rotation: %d", r.Status)
	}
	if r := ts.request("GET", m[1], ""); r.Status != 200 {
		t.Errorf("the rotated link: %d", r.Status)
	}
	rev := action("revoke")
	if rev.Status != 303 || !strings.Contains(rev.Header.Get("Location"), "saved=revoked") {
		t.Fatalf("revoke: %d", rev.Status)
	}
	if r := ts.request("GET", m[1], ""); r.Status != 404 {
		t.Errorf("the revoked link: %d", r.Status)
	}
	loc, _, _ := strings.Cut(rev.Header.Get("Location"), "#")
	w.get(loc).expectBody(t, []string{"revoked", "Revoked", `id="page-make"`}, nil)
	if r := action("explode"); r.Status != 422 {
		t.Errorf("an unknown action: %d", r.Status)
	}
	if n := ts.count(`SELECT count(*) FROM partner_pages`); n != 1 {
		t.Errorf("%d partner page rows, want alice's one", n)
	}
}
