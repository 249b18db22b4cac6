package server

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/potrack/potrack/internal/browsertest"
)

// TestPayoutsBrowser: in real Chromium, the merchant sees balances on the
// Payouts tab, creates a batch through its confirmation page, marks it
// paid with a reference, makes a partner page link and opens it; the
// pages run under the admin Content-Security-Policy without a console
// error. Screenshots: payouts.png, payout.png, partner-page.png.
func TestPayoutsBrowser(t *testing.T) {
	ln := listenLoopback(t)
	f := newPayoutFixture(t, `{"name":"Trail Shop","allowed_origins":["https://shop.example"]}`)
	ts := f.ts
	admin := serve(t, ts, ln)
	shots := t.TempDir()
	if dir := os.Getenv("POTRACK_SCREENSHOT_DIR"); dir != "" {
		shots = dir
	}
	if r := ts.api(f.p, "POST", "/v1/coupons", `{"code":"ALICE10","partner":{"key":"alice"}}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	for _, s := range []struct{ partner, key, amount string }{
		{"alice", "T-1001", "249.00"}, {"alice", "T-1002", "120.00"}, {"bob", "T-1003", "400.00"},
	} {
		f.sale(s.partner, s.key, s.amount, "USD")
	}
	if r := ts.api(f.p, "POST", "/v1/transactions", `{"key":"T-1004","amount":"80.00","customer":{"key":"self","email":"alice@example.com","partner":{"key":"alice"}},"options":{"create_customer":true}}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	ts.store.AdvanceClockForTest(31 * testDay)
	f.sale("alice", "T-1005", "60.00", "USD") // still pending
	if r := ts.api(f.p, "DELETE", "/v1/transactions/T-1002", ""); r.Status != 200 {
		t.Fatal(r.Body)
	}

	b := browsertest.New(t)
	b.Do(chromedp.EmulateViewport(1280, 900))
	b.Navigate(admin + "/admin/programs/" + f.p.ID + "/payouts")
	b.WaitJS(`location.pathname === '/admin/login' && document.querySelector('#token')`, browserWait)
	b.Do(chromedp.SendKeys("#token", testAdminToken))
	clickTo(b, "form button[type=submit]", `location.pathname.endsWith('/payouts') && document.querySelector('#balance-table')`)
	got := text(b, "#balance-table")
	for _, want := range []string{"Alice", "Bob", "$49.80", "$80.00", "$28.00", "$16.00 held"} {
		if !strings.Contains(got, want) {
			t.Errorf("balances %q lack %q", got, want)
		}
	}
	if !strings.Contains(text(b, "#flag-table"), "Self-referral") {
		t.Error("the self-referral is not shown held")
	}
	screenshot(t, b, shots, "payouts.png")

	// Create a batch through its confirmation page.
	clickTo(b, "#new-payout", `document.querySelector('#confirm-payout')`)
	if !strings.Contains(text(b, "#preview"), "$49.80") {
		t.Errorf("the preview %q lacks alice's $49.80", text(b, "#preview"))
	}
	clickTo(b, "#confirm-payout", `document.querySelector('#items') && document.querySelector('.notice.success')`)
	if n := ts.count(`SELECT count(*) FROM payout_items`); n != 2 {
		t.Fatalf("%d items, want alice's and bob's", n)
	}
	b.Do(chromedp.SendKeys("#reference", "PAYPAL-7QX"))
	clickTo(b, "#mark-paid-button", `document.querySelector('#confirm-paid')`)
	clickTo(b, "#confirm-paid", `document.querySelector('#batch-status') && document.querySelector('#batch-status').textContent === 'Paid'`)
	if text(b, "#batch-reference") != "PAYPAL-7QX" {
		t.Errorf("reference %q", text(b, "#batch-reference"))
	}
	screenshot(t, b, shots, "payout.png")

	// Alice's partner page: make the link, open it.
	b.Navigate(admin + "/admin/programs/" + f.p.ID + "/partners/alice/payouts")
	b.WaitJS(`document.querySelector('#page-make')`, browserWait)
	clickTo(b, "#page-make", `document.querySelector('#page-url')`)
	b.WaitJS(`document.querySelector('[data-copy="page-url"]').hidden === false`, browserWait)
	link := text(b, "#page-url")
	if !strings.Contains(link, "/p/") {
		t.Fatalf("link %q", link)
	}
	b.Navigate(link)
	b.WaitJS(`document.querySelector('#partner-name')`, browserWait)
	page := text(b, "main")
	for _, want := range []string{"Alice", "https://shop.example/?aff=alice", "ALICE10", "$49.80", "Paid", "a***@example.com"} {
		if !strings.Contains(page, want) {
			t.Errorf("the partner page lacks %q", want)
		}
	}
	for _, never := range []string{"Bob", "bob", "$80.00", f.p.APIKey, "T-100"} {
		if strings.Contains(page, never) {
			t.Errorf("the partner page shows %q", never)
		}
	}
	screenshot(t, b, shots, "partner-page.png")
	for _, e := range b.ConsoleErrors() {
		t.Errorf("console error: %s", e)
	}
}
