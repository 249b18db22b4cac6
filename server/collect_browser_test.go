package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/chromedp/cdproto/network"
	"github.com/potrack/potrack/internal/testenv"
	"io"
	"net"
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

// End-to-end tests of JS tracking in a real Chromium: the real script from
// the real server, the real /collect and the real database. The tracker
// listens on http://127.0.0.1:PORT; the merchant's shop is another site,
// http://localhost:SHOPPORT, and pastes the loader exactly as the admin API
// hands it out. Every test asserts on the stored rows, not only on what the
// page saw.

const e2eWait = 15 * time.Second

// partneroPublicLoader is Partnero's public loader, verbatim but for the URL
// (the same text as in snippet/browser_test.go).
const partneroPublicLoader = `(function(p,t,n,e,r,o){p['__partnerObject']=r;function f(){var c={a:arguments,q:[]};var r=this.push(c);return "number"!=typeof r?r:f.bind(c.q);}f.q=f.q||[];p[r]=p[r]||f.bind(f.q);p[r].q=p[r].q||f.q;o=t.createElement(n);var _=function(e){return Math.random().toString(36).substring(2,e)};o.src=e+'?v'+_(8);o.async=1;t.getElementsByTagName('head')[0].appendChild(o)})(window,document,'script','https://TRACKER/js/universal.js','po');`

// collectSpy records in window.__collect each /collect request the page
// makes, in the order the script sends them: the call type, then the status
// (-1 on a network error) and the answer's status or error code. It wraps
// fetch before the loader runs, as any merchant script could.
const collectSpy = `window.__collect=[];(function(f){window.fetch=function(u,o){var e={type:'',status:0,code:''};try{e.type=JSON.parse(o.body).type}catch(x){}__collect.push(e);var p=f.apply(this,arguments);p.then(function(r){r.clone().json().then(function(j){e.code=j.error?j.error.code:j.status},function(){e.code='?'}).then(function(){e.status=r.status})},function(){e.status=-1});return p}})(window.fetch);`

// e2eGate stands between the browser and the tracker when a test needs to
// break the network: it forwards everything, but can answer /collect with a
// 503 or drop the connection (an outage), or hold signups back for a while
// (a network that lets a later request overtake an earlier one).
type e2eGate struct {
	proxy *httputil.ReverseProxy

	mu          sync.Mutex
	outage      string // "", "503" or "drop"
	signupDelay time.Duration
}

func (g *e2eGate) set(outage string, signupDelay time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.outage, g.signupDelay = outage, signupDelay
}

func (g *e2eGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	outage, delay := g.outage, g.signupDelay
	g.mu.Unlock()
	if r.URL.Path != "/collect" || r.Method != http.MethodPost {
		g.proxy.ServeHTTP(w, r)
		return
	}
	switch outage {
	case "503":
		// An overloaded server that still speaks CORS, so the script
		// sees the status rather than a network error.
		w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"unavailable","message":"down for maintenance"}}`)
		return
	case "drop":
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if delay > 0 && bytes.Contains(body, []byte(`"type":"customers.signup"`)) {
		time.Sleep(delay)
	}
	g.proxy.ServeHTTP(w, r)
}

// e2eShop is the merchant's site. Pages are found by path; every page wraps
// fetch with collectSpy, then has the given head (loader and calls) and
// body (a heading unless given). The Host does not matter: the same server
// is every *.localhost name a test gives it.
type e2eShop struct {
	*httptest.Server
	mu     sync.Mutex
	pages  map[string]string
	bodies map[string]string
}

func (s *e2eShop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/favicon.ico" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.mu.Lock()
	head, ok := s.pages[r.URL.Path]
	body := s.bodies[r.URL.Path]
	s.mu.Unlock()
	if body == "" {
		body = `<h1>Trail shop</h1>`
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, `<!doctype html><html><head><meta charset="utf-8"><title>Trail shop</title><script>`+
		collectSpy+`</script>`+head+`</head><body>`+body+`</body></html>`)
}

func (s *e2eShop) page(path, head string) { s.pageWithBody(path, head, "") }

func (s *e2eShop) pageWithBody(path, head, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages[path] = head
	s.bodies[path] = body
}

// e2eEnv is one tracker, one shop, one program with a partner and one
// fresh browser.
type e2eEnv struct {
	t       *testing.T
	ts      *testServer
	gate    *e2eGate // nil unless asked for
	tracker string   // potrack as browsers reach it
	shopURL string   // the shop's origin, http://localhost:PORT
	shop    *e2eShop
	b       *browsertest.Browser
	prog    testProgram
	loader  string // the install snippet from the admin API
}

const e2ePartner = "alice"

func newE2E(t *testing.T, withGate bool) *e2eEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &e2eEnv{t: t, tracker: "http://" + ln.Addr().String()}
	if withGate {
		target, _ := url.Parse(e.tracker)
		e.gate = &e2eGate{proxy: httputil.NewSingleHostReverseProxy(target)}
		gateSrv := httptest.NewServer(e.gate)
		t.Cleanup(gateSrv.Close)
		e.tracker = gateSrv.URL
	}
	e.shop = &e2eShop{pages: map[string]string{}, bodies: map[string]string{}}
	e.shop.Server = httptest.NewServer(e.shop)
	t.Cleanup(e.shop.Close)
	e.shopURL = strings.Replace(e.shop.URL, "127.0.0.1", "localhost", 1)

	// PublicURL is what the admin API writes into the snippet, as in
	// production.
	e.ts = newTestServer(t, func(c *Config) { c.PublicURL = e.tracker })
	go e.ts.App().Listener(ln)
	t.Cleanup(func() { e.ts.App().ShutdownWithTimeout(5 * time.Second) })

	e.prog = e.ts.createProgram(fmt.Sprintf(`{"name":"Trail shop","js_tracking":true,"cookie_days":7,
		"commission":{"type":"percent","value":"20"},"allowed_origins":[%q]}`, e.shopURL))
	if r := e.ts.api(e.prog, "POST", "/v1/partners", `{"key":"`+e2ePartner+`","email":"alice@example.com"}`); r.Status != 201 {
		t.Fatalf("create partner: %d %s", r.Status, r.Body)
	}
	r := e.ts.admin("GET", "/admin/api/programs/"+e.prog.ID, "")
	if r.Status != 200 {
		t.Fatalf("get program: %d %s", r.Status, r.Body)
	}
	e.loader, _ = r.JSON(t)["data"].(map[string]any)["snippet"].(string)
	if !strings.Contains(e.loader, e.tracker+"/js/universal.js") || !strings.Contains(e.loader, e.prog.ID) {
		t.Fatalf("the admin API's snippet %q does not load %s/js/universal.js for %s", e.loader, e.tracker, e.prog.ID)
	}
	e.b = browsertest.New(t)
	return e
}

// count is a counting query; "{p}" stands for the program id.
func (e *e2eEnv) count(query string, args ...any) int {
	e.t.Helper()
	return e.ts.count(strings.ReplaceAll(query, "{p}", "'"+e.prog.ID+"'"), args...)
}

// waitCount waits until the query counts want rows.
func (e *e2eEnv) waitCount(want int, query string, args ...any) {
	e.t.Helper()
	got := -1
	browsertest.WaitFor(e.t, e2eWait, fmt.Sprintf("%d rows of %s %v", want, query, args), func() bool {
		got = e.count(query, args...)
		return got == want
	})
}

// waitAnswer waits until the page's /collect call of type typ has got the
// status and answer code (the "status" of a success, the error code of a
// failure, "" for a network error).
func (e *e2eEnv) waitAnswer(typ string, status int, code string) {
	e.t.Helper()
	defer e.logCalls()
	e.b.WaitJS(fmt.Sprintf(`__collect.some(e => e.type === %q && e.status === %d && e.code === %q)`, typ, status, code), e2eWait)
}

// logCalls shows what the page sent and got, when the test has failed.
func (e *e2eEnv) logCalls() {
	if !e.t.Failed() {
		return
	}
	calls, err := chromedp.Run(e.b.Ctx, chromedp.Evaluate[string](`JSON.stringify(window.__collect)`))
	e.t.Logf("the page's /collect calls: %s (%v)", calls, err)
}

type e2eOutboxEntry struct {
	B string `json:"b"`
	N int    `json:"n"`
	T int64  `json:"t"`
}

// outbox is the script's retry list in the shop's localStorage.
func (e *e2eEnv) outbox() []e2eOutboxEntry {
	e.t.Helper()
	raw := browsertest.Eval[string](e.b, `localStorage.po_outbox || "[]"`)
	var list []e2eOutboxEntry
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		e.t.Fatalf("outbox %q: %v", raw, err)
	}
	return list
}

// clickAnswered is true once the script has handled a click's answer for
// e2ePartner: the cookie is the program's (cookie_days 7), not the one
// written at once from the landing URL.
const clickAnswered = `document.cookie.includes('partnero_partner=` + e2ePartner + `') && JSON.parse(localStorage.po || '{}').c === 7`

// land follows the partner's referral link and waits for the cookie.
func (e *e2eEnv) land() {
	e.t.Helper()
	e.shop.page("/", e.loader)
	e.b.Navigate(e.shopURL + "/?aff=" + e2ePartner)
	e.waitAnswer("clicks.create", 201, "created")
	e.b.WaitJS(clickAnswered, e2eWait)
}

// noConsoleErrors fails the test on console errors and exceptions. With
// failedRequests, the browser's own reports of failed requests (expected
// when a test makes /collect fail) are let through.
func (e *e2eEnv) noConsoleErrors(failedRequests bool) {
	e.t.Helper()
	for _, m := range e.b.Console() {
		if m.Type != chromedp.ConsoleError && !m.IsException() {
			continue
		}
		if failedRequests && m.Source == "network" && strings.HasPrefix(m.URL, e.tracker+"/collect") {
			continue
		}
		e.t.Errorf("console error: %s (%s)", m, m.URL)
	}
}

// thanks is a thank-you page's sale, as a merchant writes it.
func thanks(order, amount, customer string) string {
	return fmt.Sprintf(`<script>po('transactions', 'create', {data: {key: %q, amount: %q, amount_units: 'USD',
  customer: {key: %q, email: %q}}, options: {create_customer: true}});</script>`, order, amount, customer, customer+"@example.com")
}

// qSaleOf counts the program's transaction with the key, from source js,
// unverified, with the amount, whose customer belongs to the partner and
// whose reward (to that partner) is rewardMinor.
const qSaleOf = `SELECT count(*) FROM transactions t
	JOIN customers c ON c.id = t.customer_id
	JOIN partners p ON p.id = c.partner_id
	JOIN rewards r ON r.transaction_id = t.id AND r.partner_id = p.id
	WHERE t.program_id = {p} AND t.key = ? AND t.source = 'js' AND t.verified = FALSE
	AND t.amount_minor = ? AND t.currency = 'USD' AND t.status = 'ok'
	AND c.key = ? AND p.key = ? AND r.amount_minor = ? AND r.currency = 'USD'`

func TestCollectBrowserReferralCookie(t *testing.T) {
	e := newE2E(t, false)
	e.shop.page("/", e.loader)
	landing := e.shopURL + "/?aff=" + e2ePartner + "&utm_source=blog"
	e.b.Navigate(landing)

	e.waitCount(1, `SELECT count(*) FROM clicks c JOIN partners p ON p.id = c.partner_id
		WHERE c.program_id = {p} AND p.key = ? AND c.url = ?`, e2ePartner, landing)
	if n := e.count(`SELECT count(*) FROM clicks`); n != 1 {
		t.Errorf("%d clicks stored, want 1", n)
	}
	// No client IP anywhere: no such column, and the loopback address the
	// browser came from is in no stored value (the shop is "localhost").
	columns := `SELECT name FROM pragma_table_info('clicks')`
	if testenv.OnPostgres() {
		columns = `SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'clicks'`
	}
	if n := e.count(`SELECT count(*) FROM (` + columns + `) AS c WHERE lower(name) LIKE '%ip%' OR lower(name) LIKE '%addr%'`); n != 0 {
		t.Errorf("clicks has %d IP-like columns", n)
	}
	if n := e.count(`SELECT count(*) FROM clicks WHERE url || referrer LIKE '%127.0.0.1%'`); n != 0 {
		t.Errorf("%d clicks store the client's address", n)
	}

	// The cookie is written at once for the default 30 days, then for the
	// program's 7 once the click's answer is handled (the script keeps
	// the days it was told in localStorage.po, after the cookie).
	e.b.WaitJS(clickAnswered, e2eWait)
	c := e.b.Cookie(e.shopURL+"/", "partnero_partner")
	if c == nil {
		t.Fatal("Chromium has no partnero_partner cookie for the shop")
	}
	want := time.Now().Add(7 * 24 * time.Hour).Unix()
	if got := int64(c.Expires); got < want-60 || got > want+60 {
		t.Errorf("cookie expires %v, want %v (cookie_days 7) within a minute", time.Unix(got, 0), time.Unix(want, 0))
	}
	if c.Value != e2ePartner || c.Domain != "localhost" || c.Path != "/" || c.SameSite != network.CookieSameSiteLax || c.Secure || c.Session {
		t.Errorf("cookie %+v, want %s on localhost, path /, SameSite=Lax, persistent, not Secure on http", c, e2ePartner)
	}
	if c := e.b.Cookie(e.tracker+"/", "partnero_partner"); c != nil {
		t.Errorf("the tracker's site got the cookie: %+v", c)
	}
	e.noConsoleErrors(false)
}

func TestCollectBrowserThankYouSale(t *testing.T) {
	e := newE2E(t, false)
	e.land()
	e.shop.page("/thanks", e.loader+thanks("order_1", "49.90", "cust_1"))
	// Reached by a link, as a visitor would.
	e.b.Run(`location.href = '/thanks'`)
	e.waitAnswer("transactions.create", 201, "created")

	e.waitCount(1, qSaleOf, "order_1", 4990, "cust_1", e2ePartner, 998)
	if n := e.count(`SELECT count(*) FROM transactions`); n != 1 {
		t.Errorf("%d transactions stored, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM customers WHERE program_id = {p} AND key = 'cust_1' AND email = 'cust_1@example.com'`); n != 1 {
		t.Errorf("customer cust_1 with its email stored %d times, want 1", n)
	}
	// The REST API shows it the same way.
	r := e.ts.api(e.prog, "GET", "/v1/transactions/order_1", "")
	for _, want := range []string{`"source":"js"`, `"verified":false`, `"amount":49.90,`, `"amount":9.98,`, `"key":"` + e2ePartner + `"`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("GET /v1/transactions/order_1: %d %s\nwant %s", r.Status, r.Body, want)
		}
	}
	e.b.WaitJS(`localStorage.po_outbox === '[]'`, e2eWait)
	e.noConsoleErrors(false)
}

func TestCollectBrowserSaleDuringOutage(t *testing.T) {
	for _, outage := range []string{"503", "drop"} {
		t.Run(outage, func(t *testing.T) {
			e := newE2E(t, true)
			e.land()
			e.shop.page("/thanks", e.loader+thanks("order_3", "25.00", "cust_3"))

			e.gate.set(outage, 0)
			e.b.Navigate(e.shopURL + "/thanks")
			if outage == "503" {
				e.waitAnswer("transactions.create", 503, "unavailable")
			} else {
				e.waitAnswer("transactions.create", -1, "")
			}
			list := e.outbox()
			if len(list) != 1 || list[0].N != 1 || !strings.Contains(list[0].B, `"order_3"`) {
				t.Fatalf("outbox %+v, want the failed sale after 1 attempt", list)
			}
			if n := e.count(`SELECT count(*) FROM transactions`); n != 0 {
				t.Fatalf("%d transactions stored while /collect was down", n)
			}

			// Back up, and the buyer has moved on at once: the thank-you
			// page's own retry never runs. The next page, on any page with
			// the loader, sends the sale when its retry is due (a second
			// after the failure), with no reload and no time travel.
			e.gate.set("", 0)
			e.b.Navigate(e.shopURL + "/")
			e.waitAnswer("transactions.create", 201, "created")
			e.waitCount(1, qSaleOf, "order_3", 2500, "cust_3", e2ePartner, 500)
			e.b.WaitJS(`localStorage.po_outbox === '[]'`, e2eWait)

			// And only once, however many pages follow.
			e.b.Navigate(e.shopURL + "/")
			e.b.WaitJS(`window.po && !po.q`, e2eWait)
			if n := browsertest.Eval[int](e.b, `__collect.length`); n != 0 {
				t.Errorf("%d requests after the sale was delivered", n)
			}
			if n := e.count(`SELECT count(*) FROM transactions`); n != 1 {
				t.Errorf("%d transactions stored, want 1", n)
			}
			e.noConsoleErrors(true)
		})
	}
}

// TestCollectBrowserSaleRetriedInThePage: a buyer who stays on the
// thank-you page while /collect is unreachable has the sale stored when it
// comes back, by the page itself, exactly once.
func TestCollectBrowserSaleRetriedInThePage(t *testing.T) {
	e := newE2E(t, true)
	e.land()
	e.shop.page("/thanks", e.loader+thanks("order_4", "30.00", "cust_4"))
	e.gate.set("drop", 0)
	e.b.Navigate(e.shopURL + "/thanks")
	e.waitAnswer("transactions.create", -1, "")
	e.gate.set("", 0)
	e.waitAnswer("transactions.create", 201, "created")
	e.waitCount(1, qSaleOf, "order_4", 3000, "cust_4", e2ePartner, 600)
	e.b.WaitJS(`localStorage.po_outbox === '[]'`, e2eWait)
	if n := e.count(`SELECT count(*) FROM transactions`); n != 1 {
		t.Errorf("%d transactions stored, want 1", n)
	}
	e.noConsoleErrors(true)
}

func TestCollectBrowserQueuedCallsInOrder(t *testing.T) {
	for _, tc := range []struct {
		name        string
		signupDelay time.Duration
	}{
		{"direct", 0},
		// The signup is held back on the way, so a transaction sent
		// alongside it, rather than after its answer, would arrive first.
		{"signup overtaken on the network", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, true)
			e.land()
			e.gate.set("", tc.signupDelay)
			// Right after the loader, before the script has arrived: the
			// transaction needs the customer the signup creates
			// (create_customer false), so only this order stores both.
			e.shop.page("/signup", e.loader+`<script>
po('customers', 'signup', {data: {key: 'cust_q', name: 'Quinn', email: 'quinn@example.com'}});
po('transactions', 'create', {data: {key: 'order_q', amount: '30.00', amount_units: 'USD', customer: {key: 'cust_q'}},
  options: {create_customer: false}});
window.__queued = Array.isArray(po.q) ? po.q.length : -1;
</script>`)
			e.b.Navigate(e.shopURL + "/signup")
			e.waitAnswer("customers.signup", 201, "created")
			e.waitAnswer("transactions.create", 201, "created")
			if n := browsertest.Eval[int](e.b, `__queued`); n != 3 {
				t.Errorf("%d calls queued before the script loaded, want 3 (program, signup, sale)", n)
			}
			if got := browsertest.Eval[[]string](e.b, `__collect.map(e => e.type)`); strings.Join(got, ",") != "customers.signup,transactions.create" {
				t.Errorf("sent %v", got)
			}
			if n := e.count(`SELECT count(*) FROM customers c JOIN partners p ON p.id = c.partner_id
				WHERE c.program_id = {p} AND c.key = 'cust_q' AND c.name = 'Quinn' AND p.key = ?`, e2ePartner); n != 1 {
				t.Errorf("signup stored %d times with its partner, want 1", n)
			}
			e.waitCount(1, qSaleOf, "order_q", 3000, "cust_q", e2ePartner, 600)
			e.b.WaitJS(`localStorage.po_outbox === '[]'`, e2eWait)
			e.noConsoleErrors(false)
		})
	}
}

func TestCollectBrowserReloadDoesNotDoubleCount(t *testing.T) {
	for _, tc := range []struct {
		name, call string
	}{
		{"merchant key", thanks("order_5", "12.50", "cust_5")},
		{"keyless", `<script>po('transactions', 'create', {data: {amount: '12.50', customer: {key: 'cust_5'}}, options: {create_customer: true}});</script>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, false)
			e.land()
			e.shop.page("/thanks", e.loader+tc.call)
			e.b.Navigate(e.shopURL + "/thanks?order=5")
			e.waitAnswer("transactions.create", 201, "created")
			const qStored = `SELECT count(*) FROM transactions t JOIN customers c ON c.id = t.customer_id
				WHERE t.program_id = {p} AND t.key = ? AND t.amount_minor = 1250 AND c.key = 'cust_5'`
			key := "order_5"
			if tc.name == "keyless" {
				// The script made the key and remembers it for this page.
				key = browsertest.Eval[string](e.b, `Object.keys(sessionStorage).filter(k => k.startsWith('po_k')).map(k => sessionStorage[k]).join()`)
			}
			e.waitCount(1, qStored, key)

			for reload := 1; reload <= 2; reload++ {
				e.b.Do(chromedp.Reload())
				e.waitAnswer("transactions.create", 200, "duplicate")
			}
			if n := e.count(`SELECT count(*) FROM transactions`); n != 1 {
				t.Errorf("%d transactions after 2 reloads, want 1", n)
			}
			if n := e.count(qStored, key); n != 1 {
				t.Errorf("transaction %q stored %d times, want 1", key, n)
			}
			if n := e.count(`SELECT count(*) FROM rewards`); n != 1 {
				t.Errorf("%d rewards after 2 reloads, want 1", n)
			}
			e.b.WaitJS(`localStorage.po_outbox === '[]'`, e2eWait)
			e.noConsoleErrors(false)
		})
	}
}

func TestCollectBrowserJSTrackingOff(t *testing.T) {
	e := newE2E(t, false)
	e.land()
	if r := e.ts.admin("PATCH", "/admin/api/programs/"+e.prog.ID, `{"js_tracking":false}`); r.Status != 200 {
		t.Fatalf("turn JS tracking off: %d %s", r.Status, r.Body)
	}
	e.shop.page("/thanks", e.loader+thanks("order_6", "40.00", "cust_6"))
	e.b.Navigate(e.shopURL + "/thanks")
	e.waitAnswer("transactions.create", 403, "js_tracking_disabled")
	// A refusal is final: the entry leaves the outbox at once.
	if list := e.outbox(); len(list) != 0 {
		t.Errorf("outbox %+v after 403 js_tracking_disabled, want it empty", list)
	}
	for table, n := range map[string]int{
		"transactions": e.count(`SELECT count(*) FROM transactions`),
		"customers":    e.count(`SELECT count(*) FROM customers`),
		"rewards":      e.count(`SELECT count(*) FROM rewards`),
	} {
		if n != 0 {
			t.Errorf("%d %s stored with JS tracking off", n, table)
		}
	}
	e.noConsoleErrors(true)
}

func TestCollectBrowserPartneroLoader(t *testing.T) {
	e := newE2E(t, false)
	// Partnero's install: its loader with only the URL changed, then the
	// program call.
	loader := `<script>` + strings.Replace(partneroPublicLoader, "https://TRACKER", e.tracker, 1) +
		`po('program', '` + e.prog.ID + `', 'load');</script>`
	e.shop.page("/", loader)
	e.shop.page("/thanks", loader+thanks("order_7", "80.00", "cust_7"))

	e.b.Navigate(e.shopURL + "/?aff=" + e2ePartner)
	e.waitCount(1, `SELECT count(*) FROM clicks c JOIN partners p ON p.id = c.partner_id WHERE c.program_id = {p} AND p.key = ?`, e2ePartner)
	e.b.WaitJS(`document.cookie.includes('partnero_partner=`+e2ePartner+`')`, e2eWait)
	e.b.Run(`location.href = '/thanks'`)
	e.waitAnswer("transactions.create", 201, "created")
	e.waitCount(1, qSaleOf, "order_7", 8000, "cust_7", e2ePartner, 1600)
	e.noConsoleErrors(false)
}

// TestCollectBrowserReferralSurvivesAnAdBlocker: with /collect blocked on
// the landing page (Chromium's own request blocking, as an ad blocker does
// it), the referral cookie is written from the landing URL anyway, and the
// sale made later, when /collect gets through, is stored for the partner.
func TestCollectBrowserReferralSurvivesAnAdBlocker(t *testing.T) {
	e := newE2E(t, false)
	e.shop.page("/", e.loader)
	e.shop.page("/thanks", e.loader+thanks("order_ab", "20.00", "cust_ab"))
	e.b.BlockURLs(e.tracker + "/collect")
	e.b.Navigate(e.shopURL + "/?aff=" + e2ePartner)
	e.b.WaitJS(`document.cookie.includes('partnero_partner=`+e2ePartner+`')`, e2eWait)
	if c := e.b.Cookie("", "partnero_partner"); c == nil || c.Value != e2ePartner {
		t.Fatalf("cookie %+v after a landing with /collect blocked, want %s", c, e2ePartner)
	}
	if n := e.count(`SELECT count(*) FROM clicks`); n != 0 {
		t.Fatalf("%d clicks stored while /collect was blocked", n)
	}
	e.b.BlockURLs()
	e.b.Run(`location.href = '/thanks'`)
	e.waitCount(1, qSaleOf, "order_ab", 2000, "cust_ab", e2ePartner, 400)
	e.noConsoleErrors(true)
}
