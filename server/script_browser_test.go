package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/potrack/potrack/internal/browsertest"
)

// The program settings for the script (issue 12), each in a real Chromium
// against the real server: the shop and the tracker on different origins
// (the shop under *.localhost names, which Chromium resolves to loopback,
// the tracker on 127.0.0.1), asserting on the cookie jar and on the stored
// rows.

// scriptRan is true once the script has replaced the loader's stub and
// replayed its queue: whatever it decides on a page load is decided then.
const scriptRan = `window.po && po.p === 1`

// shopAt is the shop's origin under another host name.
func (e *e2eEnv) shopAt(host string) string {
	e.t.Helper()
	u, err := url.Parse(e.shop.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	return "http://" + host + ":" + u.Port()
}

// patch changes the program through the admin API, as a merchant does on
// the setup page, and takes the snippet it then hands out.
func (e *e2eEnv) patch(body string) {
	e.t.Helper()
	r := e.ts.admin("PATCH", "/admin/api/programs/"+e.prog.ID, body)
	if r.Status != 200 {
		e.t.Fatalf("patch %s: %d %s", body, r.Status, r.Body)
	}
	e.loader, _ = r.JSON(e.t)["data"].(map[string]any)["snippet"].(string)
}

// partner adds a partner to the program.
func (e *e2eEnv) partner(key string) {
	e.t.Helper()
	if r := e.ts.api(e.prog, "POST", "/v1/partners", `{"key":"`+key+`","email":"`+key+`@example.com"}`); r.Status != 201 {
		e.t.Fatalf("create partner %s: %d %s", key, r.Status, r.Body)
	}
}

// cookiesAt are the partnero_partner cookies the jar sends to rawURL.
func (e *e2eEnv) cookiesAt(rawURL string) []string {
	e.t.Helper()
	var out []string
	for _, c := range e.b.Cookies(rawURL) {
		if c.Name == "partnero_partner" {
			out = append(out, c.Value+"@"+c.Domain)
		}
	}
	return out
}

const qClicks = `SELECT count(*) FROM clicks WHERE program_id = {p}`

func TestScriptBrowserSubdomains(t *testing.T) {
	t.Run("host-only without cookie_domain", func(t *testing.T) {
		e := newE2E(t, false)
		www, app := e.shopAt("www.shop.localhost"), e.shopAt("app.shop.localhost")
		e.patch(fmt.Sprintf(`{"allowed_origins":[%q,%q]}`, www, app))
		e.shop.page("/", e.loader)
		e.shop.page("/thanks", e.loader+thanks("order_1", "10.00", "cust_1"))

		e.b.Navigate(www + "/?aff=alice")
		e.waitAnswer("clicks.create", 201, "created")
		if got := e.cookiesAt(www + "/"); len(got) != 1 || got[0] != "alice@www.shop.localhost" {
			t.Fatalf("cookies on www: %v, want alice's, host-only", got)
		}
		// The app is another host: it has no referral, and the sale is
		// nobody's.
		e.b.Navigate(app + "/thanks")
		e.waitAnswer("transactions.create", 202, "ignored")
		if got := e.cookiesAt(app + "/"); len(got) != 0 {
			t.Errorf("cookies on app: %v, want none", got)
		}
		if n := e.count(`SELECT count(*) FROM transactions WHERE program_id = {p}`); n != 0 {
			t.Errorf("%d transactions stored", n)
		}
		e.noConsoleErrors(false)
	})

	t.Run("cookie_domain covers www and app", func(t *testing.T) {
		e := newE2E(t, false)
		e.partner("bob")
		www, app := e.shopAt("www.shop.localhost"), e.shopAt("app.shop.localhost")
		e.patch(fmt.Sprintf(`{"allowed_origins":[%q,%q]}`, www, app))
		e.shop.page("/", e.loader)

		// A visitor referred before the merchant set cookie_domain has a
		// host-only cookie on www.
		e.b.Navigate(www + "/?aff=alice")
		e.waitAnswer("clicks.create", 201, "created")
		if got := e.cookiesAt(www + "/"); len(got) != 1 || got[0] != "alice@www.shop.localhost" {
			t.Fatalf("cookies on www: %v, want alice's, host-only", got)
		}

		e.patch(`{"cookie_domain":"shop.localhost"}`)
		if !strings.Contains(e.loader, `po('settings','cookie_domain',"shop.localhost")`) {
			t.Fatalf("the snippet does not carry the cookie domain: %s", e.loader)
		}
		e.shop.page("/", e.loader)
		e.shop.page("/thanks", e.loader+thanks("order_2", "40.00", "cust_2"))
		e.b.Navigate(www + "/?aff=bob")
		e.waitAnswer("clicks.create", 201, "created")
		// One cookie, the domain one: the host-only one is gone.
		if got := e.cookiesAt(www + "/"); len(got) != 1 || got[0] != "bob@.shop.localhost" {
			t.Fatalf("cookies on www: %v, want bob's alone, for .shop.localhost", got)
		}

		// The app reads it, and its sale is bob's.
		e.b.Navigate(app + "/thanks")
		e.waitAnswer("transactions.create", 201, "created")
		if got := e.cookiesAt(app + "/"); len(got) != 1 || got[0] != "bob@.shop.localhost" {
			t.Errorf("cookies on app: %v, want bob's", got)
		}
		e.waitCount(1, qSaleOf, "order_2", 4000, "cust_2", "bob", 800)
		e.noConsoleErrors(false)
	})
}

func TestScriptBrowserOtherDomains(t *testing.T) {
	e := newE2E(t, false)
	shop, checkout := e.shopAt("shop.localhost"), e.shopAt("checkout.localhost")
	e.patch(fmt.Sprintf(`{"allowed_origins":[%q,%q],"link_domains":["checkout.localhost"]}`, shop, checkout))
	if !strings.Contains(e.loader, "/js/universal.js?ext=xd") {
		t.Fatalf("the snippet does not load the xd variant: %s", e.loader)
	}
	// The shop links to its checkout: a link in the page, a GET form, and a
	// link the page adds after the script has run (as an app would).
	e.shop.pageWithBody("/", e.loader, fmt.Sprintf(`<h1>Trail shop</h1>
<a id="buy" href="%[1]s/buy?plan=pro">Buy</a>
<form id="form" method="get" action="%[1]s/buy"><input name="plan" value="team"><button id="send">Go</button></form>
<a id="home" href="/about">About</a>
<script>setTimeout(() => document.body.insertAdjacentHTML('beforeend', '<a id="late" href="%[1]s/buy?plan=late">Later</a>'), 50)</script>`, checkout))
	e.shop.page("/about", e.loader)
	e.shop.page("/buy", e.loader)
	e.shop.page("/thanks", e.loader+thanks("order_1", "50.00", "cust_1"))

	e.b.Navigate(shop + "/?aff=alice")
	e.waitAnswer("clicks.create", 201, "created")
	e.waitCount(1, qClicks)

	for _, tc := range []struct{ id, plan string }{{"late", "late"}, {"buy", "pro"}, {"send", "team"}} {
		e.b.Navigate(shop + "/")
		e.b.WaitJS(scriptRan+` && document.getElementById(`+fmt.Sprintf("%q", tc.id)+`)`, e2eWait)
		e.b.Do(chromedp.Click("#" + tc.id))
		e.b.WaitJS(`location.host.startsWith('checkout.localhost') && `+scriptRan, e2eWait)
		q := browsertest.Eval[string](e.b, `location.search`)
		if v, _ := url.ParseQuery(strings.TrimPrefix(q, "?")); v.Get("po_ref") != "alice" || v.Get("plan") != tc.plan {
			t.Errorf("%s led to %s, want plan %s and po_ref alice", tc.id, q, tc.plan)
		}
		// The decorated landing's own call is no click.
		e.waitAnswer("clicks.create", 202, "ignored")
		if got := e.cookiesAt(checkout + "/"); len(got) != 1 || got[0] != "alice@checkout.localhost" {
			t.Errorf("after %s, cookies on checkout: %v, want alice's", tc.id, got)
		}
	}
	// A link within the shop is left alone.
	e.b.Navigate(shop + "/")
	e.b.WaitJS(scriptRan, e2eWait)
	e.b.Do(chromedp.Click("#home"))
	e.b.WaitJS(`location.pathname === '/about' && `+scriptRan, e2eWait)
	if q := browsertest.Eval[string](e.b, `location.search`); q != "" {
		t.Errorf("a link within the shop got %s", q)
	}

	if n := e.count(qClicks); n != 1 {
		t.Errorf("%d clicks stored, want the landing's alone", n)
	}
	// The checkout's sale is alice's.
	e.b.Navigate(checkout + "/thanks")
	e.waitAnswer("transactions.create", 201, "created")
	e.waitCount(1, qSaleOf, "order_1", 5000, "cust_1", "alice", 1000)
	e.noConsoleErrors(false)
}

func TestScriptBrowserSinglePageApp(t *testing.T) {
	e := newE2E(t, false)
	e.partner("bob")
	e.patch(`{"spa":true}`)
	if !strings.Contains(e.loader, "/js/universal.js?ext=spa") {
		t.Fatalf("the snippet does not load the spa variant: %s", e.loader)
	}
	e.shop.page("/", e.loader)
	e.b.Navigate(e.shopURL + "/")
	e.b.WaitJS(scriptRan, e2eWait)

	clicksOf := func(want ...string) {
		t.Helper()
		e.waitCount(len(want), qClicks)
		for i, k := range want {
			n := e.count(`SELECT count(*) FROM clicks c JOIN partners p ON p.id = c.partner_id
				WHERE c.program_id = {p} AND p.key = ?`, k)
			if w := strings.Count(strings.Join(want, " "), k); n != w {
				t.Errorf("click %d: %d of %s's stored, want %d", i, n, k, w)
			}
		}
	}
	// pushState to a referral link: a landing.
	e.b.Run(`history.pushState({}, '', '/pricing?aff=bob')`)
	e.b.WaitJS(`document.cookie.includes('partnero_partner=bob')`, e2eWait)
	clicksOf("bob")
	// A route without a referral changes nothing; replaceState to one is a
	// landing too.
	e.b.Run(`history.pushState({}, '', '/docs?page=2')`)
	e.b.Run(`history.replaceState({}, '', '/docs?aff=alice')`)
	e.b.WaitJS(`document.cookie.includes('partnero_partner=alice')`, e2eWait)
	clicksOf("bob", "alice")
	// Back to bob's URL (popstate): bob's again.
	e.b.Run(`history.back()`)
	e.b.WaitJS(`location.search === '?aff=bob' && document.cookie.includes('partnero_partner=bob')`, e2eWait)
	clicksOf("bob", "alice", "bob")
	if got := e.cookiesAt(e.shopURL + "/"); len(got) != 1 {
		t.Errorf("cookies %v, want one", got)
	}
	e.noConsoleErrors(false)
}

func TestScriptBrowserConsent(t *testing.T) {
	for _, tc := range []struct {
		name, patch, own string
	}{
		{name: "require_consent", patch: `{"require_consent":true}`},
		// A merchant without the setting adds the call to the snippet,
		// before the program's load call.
		{name: "the snippet's own po('consent', false)", own: `po('consent', false);`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, false)
			if tc.patch != "" {
				e.patch(tc.patch)
				if !strings.Contains(e.loader, "po('consent',false);") {
					t.Fatalf("the snippet does not start without consent: %s", e.loader)
				}
			}
			// The landing page also signs the visitor up: everything waits.
			e.shop.page("/", strings.Replace(e.loader, "po('program',", tc.own+"po('program',", 1)+`<script>po('customers', 'signup', {data: {key: 'cust_1', email: 'c@example.com'}})</script>`)
			e.b.Navigate(e.shopURL + "/?aff=alice")
			e.b.WaitJS(scriptRan, e2eWait)
			if n := browsertest.Eval[int](e.b, `__collect.length + localStorage.length + sessionStorage.length`); n != 0 {
				t.Errorf("before consent: %d requests and stored items", n)
			}
			if got := e.cookiesAt(e.shopURL + "/"); len(got) != 0 {
				t.Errorf("before consent: cookies %v", got)
			}

			// The banner's yes: the click, the cookie and the signup, in order.
			e.b.Run(`po('consent', true)`)
			e.waitAnswer("clicks.create", 201, "created")
			e.waitAnswer("customers.signup", 201, "created")
			e.b.WaitJS(clickAnswered, e2eWait)
			e.waitCount(1, qClicks)
			e.waitCount(1, `SELECT count(*) FROM customers c JOIN partners p ON p.id = c.partner_id
				WHERE c.program_id = {p} AND c.key = 'cust_1' AND p.key = 'alice'`)
			if got := browsertest.Eval[string](e.b, `__collect.map(c => c.type).join(' ')`); got != "clicks.create customers.signup" {
				t.Errorf("sent %q", got)
			}
			e.noConsoleErrors(false)
		})
	}
}

func TestScriptBrowserDoNotTrack(t *testing.T) {
	e := newE2E(t, false)
	e.patch(`{"respect_dnt":true}`)
	// The load event waits for a script added while the page parses, so at
	// readyState complete the script has run if the loader added it.
	loaded := `document.readyState === 'complete' && performance.getEntriesByType('resource').some(r => r.name.includes('/js/universal.js'))`
	for _, tc := range []struct{ name, signal string }{
		{"Do-Not-Track", `Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})`},
		{"Global Privacy Control", `Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.shop.page("/", `<script>`+tc.signal+`</script>`+e.loader)
			e.b.Navigate(e.shopURL + "/?aff=alice")
			e.b.WaitJS(`document.readyState === 'complete'`, e2eWait)
			if browsertest.Eval[bool](e.b, loaded) || browsertest.Eval[bool](e.b, scriptRan) {
				t.Errorf("the script loaded")
			}
			if n := browsertest.Eval[int](e.b, `__collect.length + localStorage.length`); n != 0 {
				t.Errorf("%d requests and stored items", n)
			}
		})
	}
	// Without either signal the same snippet tracks.
	e.shop.page("/", e.loader)
	e.b.Navigate(e.shopURL + "/?aff=alice")
	e.b.WaitJS(loaded, e2eWait)
	e.waitAnswer("clicks.create", 201, "created")
	e.waitCount(1, qClicks)
	if got := e.cookiesAt(e.shopURL + "/"); len(got) != 1 {
		t.Errorf("cookies %v, want alice's", got)
	}
	e.noConsoleErrors(false)
}

// sameOriginProxy is the merchant's reverse proxy: the shop's pages, and
// potrack under /potrack/, on one origin. It passes the browser's Host on,
// as nginx's proxy_set_header Host $host does, and keeps each /collect
// answer's Set-Cookie headers and body.
type sameOriginProxy struct {
	shop  http.Handler
	proxy *httputil.ReverseProxy

	mu      sync.Mutex
	answers []string // "Set-Cookie headers | body" of each /collect answer
}

func (p *sameOriginProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/potrack/") {
		p.shop.ServeHTTP(w, r)
		return
	}
	p.proxy.ServeHTTP(w, r)
}

func TestScriptBrowserServerSetsTheCookieSameOrigin(t *testing.T) {
	e := newE2E(t, false)
	target, _ := url.Parse(e.tracker)
	p := &sameOriginProxy{shop: e.shop}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path = strings.TrimPrefix(r.In.URL.Path, "/potrack")
			r.Out.Host = r.In.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.URL.Path != "/collect" {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			resp.Body = io.NopCloser(strings.NewReader(string(body)))
			p.mu.Lock()
			p.answers = append(p.answers, strings.Join(resp.Header.Values("Set-Cookie"), "; ")+" | "+string(body))
			p.mu.Unlock()
			return nil
		},
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	site := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	// A lifetime the script never writes on its own (its default is 30).
	e.patch(fmt.Sprintf(`{"allowed_origins":[%q],"cookie_days":90}`, site))

	// The script and its calls go through the proxy: api_host names it.
	loader := strings.Replace(e.loader, e.tracker+"/js/universal.js", site+"/potrack/js/universal.js", 1)
	loader = strings.Replace(loader, "po('program',", "po('settings','api_host','"+site+"/potrack');po('program',", 1)
	// cookieWrites counts the page's own writes of the referral cookie.
	spy := `<script>window.__writes=0;(function(d){var s=d.set,g=d.get;Object.defineProperty(Document.prototype,'cookie',{get(){return g.call(this)},set(v){if(v.startsWith('partnero_partner='))__writes++;s.call(this,v)}})})(Object.getOwnPropertyDescriptor(Document.prototype,'cookie'))</script>`
	e.shop.page("/", spy+loader)

	e.b.Navigate(site + "/?aff=alice")
	e.waitAnswer("clicks.create", 201, "created")
	e.b.WaitJS(`JSON.parse(localStorage.po || '{}').c === 90`, e2eWait)
	e.waitCount(1, qClicks)
	p.mu.Lock()
	answers := append([]string{}, p.answers...)
	p.mu.Unlock()
	if len(answers) != 1 || !strings.Contains(answers[0], "partnero_partner=alice; Max-Age=7776000; Path=/; SameSite=Lax") ||
		!strings.Contains(answers[0], `"cookie_set":true`) || strings.Contains(answers[0], `"cookie":`) {
		t.Fatalf("the answers through the proxy: %q, want one setting alice's cookie for 90 days", answers)
	}
	c := e.b.Cookie(site+"/", "partnero_partner")
	if want := float64(time.Now().Add(90 * 24 * time.Hour).Unix()); c == nil || c.Value != "alice" || c.Expires < want-120 || c.Expires > want+120 {
		t.Fatalf("cookie %+v, want alice's for 90 days", c)
	}
	// The script wrote its cookie once at the landing (expiring a host-only
	// one, then writing: two writes) and left the server's alone after.
	if n := browsertest.Eval[int](e.b, `__writes`); n != 2 {
		t.Errorf("the page wrote the cookie %d times, want 2 (the landing's)", n)
	}
	e.noConsoleErrors(false)
}

func TestScriptBrowserNoJunkClicks(t *testing.T) {
	e := newE2E(t, false)
	e.partner("bob")
	e.shop.page("/", e.loader)
	e.shop.page("/other", e.loader)
	e.b.Navigate(e.shopURL + "/?aff=alice")
	e.waitAnswer("clicks.create", 201, "created")
	e.waitCount(1, qClicks)

	// A reload, and a second landing for alice within 30 minutes: the
	// script decides while it replays the queue, so once it has run a
	// click would be in __collect.
	e.b.Run(`location.reload()`)
	e.b.WaitJS(scriptRan+` && performance.getEntriesByType('navigation')[0].type === 'reload'`, e2eWait)
	e.b.Navigate(e.shopURL + "/other?aff=alice&utm_source=news")
	e.b.WaitJS(scriptRan, e2eWait)
	if n := browsertest.Eval[int](e.b, `__collect.length`); n != 0 {
		t.Errorf("a second landing for alice sent %d requests", n)
	}
	// A prerendered page (document.prerendering, as Chromium sets it)
	// counts only when shown.
	e.shop.page("/pre", `<script>Object.defineProperty(document, 'prerendering', {value: true, configurable: true})</script>`+e.loader)
	e.b.Navigate(e.shopURL + "/pre?aff=bob")
	e.b.WaitJS(scriptRan, e2eWait)
	if n := browsertest.Eval[int](e.b, `__collect.length`); n != 0 {
		t.Errorf("a prerendered page sent %d requests", n)
	}
	if n := e.count(qClicks); n != 1 {
		t.Errorf("%d clicks stored, want 1", n)
	}
	e.b.Run(`Object.defineProperty(document, 'prerendering', {value: false}); document.dispatchEvent(new Event('prerenderingchange'))`)
	e.waitAnswer("clicks.create", 201, "created")
	e.waitCount(2, qClicks)
	e.noConsoleErrors(false)
}
