package server

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The admin page's side of issue 14, over HTTP: secrets shown once after
// a redirect, archiving, sign-out, the overview, partners with their
// numbers and a partner's page, searches and exports, refusals on the
// setup page, the landing page and /aff/KEY.

// TestAdminWebCreateProgramShowsSecretsOnce: "Create program" redirects
// to a page that shows the secrets from a sealed one-time slot of the
// session; reloading it shows a note; another session cannot take it;
// signing out drops the session's slots.
func TestAdminWebCreateProgramShowsSecretsOnce(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	r := w.post("/admin/programs", url.Values{"name": {"Once"}, "currency": {"eur"}})
	loc := r.Header.Get("Location")
	if r.Status != 303 || !regexp.MustCompile(`^/admin/programs/[a-z0-9]+\?shown=[a-z0-9]{26}#secrets$`).MatchString(loc) {
		t.Fatalf("create: %d, Location %q", r.Status, loc)
	}
	if n := ts.count(`SELECT count(*) FROM programs WHERE name = 'Once' AND currency = 'EUR'`); n != 1 {
		t.Fatalf("%d programs stored", n)
	}
	// The slot is sealed: no secret in the row.
	sealed, err := ts.store.StringsForTest(t.Context(), `SELECT sealed FROM shown_once`)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sealed {
		if strings.Contains(v, "pk_") || strings.Contains(v, "ss_") || strings.Contains(v, "whsec_") {
			t.Errorf("a shown-once row holds a secret in clear: %s", v)
		}
	}
	if n := ts.count(`SELECT count(*) FROM shown_once`); n != 1 {
		t.Fatalf("%d shown-once rows, want 1", n)
	}
	// Another session finds a note, and leaves the slot to its owner.
	other := ts.signIn()
	if body := other.get(loc).Body; strings.Contains(body, `class="secret"`) || !strings.Contains(body, "shown once") {
		t.Errorf("another session's page shows the secrets or no note")
	}
	page := w.get(loc)
	for _, want := range []string{"Program created", `id="secret-0" class="secret">pk_`, `id="secret-1" class="secret">ss_`, `id="secret-2" class="secret">whsec_`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("the created program's page lacks %q", want)
		}
	}
	if page.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the page with secrets may be cached: %q", page.Header.Get("Cache-Control"))
	}
	again := w.get(loc)
	if strings.Contains(again.Body, `class="secret"`) || !strings.Contains(again.Body, "shown once and are not shown again") {
		t.Errorf("reloading shows the secrets again or no note")
	}
	if n := ts.count(`SELECT count(*) FROM programs`); n != 1 {
		t.Errorf("%d programs after reloading, want 1", n)
	}
	// A slot left unshown goes with its session at sign-out.
	w.post("/admin/programs", url.Values{"name": {"Second"}})
	if n := ts.count(`SELECT count(*) FROM shown_once`); n != 1 {
		t.Fatalf("%d shown-once rows before signing out, want 1", n)
	}
	if r := w.post("/admin/logout", nil); r.Status != 303 {
		t.Fatalf("sign out: %d", r.Status)
	}
	if n := ts.count(`SELECT count(*) FROM shown_once`); n != 0 {
		t.Errorf("%d shown-once rows after signing out", n)
	}
	// A slot past its time shows nothing.
	w2 := ts.signIn()
	r = w2.post("/admin/programs", url.Values{"name": {"Late"}})
	ts.exec(`UPDATE shown_once SET expires_at = 1`)
	if body := w2.get(r.Header.Get("Location")).Body; strings.Contains(body, `class="secret"`) {
		t.Errorf("an expired slot's secrets are shown")
	}
}

// TestAdminWebSignOutSays: the sign-in page after signing out says so.
func TestAdminWebSignOutSays(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	r := w.post("/admin/logout", nil)
	if r.Status != 303 || r.Header.Get("Location") != "/admin/login?signed_out=1" {
		t.Fatalf("sign out: %d %q", r.Status, r.Header.Get("Location"))
	}
	if body := ts.request("GET", r.Header.Get("Location"), "").Body; !strings.Contains(body, "You are signed out") {
		t.Errorf("the sign-in page does not say so:\n%s", body)
	}
	if body := ts.request("GET", "/admin/login", "").Body; strings.Contains(body, "You are signed out") {
		t.Errorf("the plain sign-in page says signed out")
	}
}

// TestAdminWebArchive: an archived program leaves the home list for the
// archived list, its pages say so, it is restored; its /collect, REST API
// and /aff links keep working throughout.
func TestAdminWebArchive(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram(`{"name":"Old shop","js_tracking":true,"allowed_origins":["https://old.example"]}`)
	keep := ts.createProgram(`{"name":"Kept shop"}`)
	if r := ts.api(p, "POST", "/v1/partners", `{"key":"ann"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	if r := w.post("/admin/programs/"+p.ID+"/archive", url.Values{"csrf": {""}}); r.Status != 403 {
		t.Errorf("archive without the CSRF token: %d", r.Status)
	}
	r := w.post("/admin/programs/"+p.ID+"/archive", nil)
	if r.Status != 303 || r.Header.Get("Location") != "/admin?archived="+p.ID {
		t.Fatalf("archive: %d %q", r.Status, r.Header.Get("Location"))
	}
	home := w.get(r.Header.Get("Location")).Body
	if strings.Contains(home, `data-program="`+p.ID+`"`) || !strings.Contains(home, `data-program="`+keep.ID+`"`) ||
		!strings.Contains(home, "Program Old shop archived") || !strings.Contains(home, "Archived programs (1)") {
		t.Errorf("home after archiving:\n%s", home)
	}
	list := w.get("/admin?show=archived").Body
	if !strings.Contains(list, `data-program="`+p.ID+`"`) || strings.Contains(list, `data-program="`+keep.ID+`"`) ||
		!strings.Contains(list, `/admin/programs/`+p.ID+`/restore`) {
		t.Errorf("the archived list:\n%s", list)
	}
	if body := w.get("/admin/programs/" + p.ID).Body; !strings.Contains(body, `id="archived-notice"`) || !strings.Contains(body, `id="restore-program"`) {
		t.Errorf("the archived program's page does not say it is archived")
	}
	// Archived programs keep working: the script, the API, links.
	sale := `{"program":"` + p.ID + `","type":"transactions.create","url":"https://old.example/thanks","partner":{"key":"ann"},
		"data":{"key":"o-1","amount":"5.00","customer":{"key":"oc-1"}},"options":{"create_customer":true}}`
	if r := ts.request("POST", "/collect", sale, "Origin", "https://old.example", "Content-Type", "text/plain"); r.Status != 201 {
		t.Errorf("/collect for an archived program: %d %s", r.Status, r.Body)
	}
	if r := ts.api(p, "GET", "/v1/transactions/o-1", ""); r.Status != 200 {
		t.Errorf("REST for an archived program: %d", r.Status)
	}
	if r := ts.request("GET", "/aff/ann?program="+p.ID, ""); r.Status != 302 {
		t.Errorf("/aff for an archived program: %d", r.Status)
	}
	if r := ts.admin("GET", "/admin/api/programs/"+p.ID, ""); r.Status != 200 {
		t.Errorf("admin API for an archived program: %d", r.Status)
	}
	r = w.post("/admin/programs/"+p.ID+"/restore", nil)
	if r.Status != 303 || r.Header.Get("Location") != "/admin/programs/"+p.ID+"?saved=restored" {
		t.Fatalf("restore: %d %q", r.Status, r.Header.Get("Location"))
	}
	if n := ts.count(`SELECT count(*) FROM programs WHERE archived_at <> 0`); n != 0 {
		t.Errorf("%d programs archived after the restore", n)
	}
	if body := w.get("/admin").Body; !strings.Contains(body, `data-program="`+p.ID+`"`) || strings.Contains(body, "Archived programs (") {
		t.Errorf("the restored program is not listed")
	}
	if r := w.post("/admin/programs/nope/archive", nil); r.Status != 404 {
		t.Errorf("archiving an unknown program: %d", r.Status)
	}
}

// reportsFixture is a program with three partners, clicks, customers and
// sales on different days.
func reportsFixture(t *testing.T, ts *testServer) testProgram {
	t.Helper()
	p := ts.createProgram(`{"name":"Shop","allowed_origins":["https://shop.example"]}`)
	day := func(d int) string { return time.Now().UTC().AddDate(0, 0, -d).Format("2006-01-02") + "T12:00:00Z" }
	for _, step := range []struct{ path, body string }{
		{"/v1/partners", `{"key":"ann","name":"Ann Aardvark","email":"ann@example.com"}`},
		{"/v1/partners", `{"key":"bea","name":"Bea Bee"}`},
		{"/v1/partners", `{"key":"cid","name":"Cid"}`},
		{"/v1/transactions", `{"key":"t1","amount":"100.00","created_at":"` + day(2) + `","customer":{"key":"c1","email":"one@buyer.example","partner":{"key":"ann"}},"options":{"create_customer":true}}`},
		{"/v1/transactions", `{"key":"t2","amount":"50.00","created_at":"` + day(20) + `","customer":{"key":"c2","partner":{"key":"bea"}},"options":{"create_customer":true}}`},
		{"/v1/transactions", `{"key":"t3","amount":"10.00","created_at":"` + day(60) + `","customer":{"key":"c3","partner":{"key":"bea"}},"options":{"create_customer":true}}`},
	} {
		if r := ts.api(p, "POST", step.path, step.body); r.Status != 201 {
			t.Fatalf("%s: %d %s", step.path, r.Status, r.Body)
		}
	}
	for range 4 {
		body := clickBody(p.ID, "https://shop.example/?aff=cid", "", "")
		if r := ts.request("POST", "/collect", body, "Origin", "https://shop.example", "Content-Type", "text/plain"); r.Status != 201 {
			t.Fatalf("click: %d %s", r.Status, r.Body)
		}
	}
	return p
}

// TestAdminWebOverview: the home shows each program's numbers over the
// range picked, with a trend line; a range it cannot read is said.
func TestAdminWebOverview(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := reportsFixture(t, ts)
	card := func(body string) string {
		return regexp.MustCompile(`(?s)<section class="card program-card" data-program="` + p.ID + `">.*?</section>`).FindString(body)
	}
	for q, want := range map[string][]string{
		"":                                  {`class="n-clicks">4<`, `class="n-sales">2<`, `class="n-revenue">$150.00<`, `class="n-rewards">$30.00<`, `<polyline class="spark-revenue"`, `aria-current="true">30 days<`},
		"?days=7":                           {`class="n-sales">1<`, `class="n-revenue">$100.00<`, `aria-current="true">7 days<`, "Last 7 days"},
		"?days=90":                          {`class="n-sales">3<`, `class="n-revenue">$160.00<`},
		"?from=2020-01-01&until=2020-01-31": {`class="n-sales">0<`, `class="n-clicks">0<`, "1 Jan 2020 – 31 Jan 2020", `name="from" value="2020-01-01"`, `name="until" value="2020-01-31"`},
	} {
		r := w.get("/admin" + q)
		c := card(r.Body)
		if r.Status != 200 || c == "" {
			t.Fatalf("%q: %d, no card for the program", q, r.Status)
		}
		for _, s := range want {
			if !strings.Contains(c, s) && !strings.Contains(r.Body, s) {
				t.Errorf("%q: the overview lacks %q:\n%s", q, s, c)
			}
		}
	}
	for _, q := range []string{"?days=0", "?days=x", "?from=2026-03-02&until=2026-03-01", "?from=2020-01-01&until=2026-01-01", "?until=nope"} {
		r := w.get("/admin" + q)
		if r.Status != 422 || !strings.Contains(r.Body, `id="range-error"`) || !strings.Contains(r.Body, "Showing the last 30 days instead") {
			t.Errorf("%q: %d, no error beside the picker", q, r.Status)
		}
	}
}

// TestAdminWebPartnerNumbers: the partners list shows each partner's
// numbers over the range, sorts by any column both ways, searches; a
// partner's page shows its funnel, links, codes, customers and sales.
func TestAdminWebPartnerNumbers(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := reportsFixture(t, ts)
	base := "/admin/programs/" + p.ID + "/partners"
	order := func(body string) []string {
		var keys []string
		for _, m := range regexp.MustCompile(`<tr data-partner="([^"]+)">`).FindAllStringSubmatch(body, -1) {
			keys = append(keys, m[1])
		}
		return keys
	}
	for q, want := range map[string]string{
		"":                        "ann bea cid", // revenue, high to low
		"?sort=revenue&order=asc": "cid bea ann",
		"?sort=clicks":            "cid bea ann",
		"?sort=name&order=asc":    "ann bea cid",
		"?sort=name&order=desc":   "cid bea ann",
		"?days=90&sort=sales":     "bea ann cid",
		"?q=be":                   "bea",
		"?q=AARD":                 "ann",
		"?q=%25":                  "",
		"?sort=nonsense":          "ann bea cid", // said, and the default
	} {
		r := w.get(base + q)
		if got := strings.Join(order(r.Body), " "); got != want {
			t.Errorf("%q: partners %q, want %q", q, got, want)
		}
	}
	if r := w.get(base + "?sort=nonsense"); r.Status != 422 || !strings.Contains(r.Body, "must be one of") {
		t.Errorf("a bad sort: %d, not said", r.Status)
	}
	page := w.get(base).Body
	row := regexp.MustCompile(`(?s)<tr data-partner="cid">.*?</tr>`).FindString(page)
	for _, want := range []string{`<td class="num">4</td>`, "0 %", "https://shop.example/?aff=cid"} {
		if !strings.Contains(row, want) {
			t.Errorf("cid's row lacks %q:\n%s", want, row)
		}
	}
	// The current column's head turns the order round; the others sort
	// numbers high to low first.
	if !strings.Contains(page, `aria-sort="descending"><a class="sort current" href="/admin/programs/`+p.ID+`/partners?order=asc&amp;sort=revenue#partners">Revenue ↓`) {
		t.Errorf("the revenue head is not the current sort, or does not turn it round")
	}
	for _, want := range []string{`/export/partners.csv?days=30&amp;order=desc&amp;sort=revenue`, `/export/clicks.csv?days=30`} {
		if !strings.Contains(page, want) {
			t.Errorf("the partners page lacks the export %q", want)
		}
	}
	if body := w.get(base + "?q=be&days=7").Body; !strings.Contains(body, `/export/partners.csv?days=7&amp;order=desc&amp;q=be&amp;sort=revenue`) {
		t.Errorf("the export does not carry the search and range")
	}

	one := w.get(base + "/bea?days=90")
	if one.Status != 200 {
		t.Fatalf("partner page: %d", one.Status)
	}
	for _, want := range []string{`id="partner-name">Bea Bee<`, `id="p-customers">2<`, `id="p-sales">2<`, `id="p-revenue">$60.00<`,
		`id="p-link" class="link">https://shop.example/?aff=bea<`, `/aff/bea?program=` + p.ID, `<polyline class="line sales"`,
		`data-key="t2"`, `data-key="t3"`, `/customers?partner=bea`, `/transactions?partner=bea`,
		`/export/transactions.csv?days=90&amp;partner=bea`, `/export/clicks.csv?days=90&amp;partner=bea`, `aria-current="true">90 days<`} {
		if !strings.Contains(one.Body, want) {
			t.Errorf("Bea's page lacks %q", want)
		}
	}
	// 90 days of funnel: one point a day on each line.
	if m := regexp.MustCompile(`<polyline class="line clicks" points="([^"]*)"`).FindStringSubmatch(one.Body); m == nil || len(strings.Fields(m[1])) != 90 {
		t.Errorf("the funnel does not have 90 days")
	}
	if r := w.get(base + "/nobody"); r.Status != 404 {
		t.Errorf("an unknown partner's page: %d", r.Status)
	}
	if r := w.get(base + "/bea?days=0"); r.Status != 422 || !strings.Contains(r.Body, `id="range-error"`) {
		t.Errorf("a bad range on the partner page: %d", r.Status)
	}
}

// TestAdminWebCustomerSearch: customers by key or email, partner and
// range, each kept in the export link.
func TestAdminWebCustomerSearch(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := reportsFixture(t, ts)
	base := "/admin/programs/" + p.ID + "/customers"
	rows := func(body string) string {
		var keys []string
		for _, m := range regexp.MustCompile(`<tr data-customer="([^"]+)">`).FindAllStringSubmatch(body, -1) {
			keys = append(keys, m[1])
		}
		return strings.Join(keys, " ")
	}
	for q, want := range map[string]string{
		"":                                  "c3 c2 c1",
		"?q=buyer.example":                  "c1",
		"?q=c2":                             "c2",
		"?partner=bea":                      "c3 c2",
		"?q=zzz":                            "",
		"?days=7":                           "c3 c2 c1", // customers are created today, whatever their sales' dates
		"?from=2020-01-01&until=2020-02-01": "",
	} {
		if got := rows(w.get(base + q).Body); got != want {
			t.Errorf("%q: customers %q, want %q", q, got, want)
		}
	}
	if body := w.get(base + "?q=zzz").Body; !strings.Contains(body, "No customers match") {
		t.Errorf("a search that finds nothing does not say so")
	}
	if body := w.get(base + "?q=one&partner=ann&days=7").Body; !strings.Contains(body, `/export/customers.csv?days=7&amp;partner=ann&amp;q=one`) {
		t.Errorf("the export does not carry the filters")
	}
	if body := w.get(base).Body; !strings.Contains(body, `href="/admin/programs/`+p.ID+`/export/customers.csv"`) {
		t.Errorf("the export of all customers is not all time")
	}
}

// TestAdminWebRefusalsCard: the setup page says what /collect refused in
// the last 24 h, per reason, with the fix one click away where one change
// fixes it.
func TestAdminWebRefusalsCard(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram(`{"name":"Shop","allowed_origins":["https://shop.example"]}`)
	if body := w.get("/admin/programs/" + p.ID).Body; !strings.Contains(body, `id="no-refusals"`) {
		t.Errorf("no word that nothing was refused")
	}
	sale := func(i int) string {
		return fmt.Sprintf(`{"program":%q,"type":"transactions.create","url":"https://shop.example/thanks",
			"data":{"key":"r-%d","amount":"5.00","customer":{"key":"rc-%d"}},"options":{"create_customer":true}}`, p.ID, i, i)
	}
	for i := range 2 {
		ts.request("POST", "/collect", sale(i), "Origin", "https://shop.example", "Content-Type", "text/plain")
	}
	ts.request("POST", "/collect", sale(9), "Origin", "https://www.shop.example", "Content-Type", "text/plain")
	body := w.get("/admin/programs/" + p.ID).Body
	for _, want := range []string{
		"In the last 24 h: 2 sales refused because JS tracking is off.",
		`id="fix-js-tracking"`,
		"In the last 24 h: 1 call refused because their site is not an allowed origin.",
		`name="origin" value="https://www.shop.example"`, `id="fix-origin">Allow https://www.shop.example<`,
		"The last 3 refused calls",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the setup page lacks %q", want)
		}
	}
	// The fixes are the setup page's own forms.
	if r := w.post("/admin/programs/"+p.ID+"/settings/tracking", url.Values{"js_tracking": {"on"}}); r.Status != 303 {
		t.Fatalf("fix: %d", r.Status)
	}
	if body := w.get("/admin/programs/" + p.ID).Body; strings.Contains(body, `id="fix-js-tracking"`) {
		t.Errorf("the fix is offered while JS tracking is on")
	}
}

// TestAdminWebLandingPage: the setup page sets where referral links point
// (the admin API's landing_url, checked the same way), and the links on
// the partners page follow it.
func TestAdminWebLandingPage(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram(`{"name":"Shop","allowed_origins":["https://*.shop.example","https://shop.example"],"referral_params":["ref"]}`)
	if r := ts.api(p, "POST", "/v1/partners", `{"key":"ann b"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	setup := "/admin/programs/" + p.ID
	if body := w.get(setup).Body; !strings.Contains(body, `id="landing-now">https://shop.example/<`) || !strings.Contains(body, "the first allowed origin") {
		t.Errorf("the setup page does not say links lead to the first exact origin")
	}
	r := w.post(setup+"/settings/landing", url.Values{"landing_url": {"https://shop.example/welcome?utm_source=partners"}})
	if r.Status != 303 {
		t.Fatalf("save: %d %s", r.Status, r.Body)
	}
	if n := ts.count(`SELECT count(*) FROM programs WHERE landing_url = 'https://shop.example/welcome?utm_source=partners'`); n != 1 {
		t.Fatal("landing_url not stored")
	}
	if body := w.get(setup + "/partners").Body; !strings.Contains(body, "https://shop.example/welcome?ref=ann%20b&amp;utm_source=partners") {
		t.Errorf("the partner's link does not follow the landing page:\n%s", body)
	}
	r = w.post(setup+"/settings/landing", url.Values{"landing_url": {"javascript:alert(1)"}})
	if r.Status != 422 || !strings.Contains(r.Body, `id="landing-error"`) || !strings.Contains(r.Body, `value="javascript:alert(1)"`) {
		t.Errorf("a bad landing page: %d, not said next to the field", r.Status)
	}
	if r := w.post(setup+"/settings/landing", url.Values{"landing_url": {""}}); r.Status != 303 {
		t.Errorf("clearing: %d", r.Status)
	}
	if n := ts.count(`SELECT count(*) FROM programs WHERE landing_url = ''`); n != 1 {
		t.Error("landing_url not cleared")
	}
}

// TestAffRedirect: /aff/KEY records the click and sends the visitor to
// the landing page with the referral and a token, so the landing page's
// own click is not counted again; it never strands a visitor.
func TestAffRedirect(t *testing.T) {
	ts := newTestServer(t, noLimits)
	p := ts.createProgram(`{"name":"Shop","js_tracking":true,"allowed_origins":["https://shop.example"]}`)
	if r := ts.api(p, "POST", "/v1/partners", `{"key":"ann"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	clicks := func() int { return ts.count(`SELECT count(*) FROM clicks`) }

	r := ts.request("GET", "/aff/ann?program="+p.ID, "", "Referer", "https://blog.example/post")
	loc, err := url.Parse(r.Header.Get("Location"))
	if r.Status != 302 || err != nil || loc.Scheme+"://"+loc.Host+loc.Path != "https://shop.example/" || loc.Query().Get("aff") != "ann" {
		t.Fatalf("/aff/ann: %d, Location %q", r.Status, r.Header.Get("Location"))
	}
	if n := ts.count(`SELECT count(*) FROM clicks WHERE url = ? AND referrer = 'https://blog.example/post'`, "http://example.com/aff/ann?program="+p.ID); n != 1 {
		t.Fatalf("the /aff click is not stored as it came")
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the redirect may be cached: %q", r.Header.Get("Cache-Control"))
	}
	// The landing page's script reports the click: answered as usual,
	// not stored again.
	landing := loc.String()
	click := clickBody(p.ID, landing, "", "")
	a := ts.request("POST", "/collect", click, "Origin", "https://shop.example", "Content-Type", "text/plain")
	if a.Status != 201 || !strings.Contains(a.Body, `"partner":"ann"`) || clicks() != 1 {
		t.Errorf("the landing's click: %d %s, %d clicks stored, want 1", a.Status, a.Body, clicks())
	}
	// A token for another partner, forged, or an hour old is no token.
	other := strings.Replace(landing, "aff=ann", "aff=bob", 1)
	if r := ts.api(p, "POST", "/v1/partners", `{"key":"bob"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	forged := regexp.MustCompile(`po_click=[^&]+`).ReplaceAllString(landing, "po_click=123.AAAAAAAAAAAAAAAA")
	prog, _ := ts.store.Program(t.Context(), p.ID)
	stale := regexp.MustCompile(`po_click=[^&]+`).ReplaceAllString(landing, "po_click="+affClickToken(prog, "ann", time.Now().Add(-2*time.Hour)))
	for _, u := range []string{other, forged, stale} {
		before := clicks()
		ts.request("POST", "/collect", clickBody(p.ID, u, "", ""), "Origin", "https://shop.example", "Content-Type", "text/plain")
		if clicks() != before+1 {
			t.Errorf("%s: not stored", u)
		}
	}
	// An unknown partner still reaches the shop, without a referral.
	before := clicks()
	if r := ts.request("GET", "/aff/nobody?program="+p.ID, ""); r.Status != 302 || r.Header.Get("Location") != "https://shop.example/" || clicks() != before {
		t.Errorf("/aff/nobody: %d %q", r.Status, r.Header.Get("Location"))
	}
	// HEAD (link previews) is redirected without a click.
	if r := ts.request("HEAD", "/aff/ann?program="+p.ID, ""); r.Status != 302 || clicks() != before {
		t.Errorf("HEAD /aff/ann: %d, %d clicks", r.Status, clicks()-before)
	}
	// The only program may be left out; with two, the link must name it.
	if r := ts.request("GET", "/aff/ann", ""); r.Status != 302 || clicks() != before+1 {
		t.Errorf("/aff/ann on a one-program server: %d", r.Status)
	}
	q := ts.createProgram(`{"name":"No landing"}`)
	if r := ts.request("GET", "/aff/ann", ""); r.Status != 404 || !strings.Contains(r.Body, "must name its program") {
		t.Errorf("/aff/ann on a two-program server: %d %s", r.Status, r.Body)
	}
	if r := ts.api(q, "POST", "/v1/partners", `{"key":"zed"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	if r := ts.request("GET", "/aff/zed?program="+q.ID, ""); r.Status != 404 {
		t.Errorf("/aff for a program without a landing page: %d", r.Status)
	}
	if r := ts.request("GET", "/aff/ann?program=nope", ""); r.Status != 404 {
		t.Errorf("/aff for an unknown program: %d", r.Status)
	}
	// A landing page with its own query keeps it.
	if r := ts.admin("PATCH", "/admin/api/programs/"+p.ID, `{"landing_url":"https://shop.example/hi?x=1"}`); r.Status != 200 {
		t.Fatal(r.Body)
	}
	if r := ts.request("GET", "/aff/ann?program="+p.ID, ""); !strings.HasPrefix(r.Header.Get("Location"), "https://shop.example/hi?aff=ann&po_click=") || !strings.HasSuffix(r.Header.Get("Location"), "&x=1") {
		t.Errorf("/aff to a landing page with a query: %q", r.Header.Get("Location"))
	}
}
