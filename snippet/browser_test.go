package snippet

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/potrack/potrack/internal/browsertest"
)

// The browser tests load the real bundle into Chromium. The tracker (script
// and a fake /collect) runs on http://127.0.0.1:PORT and the merchant's shop
// on http://localhost:PORT, so the script runs cross-site, as it does in
// production.

const wait = 10 * time.Second

// partneroLoader is Partnero's public loader, verbatim but for the URL.
const partneroLoader = `(function(p,t,n,e,r,o){p['__partnerObject']=r;function f(){var c={a:arguments,q:[]};var r=this.push(c);return "number"!=typeof r?r:f.bind(c.q);}f.q=f.q||[];p[r]=p[r]||f.bind(f.q);p[r].q=p[r].q||f.q;o=t.createElement(n);var _=function(e){return Math.random().toString(36).substring(2,e)};o.src=e+'?v'+_(8);o.async=1;t.getElementsByTagName('head')[0].appendChild(o)})(window,document,'script','https://TRACKER/js/universal.js','po');`

// collectCall is one request the fake /collect received.
type collectCall struct {
	Program  string         `json:"program"`
	Type     string         `json:"type"`
	Data     map[string]any `json:"data"`
	Options  map[string]any `json:"options"`
	Partner  map[string]any `json:"partner"`
	URL      string         `json:"url"`
	Referrer string         `json:"referrer"`

	contentType string
	origin      string
	status      int
}

func (c collectCall) partnerKey() string {
	k, _ := c.Partner["key"].(string)
	return k
}

func (c collectCall) dataKey() string {
	k, _ := c.Data["key"].(string)
	return k
}

// Modes of the fake /collect.
const (
	modeNormal = "normal" // clicks: 201 for a known partner, else 202; others 201
	mode503    = "503"
	mode429    = "429"
	mode400    = "400"
	modeDrop   = "drop" // close the connection without an answer
)

// tracker serves the bundled script and a fake /collect.
type tracker struct {
	*httptest.Server
	mu          sync.Mutex
	calls       []collectCall
	mode        string
	partners    map[string]bool
	cookieDays  int
	attribution string
}

func newTracker(t *testing.T, a Scripts) *tracker {
	tr := &tracker{mode: modeNormal, partners: map[string]bool{"alice": true, "bob": true}, cookieDays: 30, attribution: "last"}
	app := fiber.New()
	app.Get("/js/universal.js", a.Handler())
	app.Get("/po.js", a.Handler())
	script := adaptor.FiberApp(app)
	mux := http.NewServeMux()
	mux.Handle("/js/universal.js", script)
	mux.Handle("/po.js", script)
	mux.HandleFunc("/collect", tr.collect)
	tr.Server = httptest.NewServer(mux)
	t.Cleanup(tr.Close)
	return tr
}

func (tr *tracker) set(f func(tr *tracker)) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	f(tr)
}

// received returns the calls of the given type (all when typ is empty).
func (tr *tracker) received(typ string) []collectCall {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []collectCall
	for _, c := range tr.calls {
		if typ == "" || c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// waitReceived waits until n calls of the type have arrived, and returns them.
func (tr *tracker) waitReceived(t *testing.T, typ string, n int) []collectCall {
	t.Helper()
	var got []collectCall
	browsertest.WaitFor(t, wait, fmt.Sprintf("%d %s call(s) at %s", n, typ, tr.URL), func() bool {
		got = tr.received(typ)
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("%d %s calls, want %d: %+v", len(got), typ, n, got)
	}
	return got
}

var affPath = regexp.MustCompile(`/aff/([^/?#]+)`)

func (tr *tracker) collect(w http.ResponseWriter, r *http.Request) {
	// Like the real server: echo allowed origins, or the script cannot read
	// the answer (and a click's cookie is never set).
	if o := r.Header.Get("Origin"); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Vary", "Origin")
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var c collectCall
	if err := json.Unmarshal(raw, &c); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.contentType = r.Header.Get("Content-Type")
	c.origin = r.Header.Get("Origin")

	tr.mu.Lock()
	mode, days, attribution := tr.mode, tr.cookieDays, tr.attribution
	status, answer := http.StatusCreated, `{"status":"created"}`
	switch mode {
	case mode503:
		status, answer = http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"down"}}`
	case mode429:
		w.Header().Set("Retry-After", "60")
		status, answer = http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"slow down"}}`
	case mode400:
		status, answer = http.StatusBadRequest, `{"error":{"code":"bad_request","message":"no"}}`
	case modeDrop:
		status = 0
	default:
		if c.Type == "clicks.create" {
			key := referral(c.URL)
			if tr.partners[key] {
				// As the server answers: cookie is what the script
				// writes, absent when first attribution keeps the cookie
				// the call carried.
				a := map[string]any{"status": "created", "partner": key, "cookie_days": days, "attribution": attribution, "cookie": key}
				if attribution == "first" && c.partnerKey() != "" {
					delete(a, "cookie")
				}
				b, _ := json.Marshal(a)
				answer = string(b)
			} else {
				status, answer = http.StatusAccepted, `{"status":"ignored"}`
			}
		}
	}
	c.status = status
	tr.calls = append(tr.calls, c)
	tr.mu.Unlock()

	if status == 0 {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

// referral reads the partner key from a landing URL, as the server does with
// the default referral_params.
func referral(landing string) string {
	u, err := url.Parse(landing)
	if err != nil {
		return ""
	}
	if k := u.Query().Get("aff"); k != "" {
		return k
	}
	if m := affPath.FindStringSubmatch(u.Path); m != nil {
		return m[1]
	}
	return ""
}

// shop serves the merchant's pages. A page is found by its exact path, else by
// the longest registered prefix ending in "/".
type shop struct {
	*httptest.Server
	mu    sync.Mutex
	pages map[string]string
}

func newShop(t *testing.T) *shop {
	s := &shop{pages: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.mu.Lock()
		html, ok := s.pages[r.URL.Path]
		if !ok {
			best := ""
			for p, h := range s.pages {
				if strings.HasSuffix(p, "/") && strings.HasPrefix(r.URL.Path, p) && len(p) > len(best) {
					best, html, ok = p, h, true
				}
			}
		}
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, html)
	}))
	t.Cleanup(s.Close)
	return s
}

// url is the shop's address under the name localhost: another site than the
// tracker's 127.0.0.1.
func (s *shop) url(path string) string {
	return strings.Replace(s.URL, "127.0.0.1", "localhost", 1) + path
}

// page registers an HTML page whose head runs spy, then the loader, then
// the script calls.
func (s *shop) page(path, loader, calls string) {
	html := `<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>` +
		`<script>` + fetchSpy + `</script>` + loader +
		`<script>` + calls + `</script></head><body><h1>Shop</h1></body></html>`
	s.mu.Lock()
	s.pages[path] = html
	s.mu.Unlock()
}

// fetchSpy records in window.__sent, in call order, each fetch the page makes:
// its URL and body, then its status (-1 on a network error) and done once
// the response has been read and handled. It sees the order in which the
// script sends.
const fetchSpy = `window.__sent=[];(function(f){window.fetch=function(u,o){var e={u:String(u),b:o&&o.body,s:0,done:0};__sent.push(e);var p=f.apply(this,arguments);p.then(function(r){return r.clone().text().then(function(){e.s=r.status})},function(){e.s=-1}).then(function(){setTimeout(function(){e.done=1},30)});return p}})(window.fetch);`

// sentSettled is true once every fetch the page made has been handled.
const sentSettled = `window.__sent && __sent.length > 0 && __sent.every(e => e.done)`

type env struct {
	t       *testing.T
	b       *browsertest.Browser
	tracker *tracker
	shop    *shop
}

func newEnv(t *testing.T) *env {
	if testing.Short() {
		t.Skip("browser test")
	}
	return &env{t: t, b: browsertest.New(t), tracker: newTracker(t, buildAllForTest(t)), shop: newShop(t)}
}

// loader is potrack's own loader for the program.
func (e *env) loader(program string) string {
	return Loader(e.tracker.URL+"/js/universal.js", program, Settings{})
}

// partnero is Partnero's loader pointed at the tracker, followed by the
// program's load call, as Partnero's docs show it.
func (e *env) partnero(program string) string {
	l := strings.Replace(partneroLoader, "https://TRACKER", e.tracker.URL, 1)
	return `<script>` + l + `po('program', ` + jsValue(program) + `, 'load');</script>`
}

func (e *env) noConsoleErrors() {
	e.t.Helper()
	if errs := e.b.ConsoleErrors(); len(errs) > 0 {
		e.t.Errorf("console errors: %q", errs)
	}
}

// noConsoleErrorsButNetwork is like noConsoleErrors, ignoring the browser's own
// report of failed requests (expected while /collect is down).
func (e *env) noConsoleErrorsButNetwork() {
	e.t.Helper()
	for _, m := range e.b.Console() {
		if (m.Type == "error" || m.IsException()) && m.Source != "network" {
			e.t.Errorf("console error: %s", m)
		}
	}
}

type outboxEntry struct {
	B string `json:"b"`
	N int    `json:"n"`
	T int64  `json:"t"`
}

func (e *env) outbox() []outboxEntry {
	e.t.Helper()
	var list []outboxEntry
	raw := browsertest.Eval[string](e.b, `localStorage.po_outbox || "[]"`)
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		e.t.Fatalf("outbox %q: %v", raw, err)
	}
	return list
}

func TestBrowserLoadersReplayTheQueueInOrder(t *testing.T) {
	for _, loader := range []string{"partnero", "potrack", "potrack po.js"} {
		t.Run(loader, func(t *testing.T) {
			e := newEnv(t)
			var l string
			switch loader {
			case "partnero":
				l = e.partnero("prog1")
			case "potrack":
				l = e.loader("prog1")
			default:
				l = Loader(e.tracker.URL+"/po.js", "prog1", Settings{})
			}
			// All of these run before the async script arrives, so they
			// are queued; the chained call sits in its parent's sub-queue.
			e.shop.page("/signup", l, `
po('settings', 'assets_host', 'https://cdn.example');
po('customers', 'signup', {data: {key: 'cust1', name: 'Ann', email: 'ann@example.com'}})
  ('transactions', 'create', {data: {key: 'order1', amount: 25, customer: {key: 'cust1'}}});
po('customer', 'signup', {data: {key: 'cust2'}});
window.queuedBeforeLoad = typeof po.q === 'object';
`)
			e.b.Navigate(e.shop.url("/signup"))
			e.b.WaitJS(`window.__sent.length === 3 && `+sentSettled, wait)
			if !browsertest.Eval[bool](e.b, `queuedBeforeLoad`) {
				t.Error("the calls were not queued: the script ran before the inline calls")
			}

			order := browsertest.Eval[[]string](e.b, `__sent.map(s => { const b = JSON.parse(s.b); return b.type + ':' + b.data.key })`)
			want := []string{"customers.signup:cust1", "transactions.create:order1", "customers.signup:cust2"}
			if strings.Join(order, ",") != strings.Join(want, ",") {
				t.Errorf("send order %v, want %v", order, want)
			}
			calls := e.tracker.waitReceived(t, "", 3)
			for _, c := range calls {
				if c.Program != "prog1" || c.contentType != "text/plain;charset=UTF-8" || c.origin != strings.TrimSuffix(e.shop.url(""), "/") {
					t.Errorf("call %+v: program %q, Content-Type %q, Origin %q", c.Type, c.Program, c.contentType, c.origin)
				}
				if c.URL != e.shop.url("/signup") || c.Partner == nil || c.partnerKey() != "" {
					t.Errorf("call %s: url %q partner %v", c.Type, c.URL, c.Partner)
				}
				if c.status != http.StatusCreated {
					t.Errorf("call %s answered %d", c.Type, c.status)
				}
			}
			for _, c := range calls {
				if c.dataKey() == "cust1" && (c.Data["name"] != "Ann" || c.Data["email"] != "ann@example.com") {
					t.Errorf("signup data %v", c.Data)
				}
			}
			if e.tracker.received("clicks.create") != nil {
				t.Error("a click was sent for a landing without a referral")
			}
			// The stub is gone, and the real po() chains.
			e.b.Run(`po('transactions', 'create', {data: {key: 'order2', amount: 5}})('transactions', 'create', {data: {key: 'order3', amount: 6}})`)
			e.tracker.waitReceived(t, "transactions.create", 3)
			if browsertest.Eval[bool](e.b, `'q' in po && po.q.length > 0`) {
				t.Error("window.po is still the stub")
			}
			e.b.WaitJS(`localStorage.po_outbox === '[]'`, wait)
			e.noConsoleErrors()
		})
	}
}

func TestBrowserReferralCookie(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/", e.loader("prog1"), "")
	e.shop.page("/thanks", e.loader("prog1"), `po('transactions', 'create', {data: {key: 'order1', amount: '19.99', customer: {key: 'c1'}}, options: {create_customer: true}});`)

	// A visitor without a referral: no click, no cookie.
	e.b.Navigate(e.shop.url("/?utm_source=mail"))
	clicks := e.tracker.waitReceived(t, "clicks.create", 1) // any query string is worth a look
	if clicks[0].status != http.StatusAccepted {
		t.Errorf("click without a referral answered %d", clicks[0].status)
	}
	e.b.WaitJS(sentSettled, wait)
	if c := e.b.Cookie("", "partnero_partner"); c != nil {
		t.Errorf("cookie set without a partner: %+v", c)
	}

	// Through alice's link.
	e.b.Navigate(e.shop.url("/?aff=alice"))
	clicks = e.tracker.waitReceived(t, "clicks.create", 2)
	if c := clicks[1]; c.URL != e.shop.url("/?aff=alice") || c.Program != "prog1" || len(c.Data) != 0 || c.partnerKey() != "" {
		t.Errorf("click %+v", c)
	}
	e.b.WaitJS(`document.cookie.includes('partnero_partner=alice')`, wait)
	c := e.b.Cookie("", "partnero_partner")
	if c == nil {
		t.Fatal("Chromium's cookie store has no partnero_partner")
	}
	if want := float64(time.Now().Unix() + 30*86400); c.Expires < want-120 || c.Expires > want+120 {
		t.Errorf("cookie expires %v, want about %v (30 days)", time.Unix(int64(c.Expires), 0), time.Unix(int64(want), 0))
	}
	if c.Path != "/" || c.SameSite != "Lax" || c.Secure || c.HTTPOnly || c.Domain != "localhost" {
		t.Errorf("cookie %+v", c)
	}

	// The sale, reached by a link, carries the cookie's partner.
	e.b.Run(`location.href = '/thanks'`)
	tx := e.tracker.waitReceived(t, "transactions.create", 1)[0]
	if tx.partnerKey() != "alice" || tx.dataKey() != "order1" || tx.Data["amount"] != "19.99" || tx.Options["create_customer"] != true {
		t.Errorf("transaction %+v", tx)
	}
	if tx.Referrer != e.shop.url("/?aff=alice") {
		t.Errorf("referrer %q", tx.Referrer)
	}
	e.noConsoleErrors()
}

func TestBrowserAttribution(t *testing.T) {
	for _, tc := range []struct {
		attribution, want string
	}{{"last", "bob"}, {"first", "alice"}} {
		t.Run(tc.attribution, func(t *testing.T) {
			e := newEnv(t)
			e.shop.page("/", e.loader("prog1"), "")
			e.tracker.set(func(tr *tracker) { tr.attribution = tc.attribution; tr.cookieDays = 7 })

			e.b.Navigate(e.shop.url("/?aff=alice"))
			// The cookie is written at once, then as the answer says.
			e.b.WaitJS(`document.cookie.includes('partnero_partner=alice') && `+sentSettled, wait)
			first := e.b.Cookie("", "partnero_partner")

			// bob's link, on a later visit. The click must be recorded
			// either way; only the cookie differs.
			e.tracker.set(func(tr *tracker) { tr.cookieDays = 14 })
			e.b.Navigate(e.shop.url("/?aff=bob"))
			e.tracker.waitReceived(t, "clicks.create", 2)
			e.b.WaitJS(sentSettled, wait)
			c := e.b.Cookie("", "partnero_partner")
			if c == nil || c.Value != tc.want {
				t.Fatalf("cookie %+v, want %s", c, tc.want)
			}
			days := 14
			if tc.want == "alice" {
				days = 7
				if c.Expires != first.Expires {
					t.Errorf("first attribution renewed the cookie: %v -> %v", first.Expires, c.Expires)
				}
			}
			if want := float64(time.Now().Unix() + int64(days)*86400); c.Expires < want-120 || c.Expires > want+120 {
				t.Errorf("cookie expires %v, want about %d days", time.Unix(int64(c.Expires), 0), days)
			}
			e.noConsoleErrors()
		})
	}
}

func TestBrowserAffPath(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/aff/", e.partnero("prog1"), "")
	e.b.Navigate(e.shop.url("/aff/bob"))
	click := e.tracker.waitReceived(t, "clicks.create", 1)[0]
	if click.URL != e.shop.url("/aff/bob") || click.status != http.StatusCreated {
		t.Errorf("click %+v", click)
	}
	e.b.WaitJS(`document.cookie.includes('partnero_partner=bob')`, wait)
	e.noConsoleErrors()
}

func TestBrowserOutboxSurvivesAnOutage(t *testing.T) {
	for _, mode := range []string{mode503, mode429, modeDrop} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			e.shop.page("/", e.loader("prog1"), "")
			e.shop.page("/thanks", e.loader("prog1"), `po('transactions', 'create', {data: {key: 'order1', amount: 25}});`)
			e.tracker.set(func(tr *tracker) { tr.mode = mode })

			e.b.Navigate(e.shop.url("/thanks"))
			first := e.tracker.waitReceived(t, "transactions.create", 1)[0]
			e.b.WaitJS(sentSettled, wait)
			list := e.outbox()
			if len(list) != 1 {
				t.Fatalf("outbox %+v, want the failed sale", list)
			}
			now := time.Now().UnixMilli()
			if en := list[0]; en.N != 1 || en.T > now+1_000 {
				t.Errorf("outbox entry %+v: want 1 attempt and the next try within a second", en)
			}

			// Back online while the buyer stays on the thank-you page: the
			// page retries by itself, without a reload.
			e.tracker.set(func(tr *tracker) { tr.mode = modeNormal })
			calls := e.tracker.waitReceived(t, "transactions.create", 2)
			if calls[1].status != http.StatusCreated || calls[1].dataKey() != "order1" || calls[1].URL != first.URL {
				t.Errorf("retry %+v", calls[1])
			}
			e.b.WaitJS(`localStorage.po_outbox === '[]'`, wait)
			e.noConsoleErrorsButNetwork()
		})
	}
}

// TestBrowserOutboxKeepsOrderAfterAFailure: when a signup fails and will be
// retried, the sale queued behind it is not sent on its own (it could
// overtake the signup and be refused for good); both wait, and the page's
// own retry sends them in their order.
func TestBrowserOutboxKeepsOrderAfterAFailure(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/", e.loader("prog1"), "")
	e.shop.page("/thanks", e.loader("prog1"), `po('customers', 'signup', {data: {key: 'cust1'}});
po('transactions', 'create', {data: {key: 'order1', amount: 25, customer: {key: 'cust1'}}});`)
	e.tracker.set(func(tr *tracker) { tr.mode = mode503 })
	e.b.Navigate(e.shop.url("/thanks"))
	e.tracker.waitReceived(t, "customers.signup", 1)
	e.b.WaitJS(sentSettled, wait)
	if n := len(e.tracker.received("transactions.create")); n != 0 {
		t.Fatalf("the sale was sent after its signup failed (%d times)", n)
	}
	if list := e.outbox(); len(list) != 2 {
		t.Fatalf("outbox %+v, want the signup and the sale", list)
	}

	e.tracker.set(func(tr *tracker) { tr.mode = modeNormal })
	// The page retries by itself, the signup first.
	e.tracker.waitReceived(t, "transactions.create", 1)
	all := e.tracker.received("")
	var order []string
	for _, c := range all {
		order = append(order, c.Type+":"+fmt.Sprint(c.status))
	}
	want := "customers.signup:503,customers.signup:201,transactions.create:201"
	if strings.Join(order, ",") != want {
		t.Errorf("calls %s, want %s", strings.Join(order, ","), want)
	}
	e.b.WaitJS(`localStorage.po_outbox === '[]'`, wait)
	e.noConsoleErrorsButNetwork()
}

// TestBrowserBackOffGrows: a buyer who stays on the page sees the retries
// come by themselves, each after twice the previous wait (1 s, 2 s, 4 s),
// and each attempt is written down with its next try time before it goes
// out.
func TestBrowserBackOffGrows(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/", e.loader("prog1"), "")
	e.shop.page("/thanks", e.loader("prog1"), `po('customers', 'signup', {data: {key: 'cust1'}});`)
	e.tracker.set(func(tr *tracker) { tr.mode = mode503 })
	e.b.Navigate(e.shop.url("/thanks"))
	for attempt := 1; attempt <= 4; attempt++ {
		e.tracker.waitReceived(t, "customers.signup", attempt)
		list := e.outbox()
		if len(list) != 1 || list[0].N != attempt {
			t.Fatalf("outbox after attempt %d: %+v", attempt, list)
		}
		delay := list[0].T - time.Now().UnixMilli()
		want := int64(1_000) << (attempt - 1)
		if delay > want || delay < want-1_000 {
			t.Errorf("after attempt %d the next try is in %d ms, want about %d", attempt, delay, want)
		}
	}
	// Drop entries that have had all their attempts.
	e.b.Run(`localStorage.po_outbox = JSON.stringify(JSON.parse(localStorage.po_outbox).map(e => (e.t = 0, e.n = 19, e)))`)
	e.b.Navigate(e.shop.url("/"))
	e.tracker.waitReceived(t, "customers.signup", 5)
	e.b.WaitJS(sentSettled, wait)
	if list := e.outbox(); len(list) != 0 {
		t.Errorf("outbox after the last attempt: %+v", list)
	}
}

func TestBrowserClientErrorIsNotRetried(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/thanks", e.loader("prog1"), `po('transactions', 'create', {data: {key: 'order1', amount: -1}});`)
	e.tracker.set(func(tr *tracker) { tr.mode = mode400 })
	e.b.Navigate(e.shop.url("/thanks"))
	e.tracker.waitReceived(t, "transactions.create", 1)
	e.b.WaitJS(sentSettled+` && localStorage.po_outbox === '[]'`, wait)
	e.noConsoleErrorsButNetwork()
}

func TestBrowserKeylessTransactionKeepsItsKeyOnReload(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/thanks", e.loader("prog1"), `
po('transactions', 'create', {data: {amount: 25, customer: {key: 'c1'}}});
po('transactions', 'create', {data: {amount: 30, customer: {key: 'c1'}}});
po('transactions', 'create', {data: {key: 'merchant-key', amount: 40}});
`)
	e.b.Navigate(e.shop.url("/thanks?order=1"))
	first := e.tracker.waitReceived(t, "transactions.create", 3)
	keys := map[float64]string{}
	for _, c := range first {
		keys[c.Data["amount"].(float64)] = c.dataKey()
	}
	clientKey := regexp.MustCompile(`^c[0-9a-z]{12,}$`)
	if !clientKey.MatchString(keys[25]) || !clientKey.MatchString(keys[30]) || keys[25] == keys[30] {
		t.Errorf("client keys %q and %q", keys[25], keys[30])
	}
	if keys[40] != "merchant-key" {
		t.Errorf("merchant key replaced by %q", keys[40])
	}
	if got := browsertest.Eval[string](e.b, `JSON.stringify(Object.keys(sessionStorage).length)`); got != "2" {
		t.Errorf("%s keys remembered, want 2", got)
	}

	e.b.Navigate(e.shop.url("/thanks?order=1")) // a reload: same tab, same sessionStorage
	again := e.tracker.waitReceived(t, "transactions.create", 6)[3:]
	for _, c := range again {
		if amount := c.Data["amount"].(float64); c.dataKey() != keys[amount] {
			t.Errorf("after reload the %v sale has key %q, want %q", amount, c.dataKey(), keys[amount])
		}
	}
	e.b.WaitJS(sentSettled, wait)
	e.noConsoleErrors()
}

func TestBrowserAPIHostSetting(t *testing.T) {
	e := newEnv(t)
	proxy := newTracker(t, buildAllForTest(t))
	e.shop.page("/", e.partnero("prog1"), "")
	// Partnero documents the settings before the program call.
	e.shop.page("/proxied", `<script>`+strings.Replace(partneroLoader, "https://TRACKER", e.tracker.URL, 1)+
		`po('settings', 'assets_host', 'https://assets.example');po('settings', 'api_host', `+jsValue(proxy.URL+"/")+`);po('program', 'prog1', 'load');</script>`,
		`po('customers', 'signup', {data: {key: 'cust1'}});`)
	e.b.Navigate(e.shop.url("/proxied?aff=alice"))
	proxy.waitReceived(t, "clicks.create", 1)
	proxy.waitReceived(t, "customers.signup", 1)
	e.b.WaitJS(sentSettled, wait)
	if got := browsertest.Eval[[]string](e.b, `__sent.map(s => s.u)`); len(got) != 2 || got[0] != proxy.URL+"/collect" {
		t.Errorf("sent to %v, want %s/collect", got, proxy.URL)
	}
	if calls := e.tracker.received(""); len(calls) != 0 {
		t.Errorf("the script's own host got %d calls", len(calls))
	}
	e.noConsoleErrors()
}

func TestBrowserWithoutStorage(t *testing.T) {
	e := newEnv(t)
	// Storage that throws on every access, as in some privacy modes.
	e.shop.page("/thanks", e.loader("prog1"), `po('transactions', 'create', {data: {amount: 12}});`)
	e.shop.mu.Lock()
	e.shop.pages["/thanks"] = strings.Replace(e.shop.pages["/thanks"], "<title>",
		`<script>for (const n of ['localStorage', 'sessionStorage']) Object.defineProperty(window, n, {get() { throw new DOMException('denied', 'SecurityError') }});</script><title>`, 1)
	e.shop.mu.Unlock()
	e.b.Navigate(e.shop.url("/thanks"))
	tx := e.tracker.waitReceived(t, "transactions.create", 1)[0]
	if !regexp.MustCompile(`^c[0-9a-z]+$`).MatchString(tx.dataKey()) || tx.status != http.StatusCreated {
		t.Errorf("transaction %+v", tx)
	}
	e.b.WaitJS(sentSettled, wait)
	e.noConsoleErrors()
}

func TestBrowserScriptLoadedTwice(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/", e.loader("prog1")+e.loader("prog1"), "")
	e.b.Navigate(e.shop.url("/"))
	// Async scripts inserted before the load event delay it, so both copies
	// have run once Navigate returns.
	e.b.WaitJS(`window.po && !po.q && document.querySelectorAll('script[src*="/js/universal.js"]').length === 2`, wait)
	e.b.Run(`po('customers', 'signup', {data: {key: 'cust1'}})`)
	if c := e.tracker.waitReceived(t, "customers.signup", 1)[0]; c.Program != "prog1" {
		t.Errorf("program %q after a second copy of the script", c.Program)
	}
	e.noConsoleErrors()
}

// TestBrowserCookieWithoutTheServer: the landing writes the referral cookie
// before and whatever /collect answers, so an ad blocker or a dropped
// network still leaves the partner for the sale (and for the merchant's
// backend, which reads the cookie).
func TestBrowserCookieWithoutTheServer(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/", e.loader("prog1"), "")
	e.shop.page("/thanks", e.loader("prog1"), `po('transactions', 'create', {data: {key: 'order1', amount: 10}});`)
	e.tracker.set(func(tr *tracker) { tr.mode = modeDrop })
	e.b.Navigate(e.shop.url("/?aff=alice"))
	e.tracker.waitReceived(t, "clicks.create", 1)
	e.b.WaitJS(sentSettled, wait)
	c := e.b.Cookie("", "partnero_partner")
	if c == nil || c.Value != "alice" {
		t.Fatalf("cookie after a landing whose click got no answer: %+v, want alice", c)
	}
	if want := float64(time.Now().Unix() + 30*86400); c.Expires < want-120 || c.Expires > want+120 {
		t.Errorf("cookie expires %v, want in about 30 days (the default)", time.Unix(int64(c.Expires), 0))
	}
	e.tracker.set(func(tr *tracker) { tr.mode = modeNormal })
	e.b.Run(`location.href = '/thanks'`)
	if tx := e.tracker.waitReceived(t, "transactions.create", 1)[0]; tx.partnerKey() != "alice" {
		t.Errorf("the sale after a blocked click names %q, want alice", tx.partnerKey())
	}
	e.noConsoleErrorsButNetwork()
}

// TestBrowserUnknownPartnerIsUndone: a link naming a partner the server
// does not know (202) puts the cookie back as it was: the earlier
// partner with its expiry, or no cookie at all.
func TestBrowserUnknownPartnerIsUndone(t *testing.T) {
	t.Run("an earlier partner", func(t *testing.T) {
		e := newEnv(t)
		e.shop.page("/", e.loader("prog1"), "")
		e.tracker.set(func(tr *tracker) { tr.cookieDays = 7 })
		e.b.Navigate(e.shop.url("/?aff=alice"))
		e.b.WaitJS(`document.cookie.includes('partnero_partner=alice') && `+sentSettled, wait)
		before := e.b.Cookie("", "partnero_partner")
		e.b.Navigate(e.shop.url("/?aff=zed"))
		if c := e.tracker.waitReceived(t, "clicks.create", 2)[1]; c.status != http.StatusAccepted {
			t.Fatalf("click for an unknown partner answered %d", c.status)
		}
		e.b.WaitJS(sentSettled+` && document.cookie.includes('partnero_partner=alice')`, wait)
		after := e.b.Cookie("", "partnero_partner")
		if after == nil || after.Value != "alice" || after.Expires < before.Expires-2 || after.Expires > before.Expires+2 {
			t.Fatalf("cookie after an unknown partner's link: %+v, want alice expiring as before (%v)", after, before.Expires)
		}
		e.noConsoleErrors()
	})
	t.Run("no earlier partner", func(t *testing.T) {
		e := newEnv(t)
		e.shop.page("/", e.loader("prog1"), "")
		e.b.Navigate(e.shop.url("/?aff=zed"))
		e.tracker.waitReceived(t, "clicks.create", 1)
		e.b.WaitJS(sentSettled+` && !document.cookie.includes('partnero_partner')`, wait)
		if c := e.b.Cookie("", "partnero_partner"); c != nil {
			t.Fatalf("cookie after an unknown partner's link: %+v, want none", c)
		}
		e.noConsoleErrors()
	})
}

// TestBrowserFirstAttributionWithoutTheServer: with attribution "first"
// (learned from an earlier answer), a later landing keeps the cookie even
// when its click gets no answer.
func TestBrowserFirstAttributionWithoutTheServer(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/", e.loader("prog1"), "")
	e.tracker.set(func(tr *tracker) { tr.attribution = "first" })
	e.b.Navigate(e.shop.url("/?aff=alice"))
	e.b.WaitJS(`document.cookie.includes('partnero_partner=alice') && `+sentSettled, wait)
	e.tracker.set(func(tr *tracker) { tr.mode = modeDrop })
	e.b.Navigate(e.shop.url("/?aff=bob"))
	// Chromium may send a POST again on a dropped keep-alive connection.
	browsertest.WaitFor(t, wait, "bob's click", func() bool { return len(e.tracker.received("clicks.create")) >= 2 })
	e.b.WaitJS(sentSettled, wait)
	if c := e.b.Cookie("", "partnero_partner"); c == nil || c.Value != "alice" {
		t.Fatalf("cookie %+v, want alice kept (first attribution)", c)
	}
	e.noConsoleErrorsButNetwork()
}

// TestBrowserNoJunkClicks: a reload of the landing page, or another landing
// for the same partner within 30 minutes, counts no click; another
// partner's link does; a prerendered page counts when it is shown.
func TestBrowserNoJunkClicks(t *testing.T) {
	e := newEnv(t)
	e.shop.page("/", e.loader("prog1"), "")
	e.shop.page("/other", e.loader("prog1"), "")
	e.b.Navigate(e.shop.url("/?aff=alice"))
	e.tracker.waitReceived(t, "clicks.create", 1)
	e.b.WaitJS(sentSettled, wait)

	// The script decides and sends while it replays the queue, so once po
	// is the script's own, a click would already be in __sent.
	const ran = `window.po && po.p === 1`
	e.b.Run(`location.reload()`)
	e.b.WaitJS(ran+` && performance.getEntriesByType('navigation')[0].type === 'reload'`, wait)
	if n := browsertest.Eval[int](e.b, `__sent.length`); n != 0 {
		t.Errorf("a reload of the landing page sent %d requests", n)
	}
	e.b.Navigate(e.shop.url("/other?aff=alice&utm_campaign=x"))
	e.b.WaitJS(ran, wait)
	if n := browsertest.Eval[int](e.b, `__sent.length`); n != 0 {
		t.Errorf("a second landing for the same partner sent %d requests", n)
	}
	if c := e.b.Cookie("", "partnero_partner"); c == nil || c.Value != "alice" {
		t.Errorf("cookie %+v, want alice", c)
	}
	e.b.Navigate(e.shop.url("/?aff=bob"))
	if c := e.tracker.waitReceived(t, "clicks.create", 2)[1]; referral(c.URL) != "bob" {
		t.Errorf("second click %+v, want bob's", c)
	}

	// A prerendered page (Chromium's document.prerendering, set here before
	// the script runs) counts its click only when shown.
	e.shop.page("/pre", `<script>Object.defineProperty(document, 'prerendering', {value: true, configurable: true})</script>`+e.loader("prog1"), "")
	e.b.Navigate(e.shop.url("/pre?aff=carol"))
	e.b.WaitJS(ran, wait)
	if n := browsertest.Eval[int](e.b, `__sent.length`); n != 0 {
		t.Errorf("a prerendered page sent %d requests before it was shown", n)
	}
	e.b.Run(`Object.defineProperty(document, 'prerendering', {value: false}); document.dispatchEvent(new Event('prerenderingchange'))`)
	if c := e.tracker.waitReceived(t, "clicks.create", 3)[2]; referral(c.URL) != "carol" {
		t.Errorf("the shown page's click %+v, want carol's", c)
	}
	e.noConsoleErrors()
}

// TestBrowserCustomReferralParams: a program with its own referral
// parameters has them in its snippet, so the script reads the partner off
// the landing URL without the server, as the server reads it.
func TestBrowserCustomReferralParams(t *testing.T) {
	e := newEnv(t)
	l := Loader(e.tracker.URL+"/js/universal.js", "prog1", Settings{ReferralParams: []string{"ref", "via"}})
	if !strings.Contains(l, `po('settings','referral_params',["ref","via"]);`) {
		t.Fatalf("the snippet does not name the referral parameters:\n%s", l)
	}
	e.shop.page("/", l, "")
	e.tracker.set(func(tr *tracker) { tr.mode = modeDrop })
	e.b.Navigate(e.shop.url("/?aff=bob&via=alice"))
	browsertest.WaitFor(t, wait, "the click", func() bool { return len(e.tracker.received("clicks.create")) >= 1 })
	e.b.WaitJS(sentSettled, wait)
	if c := e.b.Cookie("", "partnero_partner"); c == nil || c.Value != "alice" {
		t.Fatalf("cookie %+v, want alice (via=, not the default aff=)", c)
	}
	if l := Loader("https://t.example/js/universal.js", "p", Settings{ReferralParams: []string{"aff"}}); strings.Contains(l, "settings") {
		t.Errorf("the default parameters are named in the snippet:\n%s", l)
	}
	e.noConsoleErrorsButNetwork()
}

// TestBrowserRetryAtOnceWhenBack: the network coming back (online) and the
// page being shown again (visibilitychange) retry at once, not when the
// back-off says. The entry is moved an hour ahead so that only the event
// can send it.
func TestBrowserRetryAtOnceWhenBack(t *testing.T) {
	for name, ev := range map[string]string{
		"online":  `window.dispatchEvent(new Event('online'))`,
		"visible": `document.dispatchEvent(new Event('visibilitychange', {bubbles: true}))`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.shop.page("/thanks", e.loader("prog1"), `po('transactions', 'create', {data: {key: 'order1', amount: 25}});`)
			e.tracker.set(func(tr *tracker) { tr.mode = modeDrop })
			e.b.Navigate(e.shop.url("/thanks"))
			e.tracker.waitReceived(t, "transactions.create", 1)
			e.b.WaitJS(sentSettled, wait)
			e.b.Run(`localStorage.po_outbox = JSON.stringify(JSON.parse(localStorage.po_outbox).map(e => (e.t = Date.now() + 36e5, e)))`)
			// Still down: the forced attempt fails and does not count.
			e.b.Run(ev)
			e.tracker.waitReceived(t, "transactions.create", 2)
			e.b.WaitJS(sentSettled, wait)
			if list := e.outbox(); len(list) != 1 || list[0].N != 1 {
				t.Errorf("outbox after a forced attempt failed: %+v, want the entry still at 1 attempt", list)
			}
			e.tracker.set(func(tr *tracker) { tr.mode = modeNormal })
			e.b.Run(ev)
			calls := e.tracker.waitReceived(t, "transactions.create", 3)
			if calls[2].status != http.StatusCreated || calls[2].dataKey() != "order1" {
				t.Errorf("retry %+v", calls[2])
			}
			e.b.WaitJS(`localStorage.po_outbox === '[]'`, wait)
		})
	}
}

// TestBrowserStripeCheckout: the stripe variant hands the visitor's partner
// to Stripe Checkout: Payment Links in their URL, pricing tables and buy
// buttons as client-reference-id, those the page adds later too; not
// before consent, and not for a key Stripe would drop.
func TestBrowserStripeCheckout(t *testing.T) {
	e := newEnv(t)
	l := Loader(e.tracker.URL+"/js/universal.js", "prog1", Settings{StripeCheckout: true})
	if !strings.Contains(l, "/js/universal.js?ext=stripe") {
		t.Fatalf("the snippet does not load the stripe variant: %s", l)
	}
	const body = `<a id="link" href="https://buy.stripe.com/test_14k5nB?prefilled_email=a%40b.example">Buy</a>
<a id="other" href="https://example.com/buy">Elsewhere</a>
<stripe-pricing-table id="table" pricing-table-id="prctbl_1" publishable-key="pk_test_1"></stripe-pricing-table>
<stripe-buy-button id="button" buy-button-id="buy_btn_1" publishable-key="pk_test_1"></stripe-buy-button>
<script>setTimeout(() => document.body.insertAdjacentHTML('beforeend',
  '<div><a id="late" href="https://buy.stripe.com/test_late">Later</a><stripe-pricing-table id="lateTable"></stripe-pricing-table></div>'), 100)</script>`
	page := func(path, l string) {
		e.shop.page(path, l, "")
		e.shop.mu.Lock()
		e.shop.pages[path] = strings.Replace(e.shop.pages[path], "<h1>Shop</h1>", body, 1)
		e.shop.mu.Unlock()
	}
	page("/", l)
	page("/wait", Loader(e.tracker.URL+"/js/universal.js", "prog1", Settings{StripeCheckout: true, RequireConsent: true}))

	// Before any referral nothing is stamped.
	e.b.Navigate(e.shop.url("/"))
	e.b.WaitJS(`window.po && po.p === 1 && document.getElementById('late')`, wait)
	if got := browsertest.Eval[string](e.b, `document.getElementById('link').href + ' ' + document.getElementById('table').getAttribute('client-reference-id')`); got != "https://buy.stripe.com/test_14k5nB?prefilled_email=a%40b.example null" {
		t.Errorf("without a referral: %s", got)
	}

	e.b.Navigate(e.shop.url("/?aff=alice"))
	stamped := `(id => { const el = document.getElementById(id); return el && (el.href ? new URL(el.href).searchParams.get('client_reference_id') : el.getAttribute('client-reference-id')) })`
	e.b.WaitJS(stamped+`('late') === 'alice' && `+stamped+`('lateTable') === 'alice'`, wait)
	for id, want := range map[string]string{"link": "alice", "table": "alice", "button": "alice", "other": ""} {
		if got := browsertest.Eval[string](e.b, stamped+`(`+jsValue(id)+`) || ''`); got != want {
			t.Errorf("%s stamped %q, want %q", id, got, want)
		}
	}
	if got := browsertest.Eval[string](e.b, `new URL(document.getElementById('link').href).searchParams.get('prefilled_email')`); got != "a@b.example" {
		t.Errorf("the link's own parameters: prefilled_email %q", got)
	}

	// While consent is held, nothing leaves the page, Stripe included.
	e.b.Navigate(e.shop.url("/wait?aff=bob"))
	e.b.WaitJS(`window.po && po.p === 1 && document.getElementById('late')`, wait)
	if got := browsertest.Eval[string](e.b, stamped+`('link') + ' ' + `+stamped+`('late')`); got != "null null" {
		t.Errorf("before consent: stamped %s", got)
	}
	e.b.Run(`po('consent', true)`)
	// alice's cookie stays until bob's click is answered; bob's landing
	// writes bob at once.
	e.b.WaitJS(stamped+`('link') === 'bob' && `+stamped+`('table') === 'bob'`, wait)

	// A key Stripe would drop is not stamped.
	e.b.WaitJS(sentSettled, wait)
	e.b.Run(`document.cookie = 'partnero_partner=' + encodeURIComponent('a b') + ';path=/'; po('settings', 'x', 1)`)
	e.b.WaitJS(`document.cookie.includes('partnero_partner=a%20b')`, wait)
	if got := browsertest.Eval[string](e.b, stamped+`('link')`); got != "bob" {
		t.Errorf("after an odd key: %s, want bob's stamp left as it was", got)
	}
	e.noConsoleErrors()
}
