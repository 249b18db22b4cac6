package server

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/potrack/potrack/internal/browsertest"
)

// Real-browser tests of issue 14's admin pages: the overview, partners
// with their numbers and a partner's page, searches, filters and exports,
// what /collect refused, and the layout bugs, each at a desktop's 1280 px
// and a phone's 390 px, with screenshots of every page at both widths.

// Widths the pages are tested at.
var pageWidths = []struct {
	name          string
	width, height int64
}{{"desktop", 1280, 900}, {"phone", 390, 844}}

// longName is a partner name of 150 characters without a space.
var longName = strings.Repeat("Bartholomew", 14)[:150]

// longEmail is a customer email of 70 characters.
const longEmail = "a.very.long.customer.address.for.the.layout.tests.1@mail.example.com.x"

// adminPagesFixture is a server with a month of history: partners (one
// with a 150-character name), referred sales through the REST API (one
// refunded, one by a customer with a 70-character email), an unsigned
// browser sale, clicks, and browser sales refused while JS tracking was
// off. It returns the server, its address, the shop's origin and the
// program.
type adminPagesFixture struct {
	ts      *testServer
	admin   string
	shopURL string
	shop    *shop
	p       testProgram
	shots   string
}

func newAdminPagesFixture(t *testing.T) *adminPagesFixture {
	t.Helper()
	ts := newTestServer(t)
	f := &adminPagesFixture{ts: ts, admin: serve(t, ts, listenLoopback(t)), shots: t.TempDir()}
	if dir := os.Getenv("POTRACK_SCREENSHOT_DIR"); dir != "" {
		f.shots = dir
	}
	f.shop = newShop(t, f.admin)
	f.shopURL = localhostURL(f.shop.URL)
	f.p = ts.createProgram(`{"name":"Trail Shop","allowed_origins":["` + f.shopURL + `"]}`)
	f.shop.mu.Lock()
	f.shop.program = f.p.ID
	f.shop.mu.Unlock()
	for _, body := range []string{
		`{"key":"alice","name":"Alice Example","email":"alice@example.com"}`,
		`{"key":"long","name":"` + longName + `"}`,
	} {
		if r := ts.api(f.p, "POST", "/v1/partners", body); r.Status != 201 {
			t.Fatalf("partner: %d %s", r.Status, r.Body)
		}
	}
	seedHistory(t, ts, f.p) // bob, carol and twelve sales over four weeks
	for _, step := range []struct{ method, path, body string }{
		{"POST", "/v1/transactions", `{"key":"LONG-EMAIL","amount":"42.00","customer":{"key":"cust-long","email":"` + longEmail +
			`","partner":{"key":"long"}},"options":{"create_customer":true}}`},
		{"DELETE", "/v1/transactions/H-11", ""},
	} {
		if r := ts.api(f.p, step.method, step.path, step.body); r.Status/100 != 2 {
			t.Fatalf("%s %s: %d %s", step.method, step.path, r.Status, r.Body)
		}
	}
	collect := func(body string) *response {
		return ts.request("POST", "/collect", body, "Origin", f.shopURL, "Content-Type", "text/plain")
	}
	for i := range 3 {
		body := fmt.Sprintf(`{"program":%q,"type":"clicks.create","url":%q,"referrer":""}`, f.p.ID, f.shopURL+"/?aff=alice&n="+fmt.Sprint(i))
		if r := collect(body); r.Status != 201 {
			t.Fatalf("click: %d %s", r.Status, r.Body)
		}
	}
	// Three browser sales while JS tracking is off: refused, and noted.
	for i := range 3 {
		body := fmt.Sprintf(`{"program":%q,"type":"transactions.create","url":%q,"partner":{"key":"alice"},
			"data":{"key":"REFUSED-%d","amount":"10.00","customer":{"key":"rc-%d"}},"options":{"create_customer":true}}`, f.p.ID, f.shopURL+"/thanks", i, i)
		if r := collect(body); r.Status != 403 {
			t.Fatalf("refused sale: %d %s", r.Status, r.Body)
		}
	}
	// One unsigned browser sale, stored while JS tracking was on.
	if r := ts.admin("PATCH", "/admin/api/programs/"+f.p.ID, `{"js_tracking":true}`); r.Status != 200 {
		t.Fatal(r.Body)
	}
	body := fmt.Sprintf(`{"program":%q,"type":"transactions.create","url":%q,"partner":{"key":"alice"},
		"data":{"key":"BROWSER-1","amount":"19.00","customer":{"key":"bc-1"}},"options":{"create_customer":true}}`, f.p.ID, f.shopURL+"/thanks")
	if r := collect(body); r.Status != 201 {
		t.Fatalf("browser sale: %d %s", r.Status, r.Body)
	}
	if r := ts.admin("PATCH", "/admin/api/programs/"+f.p.ID, `{"js_tracking":false}`); r.Status != 200 {
		t.Fatal(r.Body)
	}
	return f
}

// signInBrowser signs a new browser in through the sign-in form.
func (f *adminPagesFixture) signInBrowser(t *testing.T) *browsertest.Browser {
	t.Helper()
	b := browsertest.New(t, browsertest.WithTimeout(2*browsertest.DefaultTimeout))
	b.Do(chromedp.EmulateViewport(1280, 900))
	b.Navigate(f.admin + "/admin")
	b.WaitJS(`document.querySelector('#token')`, browserWait)
	b.Do(chromedp.SendKeys("#token", testAdminToken))
	clickTo(b, "form button[type=submit]", `location.pathname === '/admin' && document.querySelector('#create')`)
	return b
}

// viewport sets the window's size; below 600 px as a phone does (the
// page's meta viewport applies, scroll bars take no room).
func viewport(b *browsertest.Browser, width, height int64) {
	if width < 600 {
		b.Do(chromedp.EmulateViewport(width, height, chromedp.EmulateMobile))
	} else {
		b.Do(chromedp.EmulateViewport(width, height))
	}
}

// openAt loads path at a width and waits for ready, an element the
// assertions read.
func (f *adminPagesFixture) openAt(b *browsertest.Browser, width, height int64, path, ready string) {
	viewport(b, width, height)
	b.Navigate(f.admin + path)
	b.WaitJS(`document.readyState === 'complete' && document.querySelector(`+jsQuote(ready)+`)`, browserWait)
}

// noSideScroll fails t when the page is wider than the window.
func noSideScroll(t *testing.T, b *browsertest.Browser, page string) {
	t.Helper()
	if w := browsertest.Eval[[]float64](b, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`); w[0] > w[1] {
		// Name the outermost elements that stick out, to find the cause.
		wide := browsertest.Eval[[]string](b, `[...document.querySelectorAll('body *')].filter(e => {
		  const r = e.getBoundingClientRect(), p = e.parentElement.getBoundingClientRect();
		  for (let a = e.parentElement; a; a = a.parentElement) if (getComputedStyle(a).overflowX !== 'visible') return false;
		  return r.right > window.innerWidth + 0.5 && p.right <= window.innerWidth + 0.5;
		}).slice(0, 6).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.') + ' in ' + e.parentElement.tagName.toLowerCase() + '.' + [...e.parentElement.classList].join('.') + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + e.textContent.trim().slice(0, 30))`)
		t.Errorf("%s: the page is %v px wide in a %v px window: it scrolls sideways (%s)", page, w[0], w[1], strings.Join(wide, "; "))
	}
}

// reachable scrolls the element into view (its table scrolling inside its
// card if need be) and reports whether it is then shown whole inside its
// card and is what the browser finds at its centre (not covered, not
// clipped).
const reachableJS = `(sel) => {
  const el = document.querySelector(sel);
  if (!el) return 'missing';
  el.scrollIntoView({block: 'center', inline: 'center'});
  const a = el.getBoundingClientRect(), card = el.closest('.card').getBoundingClientRect();
  if (a.width === 0 || a.height === 0) return 'not shown';
  if (a.left < card.left - 0.5 || a.right > card.right + 0.5) return 'outside its card: ' + a.left + '–' + a.right + ' in ' + card.left + '–' + card.right;
  if (a.right > window.innerWidth + 0.5 || a.left < -0.5) return 'outside the window';
  const hit = document.elementFromPoint(a.left + a.width / 2, a.top + a.height / 2);
  if (!hit || !(hit === el || el.contains(hit))) return 'covered or clipped by ' + (hit ? hit.outerHTML.slice(0, 80) : 'nothing');
  return 'ok';
}`

func reachable(t *testing.T, b *browsertest.Browser, page, selector string) {
	t.Helper()
	if got := browsertest.Eval[string](b, `(`+reachableJS+`)(`+jsQuote(selector)+`)`); got != "ok" {
		t.Errorf("%s: %s is %s", page, selector, got)
	}
}

// TestAdminBrowserPages opens every page at 1280 and 390 px: nothing
// scrolls the page sideways, what the layout bugs hid is reachable, and
// each page is screenshot at both widths.
func TestAdminBrowserPages(t *testing.T) {
	f := newAdminPagesFixture(t)
	b := f.signInBrowser(t)
	base := "/admin/programs/" + f.p.ID
	for _, w := range pageWidths {
		suffix := ""
		if w.name == "phone" {
			suffix = "-390"
		}
		shot := func(name string) {
			// The checks scrolled tables and the page: show them as opened.
			b.Run(`document.querySelectorAll('.table-scroll').forEach(e => e.scrollLeft = 0); window.scrollTo(0, 0);`)
			screenshot(t, b, f.shots, name+suffix+".png")
		}

		// The overview: every program with its numbers and trend line.
		f.openAt(b, w.width, w.height, "/admin", `#overview .program-card .spark`)
		noSideScroll(t, b, w.name+" overview")
		card := text(b, `.program-card[data-program="`+f.p.ID+`"]`)
		for _, want := range []string{"Trail Shop", "Clicks", "3", "Sign-ups", "Revenue", "Rewards owed"} {
			if !strings.Contains(card, want) {
				t.Errorf("%s overview: the program's card %q lacks %q", w.name, card, want)
			}
		}
		if got := text(b, `.program-card[data-program="`+f.p.ID+`"] .n-sales`); got != "14" {
			t.Errorf("%s overview: %s sales in 30 days, want 14 (12 history, the long email's, the browser's)", w.name, got)
		}
		shot("programs")

		// Setup: the refusal note with its fix, the snippet on one line
		// per string, the commission's units.
		f.openAt(b, w.width, w.height, base, `#refusals .refusal`)
		noSideScroll(t, b, w.name+" setup")
		if got := text(b, `#refusals .refusal[data-reason="js_tracking_disabled"] .refusal-text`); got != "In the last 24 h: 3 sales refused because JS tracking is off." {
			t.Errorf("%s setup: refusal note %q", w.name, got)
		}
		reachable(t, b, w.name+" setup", "#fix-js-tracking")
		// The install snippet does not break inside a string: each
		// quoted string of it sits on one line.
		broken := browsertest.Eval[[]string](b, `(() => {
		  const code = document.querySelector('#snippet'), node = code.firstChild, s = node.textContent, out = [];
		  for (const m of s.matchAll(/'[^']*'|"[^"]*"/g)) {
		    const r = document.createRange(); r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
		    const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
		    if (tops.size > 1) out.push(m[0]);
		  }
		  return out;
		})()`)
		if len(broken) > 0 {
			t.Errorf("%s setup: the snippet breaks inside %q", w.name, broken)
		}
		if got := text(b, "#c-unit"); got != "%" {
			t.Errorf("%s setup: the default commission's unit reads %q, want %%", w.name, got)
		}
		reachable(t, b, w.name+" setup", "#c-unit")
		if got := text(b, `label[for="c-limit-value"]`); got == "N" || !strings.Contains(got, "How many") {
			t.Errorf("%s setup: the limit's label reads %q", w.name, got)
		}
		reachable(t, b, w.name+" setup", "#rotate-api-key")
		reachable(t, b, w.name+" setup", "#stripe-secret")
		reachable(t, b, w.name+" setup", `form[action$="/settings/stripe-secret"] button`)
		reachable(t, b, w.name+" setup", `form[action$="/settings/paddle-secret"] button`)
		reachable(t, b, w.name+" setup", "#archive-program")
		shot("program")

		// Partners with their numbers; the 150-character name pushes no
		// column out of reach.
		f.openAt(b, w.width, w.height, base+"/partners", `#partners tr[data-partner="long"]`)
		noSideScroll(t, b, w.name+" partners")
		row := text(b, `#partners tr[data-partner="alice"]`)
		for _, want := range []string{"Alice Example", "3", "%"} {
			if !strings.Contains(row, want) {
				t.Errorf("%s partners: Alice's row %q lacks %q", w.name, row, want)
			}
		}
		cell := browsertest.Eval[float64](b, `document.querySelector('#partners tr[data-partner="long"] td.who').getBoundingClientRect().width`)
		if cell > 320 {
			t.Errorf("%s partners: the long name's cell is %v px wide", w.name, cell)
		}
		for _, sel := range []string{`#partners tr[data-partner="long"] td:nth-child(2)`, `#partners tr[data-partner="long"] td:last-child`,
			`#partners thead th:nth-child(5) a`, `#partners tr[data-partner="long"] .add-code`} {
			reachable(t, b, w.name+" partners", sel)
		}
		if w.name == "desktop" {
			// At 1280 px the whole table fits its card: nothing to scroll.
			if s := browsertest.Eval[[]float64](b, `(() => { const e = document.querySelector('#partner-list .table-scroll'); return [e.scrollWidth, e.clientWidth]; })()`); s[0] > s[1]+1 {
				t.Errorf("desktop partners: the table is %v px in a %v px card", s[0], s[1])
			}
		}
		shot("partners")

		// A partner's page: the funnel over time, links, codes,
		// customers and transactions.
		f.openAt(b, w.width, w.height, base+"/partners/alice", `#funnel svg.chart polyline.line.sales`)
		noSideScroll(t, b, w.name+" partner")
		if got := text(b, "#p-clicks"); got != "3" {
			t.Errorf("%s partner: %s clicks, want 3", w.name, got)
		}
		if got := text(b, "#p-link"); got != f.shopURL+"/?aff=alice" {
			t.Errorf("%s partner: referral link %q", w.name, got)
		}
		if got := text(b, "#p-aff-link"); got != f.admin+"/aff/alice?program="+f.p.ID {
			t.Errorf("%s partner: link on potrack %q", w.name, got)
		}
		// The chart drawn for the width is the one shown, with labels a
		// person can read.
		shown := browsertest.Eval[[]float64](b, `(() => {
		  const svg = [...document.querySelectorAll('#funnel svg.chart')].find(s => s.getBoundingClientRect().width > 0);
		  const label = svg.querySelector('text.xlabel').getBoundingClientRect();
		  return [svg.getBoundingClientRect().width, label.height, document.querySelectorAll('#funnel svg.chart').length];
		})()`)
		if shown[1] < 9 {
			t.Errorf("%s partner: the funnel's dates are %v px high", w.name, shown[1])
		}
		reachable(t, b, w.name+" partner", `#partner-transactions tr:first-child a.btn`)
		shot("partner")

		// The long name's page: the heading wraps in its place.
		f.openAt(b, w.width, w.height, base+"/partners/long", `#partner-name`)
		noSideScroll(t, b, w.name+" long partner")

		// Customers, searched by email.
		f.openAt(b, w.width, w.height, base+"/customers?q="+url.QueryEscape("very.long"), `#customers tr[data-customer="cust-long"]`)
		noSideScroll(t, b, w.name+" customers")
		if n := browsertest.Eval[int](b, `document.querySelectorAll('#customers tbody tr').length`); n != 1 {
			t.Errorf("%s customers: the search finds %d, want 1", w.name, n)
		}
		reachable(t, b, w.name+" customers", `#customers tr[data-customer="cust-long"] td:last-child`)
		f.openAt(b, w.width, w.height, base+"/customers", `#customers`)
		shot("customers")

		// Transactions: every Refund button and Reversed badge inside its
		// card and visible, the 70-character email included; the chart
		// readable; unverified browser sales marked.
		f.openAt(b, w.width, w.height, base+"/transactions", `#transactions tr[data-key="LONG-EMAIL"]`)
		noSideScroll(t, b, w.name+" transactions")
		reachable(t, b, w.name+" transactions", `#transactions tr[data-key="LONG-EMAIL"] a.btn`)
		reachable(t, b, w.name+" transactions", `#transactions tr[data-key="H-11"] .badge.muted`)
		reachable(t, b, w.name+" transactions", `#transactions tr[data-key="LONG-EMAIL"] td.reward`)
		if n := browsertest.Eval[int](b, `[...document.querySelectorAll('#transactions a.btn')].length`); n < 10 {
			t.Errorf("%s transactions: %d Refund buttons", w.name, n)
		}
		if got := text(b, `#transactions tr[data-key="BROWSER-1"]`); !strings.Contains(got, "Unverified") || strings.Contains(got, "Signed") {
			t.Errorf("%s transactions: the unsigned browser sale reads %q", w.name, got)
		}
		if got := text(b, `#transactions tr[data-key="H-0"]`); strings.Contains(got, "Paid") || !strings.Contains(got, "Completed") {
			t.Errorf("%s transactions: a sale's status reads %q", w.name, got)
		}
		if got := text(b, `#transactions tr[data-key="H-0"]`); strings.Contains(got, "Unverified") {
			t.Errorf("%s transactions: a REST sale is marked unverified: %q", w.name, got)
		}
		bars := browsertest.Eval[[]float64](b, `(() => {
		  const svg = [...document.querySelectorAll('#chart svg.chart')].find(s => s.getBoundingClientRect().width > 0);
		  return [svg.getBoundingClientRect().width, svg.querySelector('text.xlabel').getBoundingClientRect().height, svg.querySelectorAll('rect.bar-sales').length];
		})()`)
		if bars[1] < 9 || bars[2] < 10 {
			t.Errorf("%s transactions: the chart's dates are %v px high, %v bars", w.name, bars[1], bars[2])
		}
		shot("transactions")

		// The other tabs and pages, as they are: no sideways scroll.
		for _, pg := range []struct{ path, ready string }{
			{base + "/payouts", "#balances"},
			{base + "/partners/alice/payouts", "#page"},
			{base + "/webhooks", "#new-endpoint"},
		} {
			f.openAt(b, w.width, w.height, pg.path, pg.ready)
			noSideScroll(t, b, w.name+" "+pg.path)
		}

		// The confirmation pages.
		f.openAt(b, w.width, w.height, base+"/rotate?secret=api_key", `#confirm-rotate`)
		noSideScroll(t, b, w.name+" rotate")
		reachable(t, b, w.name+" rotate", "#confirm-rotate")
		f.openAt(b, w.width, w.height, base+"/refund?key=LONG-EMAIL", `#confirm-refund`)
		noSideScroll(t, b, w.name+" refund")
		reachable(t, b, w.name+" refund", "#confirm-refund")
	}
	for _, e := range b.ConsoleErrors() {
		t.Errorf("console error: %s", e)
	}
}

// reload reloads the page, as the browser's button does, and waits for
// ready on the new one.
func reload(b *browsertest.Browser, ready string) {
	b.Run(`window.potrackOld = true`)
	b.Do(chromedp.Reload())
	b.WaitJS(`!window.potrackOld && document.readyState === 'complete' && `+ready, browserWait)
}

// TestAdminBrowserFlows runs, at 1280 and at 390 px, what the bugs of
// issue 14 got wrong: reloading after "Create program" or a new key makes
// nothing new (post/redirect/get, secrets shown once), a new key asks
// first, Stripe's whsec_ secret has its field, keys do not wrap, the
// refused sales' fix is one click, archiving and restoring, exports of
// the filters shown, /aff/KEY, and signing out says so.
func TestAdminBrowserFlows(t *testing.T) {
	f := newAdminPagesFixture(t)
	ts := f.ts
	// A short cookie lifetime tells the script's own cookie from the one
	// an answer set (clickAnswered in collect_browser_test.go).
	if r := ts.admin("PATCH", "/admin/api/programs/"+f.p.ID, `{"cookie_days":7}`); r.Status != 200 {
		t.Fatal(r.Body)
	}
	b := f.signInBrowser(t)
	for _, w := range pageWidths {
		t.Run(w.name, func(t *testing.T) {
			name := "Flow " + w.name
			f.openAt(b, w.width, w.height, "/admin", "#create")

			// Create a program: the secrets are shown once, after a
			// redirect; reloading shows a note and makes nothing new.
			b.Do(chromedp.SendKeys("#name", name))
			clickTo(b, "#create button[type=submit]", `document.querySelector('#secrets .secret')`)
			if !strings.HasPrefix(text(b, "#secret-0"), "pk_") || !strings.Contains(browsertest.Eval[string](b, `location.search`), "shown=") {
				t.Fatalf("the new program's page shows no API key at %s", browsertest.Eval[string](b, `location.href`))
			}
			noSideScroll(t, b, w.name+" new program")
			// Keys do not wrap mid-word: each is one line, inside its card.
			for i := range 3 {
				sel := fmt.Sprintf("#secret-%d", i)
				lines := browsertest.Eval[[]float64](b, `(() => { const e = document.querySelector(`+jsQuote(sel)+`);
				  return [e.getClientRects().length, e.getBoundingClientRect().height, parseFloat(getComputedStyle(e).lineHeight) || 20]; })()`)
				if lines[0] != 1 || lines[1] > 2*lines[2] {
					t.Errorf("%s: %s is on %v boxes, %v px high: it wraps", w.name, sel, lines[0], lines[1])
				}
				reachable(t, b, w.name+" new program", `[data-copy="secret-`+fmt.Sprint(i)+`"]`)
			}
			id := text(b, ".meta code")
			key := text(b, "#secret-0")
			reload(b, `document.querySelector('#install')`)
			if got := text(b, "#secrets"); !strings.Contains(got, "shown once") || strings.Contains(browsertest.Eval[string](b, `document.body.textContent`), key) {
				t.Errorf("%s: reloading shows %q and the key again or no note", w.name, got)
			}
			if n := ts.count(`SELECT count(*) FROM programs WHERE name = ?`, name); n != 1 {
				t.Fatalf("%s: %d programs after a reload, want 1", w.name, n)
			}
			hash := func() string {
				h, err := ts.store.StringsForTest(context.Background(), `SELECT api_key_hash FROM programs WHERE id = ?`, id)
				if err != nil || len(h) != 1 {
					t.Fatalf("api_key_hash: %v %v", h, err)
				}
				return h[0]
			}
			first := hash()
			if first != hashSecret(key) {
				t.Fatalf("%s: the key shown is not the program's", w.name)
			}

			// A new API key asks first; Cancel changes nothing.
			clickTo(b, "#rotate-api-key", `document.querySelector('#confirm-rotate')`)
			noSideScroll(t, b, w.name+" confirm")
			reachable(t, b, w.name+" confirm", "#confirm-rotate")
			clickTo(b, "#confirm a.btn", `document.querySelector('#install')`)
			if hash() != first {
				t.Fatalf("%s: the confirmation page or Cancel made a new key", w.name)
			}
			clickTo(b, "#rotate-api-key", `document.querySelector('#confirm-rotate')`)
			clickTo(b, "#confirm-rotate", `document.querySelector('#secrets .secret')`)
			newKey := text(b, "#secret-0")
			if hash() != hashSecret(newKey) || newKey == key {
				t.Fatalf("%s: the key shown after confirming is not the program's new key", w.name)
			}
			reload(b, `document.querySelector('#install')`)
			if hash() != hashSecret(newKey) || !strings.Contains(text(b, "#secrets"), "shown once") {
				t.Fatalf("%s: reloading after the new key rotated again or shows it", w.name)
			}

			// Stripe's whsec_ secret, pasted into its field.
			whsec := "whsec_" + strings.Repeat(w.name[:1], 32)
			b.Run(`document.querySelector('#stripe-secret').scrollIntoView({block: 'center'})`)
			b.Do(chromedp.SendKeys("#stripe-secret", whsec))
			clickTo(b, `form[action$="/settings/stripe-secret"] button`, `document.querySelector('.notice.success')`)
			if n := ts.count(`SELECT count(*) FROM programs WHERE id = ? AND webhook_secret = ?`, id, whsec); n != 1 {
				t.Errorf("%s: the pasted Stripe secret is not stored", w.name)
			}
			if strings.Contains(browsertest.Eval[string](b, `document.body.innerHTML`), whsec) {
				t.Errorf("%s: the page shows the Stripe secret it was given", w.name)
			}

			// Archive the program: off the list, on the archived list,
			// restored.
			b.Run(`document.querySelector('#archive-program').scrollIntoView({block: 'center'})`)
			clickTo(b, "#archive-program", `location.pathname === '/admin' && document.querySelector('.notice.success')`)
			if !strings.Contains(text(b, ".notice.success"), "archived") || browsertest.Eval[bool](b, `!!document.querySelector('[data-program="`+id+`"]')`) {
				t.Errorf("%s: after archiving, the list shows the program or no notice", w.name)
			}
			noSideScroll(t, b, w.name+" archived")
			clickTo(b, "#show-archived", `document.querySelector('[data-program="`+id+`"]')`)
			clickTo(b, `[data-program="`+id+`"] form button`, `location.pathname === '/admin/programs/`+id+`' && document.querySelector('.notice.success')`)
			if n := ts.count(`SELECT count(*) FROM programs WHERE id = ? AND archived_at = 0`, id); n != 1 {
				t.Errorf("%s: the program is still archived", w.name)
			}

			// The refused sales' fix is one click away on the setup page.
			if r := ts.admin("PATCH", "/admin/api/programs/"+f.p.ID, `{"js_tracking":false}`); r.Status != 200 {
				t.Fatal(r.Body)
			}
			f.openAt(b, w.width, w.height, "/admin/programs/"+f.p.ID, "#fix-js-tracking")
			b.Run(`document.querySelector('#fix-js-tracking').scrollIntoView({block: 'center'})`)
			clickTo(b, "#fix-js-tracking", `document.querySelector('#js-tracking-state') && document.querySelector('#js-tracking-state').textContent === 'On'`)
			if n := ts.count(`SELECT count(*) FROM programs WHERE id = ? AND js_tracking = TRUE`, f.p.ID); n != 1 {
				t.Errorf("%s: the fix did not turn JS tracking on", w.name)
			}

			// Exports carry the filters shown.
			f.openAt(b, w.width, w.height, "/admin/programs/"+f.p.ID+"/transactions?source=js", "#export-transactions")
			reachable(t, b, w.name+" transactions", "#export-transactions")
			csv := browsertest.Eval[string](b, `fetch(document.querySelector('#export-transactions').href).then(r => r.text())`)
			if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "created_at,key,") || !strings.Contains(lines[1], "BROWSER-1") {
				t.Errorf("%s: the browser sales' export is %q", w.name, csv)
			}
			f.openAt(b, w.width, w.height, "/admin/programs/"+f.p.ID+"/customers?q=very.long", "#export-customers")
			reachable(t, b, w.name+" customers", "#export-customers")
			csv = browsertest.Eval[string](b, `fetch(document.querySelector('#export-customers').href).then(r => r.text())`)
			if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 2 || !strings.Contains(lines[1], longEmail) {
				t.Errorf("%s: the customers' export is %q", w.name, csv)
			}
			f.openAt(b, w.width, w.height, "/admin/programs/"+f.p.ID+"/partners?q=ali", "#export-partners")
			reachable(t, b, w.name+" partners", "#export-partners")
			csv = browsertest.Eval[string](b, `fetch(document.querySelector('#export-partners').href).then(r => r.text())`)
			if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "alice,") {
				t.Errorf("%s: the partners' export is %q", w.name, csv)
			}

			// Search by typing; sort by a column's head.
			f.openAt(b, w.width, w.height, "/admin/programs/"+f.p.ID+"/partners", "#f-q")
			b.Do(chromedp.SendKeys("#f-q", "bartholomew"))
			clickTo(b, `form[aria-label="Find partners"] button[type=submit]`, `location.search.includes('q=bartholomew') && document.querySelector('#partner-list')`)
			if got := browsertest.Eval[[]string](b, `[...document.querySelectorAll('#partners tbody tr')].map(r => r.dataset.partner)`); len(got) != 1 || got[0] != "long" {
				t.Errorf("%s: the search finds %v", w.name, got)
			}
			f.openAt(b, w.width, w.height, "/admin/programs/"+f.p.ID+"/partners", "#partners")
			b.Run(`document.querySelector('#partners thead th:nth-child(2) a').scrollIntoView({block: 'center', inline: 'center'})`)
			clickTo(b, "#partners thead th:nth-child(2) a", `location.search.includes('sort=clicks') && document.querySelector('#partners tbody tr')`)
			if got := browsertest.Eval[string](b, `document.querySelector('#partners tbody tr').dataset.partner`); got != "alice" {
				t.Errorf("%s: sorted by clicks, %s comes first, want alice", w.name, got)
			}

			// The range picker: 7 days, then a custom range, on the chart.
			f.openAt(b, w.width, w.height, "/admin/programs/"+f.p.ID+"/transactions", "#range")
			clickTo(b, `#chart .range-links a[href*="days=7"]`, `location.search.includes('days=7') && document.querySelector('#range-label')`)
			if got := text(b, "#chart h2"); got != "Last 7 days" {
				t.Errorf("%s: after 7 days the chart says %q", w.name, got)
			}
			if n := browsertest.Eval[int](b, `document.querySelectorAll('#chart svg.chart.wide g.day').length`); n != 7 {
				t.Errorf("%s: the 7-day chart has %d days", w.name, n)
			}
			b.Run(`const f = document.querySelector('#chart form.range-custom');
			  f.querySelector('[name=from]').value = '2026-01-01'; f.querySelector('[name=until]').value = '2026-01-10';`)
			clickTo(b, "#chart form.range-custom button", `location.search.includes('until=2026-01-10') && document.querySelector('#chart h2')`)
			if got := text(b, "#chart h2"); got != "1 Jan 2026 – 10 Jan 2026" {
				t.Errorf("%s: the custom range's chart says %q", w.name, got)
			}
			if n := browsertest.Eval[int](b, `document.querySelectorAll('#chart svg.chart.wide g.day').length`); n != 10 {
				t.Errorf("%s: the custom range's chart has %d days", w.name, n)
			}

			// /aff/KEY on potrack's host: the click is recorded once, and
			// the visitor lands on the shop with the referral, which the
			// script keeps.
			partner := map[string]string{"desktop": "alice", "phone": "bob"}[w.name]
			b.Navigate(f.shopURL + "/")
			b.Run(`localStorage.clear(); document.cookie = 'partnero_partner=; max-age=0; path=/';`)
			before := ts.count(`SELECT count(*) FROM clicks`)
			b.Navigate(f.admin + "/aff/" + partner + "?program=" + f.p.ID)
			b.WaitJS(`location.origin === `+jsQuote(f.shopURL)+` && new URLSearchParams(location.search).get('aff') === `+jsQuote(partner), browserWait)
			b.WaitJS(`document.cookie.includes('partnero_partner=`+partner+`') && JSON.parse(localStorage.po || '{}').c === 7`, browserWait)
			if n := ts.count(`SELECT count(*) FROM clicks`) - before; n != 1 {
				t.Errorf("%s: /aff/%s then the landing page stored %d clicks, want 1", w.name, partner, n)
			}
			if n := ts.count(`SELECT count(*) FROM clicks WHERE url LIKE ?`, "%/aff/"+partner+"?%"); n != 1 {
				t.Errorf("%s: the click /aff recorded: %d rows", w.name, n)
			}

			// Signing out says so; then sign in again for the next width.
			f.openAt(b, w.width, w.height, "/admin", ".topnav button")
			clickTo(b, ".topnav button", `location.pathname === '/admin/login' && document.querySelector('.notice.success')`)
			if got := text(b, ".notice.success"); !strings.Contains(got, "signed out") {
				t.Errorf("%s: after signing out the page says %q", w.name, got)
			}
			noSideScroll(t, b, w.name+" signed out")
			reachable(t, b, w.name+" signed out", "#token")
			b.Do(chromedp.SendKeys("#token", testAdminToken))
			clickTo(b, "form button[type=submit]", `location.pathname === '/admin' && document.querySelector('#create')`)
		})
	}

	for _, e := range b.ConsoleErrors() {
		t.Errorf("console error: %s", e)
	}
}
