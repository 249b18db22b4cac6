package server

import (
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/potrack/potrack/internal/browsertest"
	"github.com/potrack/potrack/snippet"
)

// Real-browser tests of the admin page and the demo shop. potrack listens
// on http://127.0.0.1:PORT; the merchant's shop is another origin,
// http://localhost:SHOPPORT, so the tracking runs cross-site as it does in
// production, through the real script and the real /collect.

const browserWait = 10 * time.Second

// listen serves the test server's app on a loopback port until the test
// ends, and returns its address. The server must be built with that
// address when it derives anything from it (the demo does), so the
// listener comes first.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func serve(t *testing.T, ts *testServer, ln net.Listener) string {
	t.Helper()
	go ts.app.Listener(ln)
	t.Cleanup(func() { ts.app.ShutdownWithTimeout(5 * time.Second) })
	return "http://" + ln.Addr().String()
}

// shop is the merchant's site: a landing page and a thank-you page that
// load the tracker's loader for the program set later.
type shop struct {
	*httptest.Server
	mu      sync.Mutex
	tracker string
	program string
}

var shopPage = template.Must(template.New("shop").Parse(`<!doctype html>
<html><head><title>Trail Shop</title>{{.Loader}}</head>
<body><h1>{{.Title}}</h1>
{{if .Order}}<script>
po('transactions', 'create', {data: {key: {{.Order}}, amount: '25.00', amount_units: 'USD',
  customer: {key: {{.Customer}}, email: 'buyer@example.com'}}, options: {create_customer: true}});
</script>{{end}}
</body></html>`))

func newShop(t *testing.T, tracker string) *shop {
	s := &shop{tracker: tracker}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		program := s.program
		s.mu.Unlock()
		d := map[string]any{
			"Loader": template.HTML(snippet.Loader(s.tracker+"/js/universal.js", program, snippet.Settings{})),
			"Title":  "Welcome", "Order": "", "Customer": "",
		}
		if r.URL.Path == "/thanks" {
			order := r.URL.Query().Get("order")
			d["Title"], d["Order"], d["Customer"] = "Thank you", order, "cust-"+order
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		shopPage.Execute(w, d)
	}))
	t.Cleanup(s.Close)
	return s
}

// localhostURL is u with 127.0.0.1 replaced by localhost: the same server
// reached as another origin.
func localhostURL(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }

// screenshot saves the page as name in dir and prints the path, so a
// person can look at it.
func screenshot(t *testing.T, b *browsertest.Browser, dir, name string) {
	t.Helper()
	path := filepath.Join(dir, name)
	b.Screenshot(path)
	t.Logf("screenshot: %s", path)
	fmt.Printf("screenshot: %s\n", path)
}

func text(b *browsertest.Browser, selector string) string {
	return browsertest.Eval[string](b, `(document.querySelector(`+jsQuote(selector)+`) || {textContent: ''}).textContent.trim()`)
}

func jsQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// clickTo clicks an element and waits until the next page satisfies cond
// and is parsed to its end: an element near the top (a notice) exists
// before the table under it does.
func clickTo(b *browsertest.Browser, selector, cond string) {
	b.Do(chromedp.Click(selector))
	b.WaitJS(`document.readyState !== 'loading' && (`+cond+`)`, browserWait)
}

func TestAdminBrowserSignInToRefund(t *testing.T) {
	ts := newTestServer(t)
	admin := serve(t, ts, listenLoopback(t))
	shopSrv := newShop(t, admin)
	shopURL := localhostURL(shopSrv.URL)
	shots := t.TempDir()
	// The temporary folder goes when the test ends; to keep the pictures,
	// name a folder of your own.
	if dir := os.Getenv("POTRACK_SCREENSHOT_DIR"); dir != "" {
		shots = dir
	}

	b := browsertest.New(t)
	b.Do(chromedp.EmulateViewport(1280, 900))

	// Sign in: a wrong token first, then the right one.
	b.Navigate(admin + "/admin")
	b.WaitJS(`location.pathname === '/admin/login' && document.querySelector('#token')`, browserWait)
	b.Do(chromedp.SendKeys("#token", "wrong-token"))
	clickTo(b, "form button[type=submit]", `document.querySelector('.notice.error')`)
	b.Do(chromedp.SendKeys("#token", testAdminToken))
	clickTo(b, "form button[type=submit]", `location.pathname === '/admin' && document.querySelector('h1').textContent === 'Programs'`)
	if c := b.Cookie(admin+"/admin", sessionCookie); c == nil || !c.HTTPOnly || c.SameSite != "Strict" {
		t.Fatalf("session cookie %+v, want HttpOnly and SameSite=Strict", c)
	}

	// Create a program.
	b.WaitJS(`document.querySelector('#create')`, browserWait)
	b.Do(chromedp.SendKeys("#name", "Trail Shop"))
	clickTo(b, "#create button[type=submit]", `document.querySelector('h1') && document.querySelector('h1').textContent === 'Trail Shop'`)
	if !strings.Contains(text(b, ".secrets"), "pk_") {
		t.Error("the new program's API key is not shown")
	}
	programID := text(b, ".meta code")
	if n := ts.count(`SELECT count(*) FROM programs WHERE id = ? AND js_tracking = FALSE`, programID); n != 1 {
		t.Fatalf("program %q not stored with JS tracking off", programID)
	}
	// The copy buttons appear only when the page's own script runs under
	// the Content-Security-Policy.
	b.WaitJS(`document.querySelector('[data-copy="snippet"]').hidden === false`, browserWait)
	shopSrv.mu.Lock()
	shopSrv.program = programID
	shopSrv.mu.Unlock()

	// Turn JS tracking on and allow the shop's origin.
	clickTo(b, "#js-tracking-toggle", `document.querySelector('#js-tracking-state').textContent === 'On'`)
	b.Do(chromedp.SendKeys("#origin", shopURL+"/"))
	clickTo(b, "#origins button[type=submit].btn:not(.danger-outline)", `document.querySelector('#origin-list').textContent.includes(`+jsQuote(shopURL)+`)`)
	if n := ts.count(`SELECT count(*) FROM programs WHERE id = ? AND js_tracking = TRUE AND allowed_origins = ?`, programID, `["`+shopURL+`"]`); n != 1 {
		t.Fatal("JS tracking or the origin not stored")
	}
	screenshot(t, b, shots, "walkthrough-program.png")

	// Add a partner.
	b.Navigate(admin + "/admin/programs/" + programID + "/partners")
	b.Do(chromedp.SendKeys("#p-key", "alice"), chromedp.SendKeys("#p-name", "Alice Example"), chromedp.SendKeys("#p-email", "alice@example.com"))
	clickTo(b, "#new-partner button[type=submit]", `document.querySelector('#partners') && document.querySelector('#partners').textContent.includes('alice')`)
	if link := text(b, "#link-0"); link != shopURL+"/?aff=alice" {
		t.Errorf("referral link %q, want %s/?aff=alice", link, shopURL)
	}
	// Give her a coupon code through the row's "+ code" link and the form.
	clickTo(b, "#partners a.add-code", `document.querySelector('#c-partner').value === 'alice'`)
	b.Do(chromedp.SendKeys("#c-code", "ALICE10"))
	clickTo(b, "#new-code button[type=submit]", `document.querySelector('#partners .codechip') && document.querySelector('#partners .codechip').textContent.includes('ALICE10')`)
	if n := ts.count(`SELECT count(*) FROM coupons k JOIN partners p ON p.id = k.partner_id WHERE p.key = 'alice' AND k.code = 'ALICE10'`); n != 1 {
		t.Fatal("the code was not stored for alice")
	}
	screenshot(t, b, shots, "walkthrough-partners.png")

	// Some older sales through the REST API give the chart a month of history.
	apiKey := rotateAPIKey(t, ts, programID)
	seedHistory(t, ts, testProgram{ID: programID, APIKey: apiKey})

	// The visitor follows the referral link and buys on the shop; the sale
	// goes through the real script and /collect.
	b.Navigate(shopURL + "/?aff=alice")
	b.WaitJS(`document.cookie.includes('partnero_partner=alice')`, browserWait)
	b.Navigate(shopURL + "/thanks?order=T-1001")
	browsertest.WaitFor(t, browserWait, "the sale stored through /collect", func() bool {
		return ts.count(`SELECT count(*) FROM transactions WHERE key = 'T-1001' AND source = 'js'`) == 1
	})
	if n := ts.count(`SELECT count(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id
		WHERE t.key = 'T-1001' AND r.amount_minor = 500 AND r.status = 'ok'`); n != 1 {
		t.Fatal("the sale has no 20% reward")
	}

	// The merchant sees it with its reward.
	b.Navigate(admin + "/admin/programs/" + programID + "/transactions")
	row := `tr[data-key="T-1001"]`
	b.WaitJS(`document.querySelector('`+row+`')`, browserWait)
	got := text(b, row)
	for _, want := range []string{"$25.00", "$5.00", "alice", "Browser", "Unverified", "Completed", "cookie"} {
		if !strings.Contains(got, want) {
			t.Errorf("transaction row %q lacks %q", got, want)
		}
	}
	if !strings.Contains(text(b, "#partner-totals"), "Alice Example") {
		t.Error("the totals per partner do not list Alice")
	}
	if browsertest.Eval[int](b, `document.querySelectorAll('#chart rect.bar-sales').length`) < 2 {
		t.Error("the chart draws fewer than two days of sales")
	}
	screenshot(t, b, shots, "walkthrough-transactions.png")

	// Refund it, through the confirmation step.
	clickTo(b, row+" a.btn", `location.pathname.endsWith('/refund') && document.querySelector('#confirm-refund')`)
	if n := ts.count(`SELECT count(*) FROM transactions WHERE key = 'T-1001' AND status = 'ok'`); n != 1 {
		t.Fatal("the confirmation page refunded already")
	}
	// Wait for the row the assertion reads, on the page after the refund.
	clickTo(b, "#confirm-refund", `location.pathname.endsWith('/transactions') && document.querySelector('.notice.success') && document.querySelector('`+row+` td:last-child')`)
	got = text(b, row)
	if !strings.Contains(got, "Refunded") || !strings.Contains(got, "Reversed") {
		t.Errorf("refunded row %q lacks the Refunded and Reversed badges", got)
	}
	if n := ts.count(`SELECT count(*) FROM transactions t JOIN rewards r ON r.transaction_id = t.id
		WHERE t.key = 'T-1001' AND t.status = 'refunded' AND r.status = 'reversed' AND r.reversed_minor = 500`); n != 1 {
		t.Fatal("the refund is not stored")
	}

	b.Navigate(admin + "/admin")
	screenshot(t, b, shots, "walkthrough-programs.png")

	// Sign out: the admin pages ask for the token again.
	clickTo(b, ".topnav button", `location.pathname === '/admin/login'`)
	b.Navigate(admin + "/admin")
	b.WaitJS(`location.pathname === '/admin/login'`, browserWait)

	// The pages run under a strict Content-Security-Policy: a violation
	// (an inline style or script of ours) shows up as a console error.
	for _, e := range b.ConsoleErrors() {
		// The wrong token's 401 is the one error the test asked for.
		if !strings.Contains(e, "401") {
			t.Errorf("console error: %s", e)
		}
	}
}

// rotateAPIKey gives the test an API key for a program made in the browser
// (its key was shown only there).
func rotateAPIKey(t *testing.T, ts *testServer, programID string) string {
	t.Helper()
	r := ts.admin("POST", "/admin/api/programs/"+programID+"/rotate", `{"secret":"api_key"}`)
	if r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)["data"].(map[string]any)["api_key"].(string)
}

// seedHistory records a few referred sales on earlier days.
func seedHistory(t *testing.T, ts *testServer, p testProgram) {
	t.Helper()
	for _, key := range []string{"bob", "carol"} {
		if r := ts.api(p, "POST", "/v1/partners", `{"key":"`+key+`","name":"`+strings.ToUpper(key[:1])+key[1:]+` Partner"}`); r.Status != 201 {
			t.Fatalf("partner: %d %s", r.Status, r.Body)
		}
	}
	amounts := []string{"120.00", "64.50", "210.00", "89.00", "45.00", "150.00", "99.99", "175.00", "60.00", "130.00", "240.00", "80.00"}
	for i, amount := range amounts {
		day := time.Now().UTC().AddDate(0, 0, -(27-i*2)).Format("2006-01-02") + "T12:00:00Z"
		partner := []string{"bob", "carol", "alice"}[i%3]
		body := fmt.Sprintf(`{"key":"H-%d","amount":%q,"created_at":%q,"customer":{"key":"hc-%d","partner":{"key":%q}},"options":{"create_customer":true}}`,
			i, amount, day, i, partner)
		if r := ts.api(p, "POST", "/v1/transactions", body); r.Status != 201 {
			t.Fatalf("history sale: %d %s", r.Status, r.Body)
		}
	}
}

func TestDemoShopBrowser(t *testing.T) {
	ln := listenLoopback(t)
	ts := newTestServer(t, func(c *Config) { c.Demo = true; c.Addr = ln.Addr().String() })
	base := serve(t, ts, ln)
	// The demo allows the server's own origins: reached as localhost, the
	// script still loads from 127.0.0.1 when that is where the page came from.
	site := localhostURL(base)

	b := browsertest.New(t)
	// The way in: the server's root page links the shop through the
	// partner's referral link.
	b.Navigate(site + "/")
	b.WaitJS(`document.querySelector('#demo-link')`, browserWait)
	clickTo(b, "#demo-link", `location.pathname === '/demo/' && location.search === '?aff=`+demoPartnerKey+`'`)
	b.WaitJS(`document.cookie.includes('partnero_partner=`+demoPartnerKey+`')`, browserWait)
	b.WaitJS(`document.querySelector('#referral-status').textContent.includes('`+demoPartnerKey+`')`, browserWait)
	b.Navigate(site + "/demo/product")
	// The product picture is drawn inline, so it shows without an emoji font.
	if w := browsertest.Eval[float64](b, `document.querySelector('#product-art').getBoundingClientRect().width`); w < 100 {
		t.Errorf("the product picture is %v px wide", w)
	}
	order := browsertest.Eval[string](b, `new URL(document.querySelector('#buy').href).searchParams.get('order')`)
	clickTo(b, "#buy", `location.pathname === '/demo/thanks'`)
	browsertest.WaitFor(t, browserWait, "the demo sale stored through /collect", func() bool {
		return ts.count(`SELECT count(*) FROM transactions t JOIN rewards r ON r.transaction_id = t.id
			JOIN partners p ON p.id = r.partner_id
			WHERE t.key = ? AND t.source = 'js' AND t.amount_minor = 4900 AND p.key = ?`, order, demoPartnerKey) == 1
	})
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
