package server

import (
	"html"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/snippet"
	"github.com/potrack/potrack/store"
)

// webClient is a signed-in browser as far as the HTTP side can tell: the
// session cookie and the CSRF token of its pages.
type webClient struct {
	ts     *testServer
	cookie string
	csrf   string
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// signIn posts the admin token to the sign-in form and reads the CSRF token
// off the programs page.
func (ts *testServer) signIn() *webClient {
	ts.t.Helper()
	r := ts.request("POST", "/admin/login", "token="+url.QueryEscape(testAdminToken),
		"Content-Type", "application/x-www-form-urlencoded")
	if r.Status != 303 {
		ts.t.Fatalf("sign in: %d %s", r.Status, r.Body)
	}
	cookie := sessionCookieOf(r)
	if cookie == "" {
		ts.t.Fatalf("sign in set no session cookie: %v", r.Header)
	}
	w := &webClient{ts: ts, cookie: cookie}
	page := w.get("/admin")
	if page.Status != 200 {
		ts.t.Fatalf("programs page after sign-in: %d", page.Status)
	}
	m := csrfRe.FindStringSubmatch(page.Body)
	if m == nil {
		ts.t.Fatalf("no CSRF token on the programs page")
	}
	w.csrf = m[1]
	return w
}

func sessionCookieOf(r *response) string {
	for _, c := range r.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(c, sessionCookie+"="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v
		}
	}
	return ""
}

func (w *webClient) get(path string) *response {
	w.ts.t.Helper()
	return w.ts.request("GET", path, "", "Cookie", sessionCookie+"="+w.cookie)
}

// post sends a form with the session's CSRF token (unless values sets its
// own) and extra header pairs.
func (w *webClient) post(path string, values url.Values, headers ...string) *response {
	w.ts.t.Helper()
	if values == nil {
		values = url.Values{}
	}
	if _, ok := values["csrf"]; !ok {
		values.Set("csrf", w.csrf)
	}
	h := append([]string{"Cookie", sessionCookie + "=" + w.cookie, "Content-Type", "application/x-www-form-urlencoded"}, headers...)
	return w.ts.request("POST", path, values.Encode(), h...)
}

func TestAdminWebSignIn(t *testing.T) {
	ts := newTestServer(t)
	form := "Content-Type"
	urlencoded := "application/x-www-form-urlencoded"
	tests := []struct {
		name      string
		token     string
		headers   []string
		status    int
		setCookie bool
	}{
		{"right token", testAdminToken, nil, 303, true},
		{"wrong token", "nope", nil, 401, false},
		{"empty token", "", nil, 401, false},
		{"token with a space added", testAdminToken + "x", nil, 401, false},
		{"right token from another site", testAdminToken, []string{"Origin", "https://evil.example"}, 403, false},
		{"right token, same origin", testAdminToken, []string{"Origin", "http://example.com"}, 303, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := append([]string{form, urlencoded}, tt.headers...)
			r := ts.request("POST", "/admin/login", "token="+url.QueryEscape(tt.token), h...)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if got := sessionCookieOf(r) != ""; got != tt.setCookie {
				t.Fatalf("session cookie set: %v, want %v", got, tt.setCookie)
			}
			if tt.status == 401 && !strings.Contains(r.Body, "That admin token is not right") {
				t.Errorf("the sign-in page does not say the token was wrong:\n%s", r.Body)
			}
		})
	}

	t.Run("cookie flags", func(t *testing.T) {
		r := ts.request("POST", "/admin/login", "token="+testAdminToken, form, urlencoded)
		raw := strings.Join(r.Header.Values("Set-Cookie"), "\n")
		for _, want := range []string{"HttpOnly", "SameSite=Strict", "path=/admin"} {
			if !strings.Contains(strings.ToLower(raw), strings.ToLower(want)) {
				t.Errorf("Set-Cookie %q lacks %s", raw, want)
			}
		}
		if strings.Contains(strings.ToLower(raw), "secure") {
			t.Errorf("Set-Cookie %q is Secure on plain http", raw)
		}
	})
	t.Run("secure behind an https public URL", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config) { c.PublicURL = "https://track.example" })
		r := ts.request("POST", "/admin/login", "token="+testAdminToken, form, urlencoded)
		if raw := strings.Join(r.Header.Values("Set-Cookie"), "\n"); !strings.Contains(strings.ToLower(raw), "secure") {
			t.Errorf("Set-Cookie %q is not Secure", raw)
		}
	})
	t.Run("next stays inside the admin page", func(t *testing.T) {
		for next, want := range map[string]string{
			"/admin/programs/x":      "/admin/programs/x",
			"https://evil.example/":  "/admin",
			"//evil.example/admin":   "/admin",
			"/admin\\@evil.example":  "/admin",
			"/adminx/../../evil":     "/adminx/../../evil", // stays on this host
			"/admin/login?next=/foo": "/admin",
		} {
			r := ts.request("POST", "/admin/login", "token="+testAdminToken+"&next="+url.QueryEscape(next), form, urlencoded)
			if got := r.Header.Get("Location"); got != want {
				t.Errorf("next=%q: redirected to %q, want %q", next, got, want)
			}
		}
	})
}

func TestAdminWebRequiresSession(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	pages := []string{"/admin", "/admin/programs/" + p.ID, "/admin/programs/" + p.ID + "/partners",
		"/admin/programs/" + p.ID + "/customers", "/admin/programs/" + p.ID + "/transactions",
		"/admin/programs/" + p.ID + "/refund?key=x"}
	cookies := map[string]string{
		"no cookie":       "",
		"garbage cookie":  sessionCookie + "=garbage",
		"forged cookie":   sessionCookie + "=9999999999.abc." + strings.Repeat("0", 64),
		"expired session": "",
	}
	// A real session whose time is up.
	expired := ts.signIn()
	ts.exec(`UPDATE admin_sessions SET expires_at = 1000 WHERE token_hash = ?`, hashSecret(expired.cookie))
	cookies["expired session"] = sessionCookie + "=" + expired.cookie

	for name, cookie := range cookies {
		for _, path := range pages {
			t.Run(name+" GET "+path, func(t *testing.T) {
				r := ts.request("GET", path, "", "Cookie", cookie)
				if r.Status != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/admin/login?next=") {
					t.Fatalf("status %d to %q, want 303 to the sign-in page", r.Status, r.Header.Get("Location"))
				}
			})
		}
		forms := map[string]url.Values{
			"/admin/programs": {"name": {"Sneaky"}},
			"/admin/programs/" + p.ID + "/settings/tracking":         {"js_tracking": {"on"}},
			"/admin/programs/" + p.ID + "/settings/origins-add":      {"origin": {"https://evil.example"}},
			"/admin/programs/" + p.ID + "/partners":                  {"key": {"sneaky"}},
			"/admin/programs/" + p.ID + "/rotate":                    {"secret": {"api_key"}},
			"/admin/programs/" + p.ID + "/refund":                    {"key": {"x"}},
			"/admin/programs/" + p.ID + "/settings/commission":       {"type": {"fixed"}, "value": {"1"}},
			"/admin/programs/" + p.ID + "/settings/signature":        {"js_require_signature": {"on"}},
			"/admin/programs/" + p.ID + "/settings/general":          {"name": {"x"}},
			"/admin/programs/" + p.ID + "/settings/script":           {"spa": {"on"}, "link_domains": {"evil.example"}},
			"/admin/programs/" + p.ID + "/settings/origins-remove":   {"origin": {"x"}},
			"/admin/programs/" + p.ID + "/settings/unknown-section":  {},
			"/admin/programs/no-such-program/settings/tracking":      {"js_tracking": {"on"}},
			"/admin/programs/" + p.ID + "/partners?created=1&page=2": {"key": {"sneaky2"}},
		}
		for path, values := range forms {
			t.Run(name+" POST "+path, func(t *testing.T) {
				r := ts.request("POST", path, values.Encode(), "Cookie", cookie, "Content-Type", "application/x-www-form-urlencoded")
				if r.Status != 403 {
					t.Fatalf("status %d, want 403", r.Status)
				}
			})
		}
	}
	if n := ts.count(`SELECT count(*) FROM programs`); n != 1 {
		t.Errorf("%d programs, want 1: a refused form changed data", n)
	}
	if n := ts.count(`SELECT count(*) FROM partners`); n != 0 {
		t.Errorf("%d partners, want 0: a refused form changed data", n)
	}
	if n := ts.count(`SELECT count(*) FROM programs WHERE js_tracking = TRUE OR allowed_origins != '[]' OR spa = TRUE OR link_domains != '[]'`); n != 0 {
		t.Errorf("a refused form changed the program's settings")
	}
}

func TestAdminWebRequiresCSRF(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram("")
	other := ts.signIn() // another session: its token must not work for w

	tests := []struct {
		name    string
		csrf    []string // nil: the right token
		headers []string
		status  int
	}{
		{"no token", []string{}, nil, 403},
		{"empty token", []string{""}, nil, 403},
		{"wrong token", []string{strings.Repeat("a", 64)}, nil, 403},
		{"another session's token", []string{other.csrf}, nil, 403},
		{"right token from another site", nil, []string{"Origin", "https://evil.example"}, 403},
		{"right token, referer of another site", nil, []string{"Referer", "https://evil.example/admin"}, 403},
		{"right token, same origin", nil, []string{"Origin", "http://example.com"}, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := url.Values{"js_tracking": {"on"}}
			if tt.csrf != nil {
				values["csrf"] = tt.csrf
			}
			r := w.post("/admin/programs/"+p.ID+"/settings/tracking", values, tt.headers...)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d", r.Status, tt.status)
			}
			on := ts.count(`SELECT CASE WHEN js_tracking THEN 1 ELSE 0 END FROM programs WHERE id = ?`, p.ID)
			if want := map[bool]int{true: 1, false: 0}[tt.status == 303]; on != want {
				t.Fatalf("js_tracking = %d, want %d", on, want)
			}
			if tt.status == 403 && !strings.Contains(r.Body, "<!doctype html>") {
				t.Errorf("the refusal is not an HTML page: %s", r.Body)
			}
		})
	}

	t.Run("creating a program without a token stores nothing", func(t *testing.T) {
		r := w.post("/admin/programs", url.Values{"name": {"X"}, "csrf": {""}})
		if r.Status != 403 || ts.count(`SELECT count(*) FROM programs`) != 1 {
			t.Fatalf("status %d, %d programs", r.Status, ts.count(`SELECT count(*) FROM programs`))
		}
	})
	t.Run("signing out a live session needs its CSRF token", func(t *testing.T) {
		r := ts.request("POST", "/admin/logout", "", "Cookie", sessionCookie+"="+w.cookie, "Content-Type", "application/x-www-form-urlencoded")
		if r.Status != 403 || sessionCookieOf(r) != "" || r.Header.Get("Set-Cookie") != "" {
			t.Fatalf("sign out without a token: %d, Set-Cookie %q", r.Status, r.Header.Get("Set-Cookie"))
		}
	})
	t.Run("signing out without a session goes to the sign-in page", func(t *testing.T) {
		r := ts.request("POST", "/admin/logout", "", "Content-Type", "application/x-www-form-urlencoded")
		if r.Status != 303 || r.Header.Get("Location") != "/admin/login?signed_out=1" {
			t.Fatalf("sign out without a session: %d %s", r.Status, r.Header.Get("Location"))
		}
	})
	t.Run("sign-out ends the session in the browser", func(t *testing.T) {
		r := other.post("/admin/logout", nil)
		if r.Status != 303 || r.Header.Get("Location") != "/admin/login?signed_out=1" {
			t.Fatalf("sign out: %d %s", r.Status, r.Header.Get("Location"))
		}
		if c := sessionCookieOf(r); c != "" {
			t.Fatalf("sign-out set a session cookie %q", c)
		}
	})
}

func TestAdminWebChangedTokenEndsSessions(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "potrack.db")
	first := newTestServer(t, func(c *Config) { c.DB = db })
	w := first.signIn()
	first.store.Close()

	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// In this order: a change ends the sessions for good, changing the
	// token back does not bring them back.
	for _, step := range []struct {
		token string
		want  int
	}{{testAdminToken, 200}, {"another-admin-token", 303}, {testAdminToken, 303}} {
		srv, err := New(Config{DB: db, AdminToken: step.token}, st)
		if err != nil {
			t.Fatal(err)
		}
		ts := &testServer{Server: srv, t: t, store: st, dir: dir}
		if r := ts.request("GET", "/admin", "", "Cookie", sessionCookie+"="+w.cookie); r.Status != step.want {
			t.Errorf("admin token %q: status %d, want %d", step.token, r.Status, step.want)
		}
	}
}

func TestAdminWebEscapesWhatItShows(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	const evil = `<script>alert(1)</script>`
	r := w.post("/admin/programs", url.Values{"name": {evil}})
	if r.Status != 303 {
		t.Fatalf("create program: %d %s", r.Status, r.Body)
	}
	r = w.get(r.Header.Get("Location"))
	var id string
	if m := regexp.MustCompile(`/admin/programs/([a-z0-9]+)/partners`).FindStringSubmatch(r.Body); m != nil {
		id = m[1]
	} else {
		t.Fatal("no program link on the created program's page")
	}
	r = w.post("/admin/programs/"+id+"/partners", url.Values{"key": {`k"><b>`}, "name": {evil}, "email": {"a@example.com"}})
	if r.Status != 303 {
		t.Fatalf("create partner: %d %s", r.Status, r.Body)
	}
	if n := ts.count(`SELECT count(*) FROM partners WHERE name = ?`, evil); n != 1 {
		t.Fatalf("partner stored %d times", n)
	}
	for _, path := range []string{"/admin", "/admin/programs/" + id, "/admin/programs/" + id + "/partners"} {
		page := w.get(path)
		if page.Status != 200 {
			t.Fatalf("%s: %d", path, page.Status)
		}
		if strings.Contains(page.Body, evil) || strings.Contains(page.Body, `"><b>`) {
			t.Errorf("%s shows markup unescaped", path)
		}
		if !strings.Contains(page.Body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the name as text", path)
		}
	}
}

// programWithSale creates a program and a referred, rewarded sale through the
// REST API.
func (ts *testServer) programWithSale(t *testing.T) testProgram {
	t.Helper()
	p := ts.createProgram(`{"name":"Shop","commission":{"type":"percent","value":"20"}}`)
	if r := ts.api(p, "POST", "/v1/partners", `{"key":"alice","name":"Alice"}`); r.Status != 201 {
		t.Fatalf("partner: %d %s", r.Status, r.Body)
	}
	r := ts.api(p, "POST", "/v1/transactions", `{"key":"order-1","amount":"25.00","customer":{"key":"c1","partner":{"key":"alice"}},"options":{"create_customer":true}}`)
	if r.Status != 201 {
		t.Fatalf("transaction: %d %s", r.Status, r.Body)
	}
	return p
}

func TestAdminWebProgramSettings(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram("")
	base := "/admin/programs/" + p.ID
	tests := []struct {
		name     string
		section  string
		values   url.Values
		status   int
		pageText string // on the answer (422) or after following the redirect (303)
		check    string // SQL that must count 1
	}{
		{"turn JS tracking on", "tracking", url.Values{"js_tracking": {"on"}}, 303, "JS tracking settings saved",
			`SELECT count(*) FROM programs WHERE js_tracking = TRUE`},
		{"require signatures", "signature", url.Values{"js_require_signature": {"on"}}, 303, "Required",
			`SELECT count(*) FROM programs WHERE js_require_signature = TRUE`},
		{"add an origin", "origins-add", url.Values{"origin": {"HTTPS://Shop.Example/"}}, 303, "https://shop.example",
			`SELECT count(*) FROM programs WHERE allowed_origins = '["https://shop.example"]'`},
		{"add a wildcard origin", "origins-add", url.Values{"origin": {"https://*.shop.example"}}, 303, "https://*.shop.example",
			`SELECT count(*) FROM programs WHERE allowed_origins = '["https://shop.example","https://*.shop.example"]'`},
		{"refuse an origin with a path", "origins-add", url.Values{"origin": {"https://shop.example/cart"}}, 422, "without a path",
			`SELECT count(*) FROM programs WHERE allowed_origins = '["https://shop.example","https://*.shop.example"]'`},
		{"refuse a non-origin", "origins-add", url.Values{"origin": {"javascript:alert(1)"}}, 422, "is not an origin",
			`SELECT count(*) FROM programs WHERE allowed_origins = '["https://shop.example","https://*.shop.example"]'`},
		{"refuse an empty origin", "origins-add", url.Values{"origin": {" "}}, 422, "Enter an origin",
			`SELECT count(*) FROM programs WHERE allowed_origins = '["https://shop.example","https://*.shop.example"]'`},
		{"remove an origin", "origins-remove", url.Values{"origin": {"https://shop.example"}}, 303, "Allowed origins saved",
			`SELECT count(*) FROM programs WHERE allowed_origins = '["https://*.shop.example"]'`},
		{"save settings", "general", url.Values{"name": {"Renamed"}, "currency": {"eur"}, "cookie_days": {"60"},
			"referral_params": {"aff, ref"}, "attribution": {"first"}}, 303, "Renamed",
			`SELECT count(*) FROM programs WHERE name = 'Renamed' AND currency = 'EUR' AND cookie_days = 60
				AND referral_params = '["aff","ref"]' AND attribution = 'first'`},
		{"refuse cookie days", "general", url.Values{"name": {"X"}, "currency": {"EUR"}, "cookie_days": {"many"},
			"referral_params": {"aff"}, "attribution": {"last"}}, 422, "Cookie lifetime must be a whole number",
			`SELECT count(*) FROM programs WHERE name = 'Renamed'`},
		{"refuse a currency", "general", url.Values{"name": {"X"}, "currency": {"XXXX"}, "cookie_days": {"30"},
			"referral_params": {"aff"}, "attribution": {"last"}}, 422, "ISO 4217",
			`SELECT count(*) FROM programs WHERE name = 'Renamed'`},
		{"save commission with overrides", "commission", url.Values{"type": {"percent"}, "value": {"12.5"},
			"limit_type": {"transactions"}, "limit_value": {"3"}, "rule_rows": {"3"},
			"rule_0_match": {"product_id"}, "rule_0_product": {"pro"}, "rule_0_type": {"fixed"}, "rule_0_value": {"5.00"}, "rule_0_limit_type": {"lifetime"},
			"rule_1_match": {"product_type"}, "rule_1_product": {"course"}, "rule_1_type": {"percent"}, "rule_1_value": {"30"}, "rule_1_limit_type": {"days"}, "rule_1_limit_value": {"90"},
			"rule_2_match": {"product_id"}, "rule_2_product": {""}, "rule_2_type": {"percent"}},
			303, "Commission rules saved",
			`SELECT count(*) FROM programs WHERE commission = '{"type":"percent","value":"12.5","limit":{"type":"transactions","value":3},"rules":[` +
				`{"product_id":"pro","type":"fixed","value":"5.00"},{"product_type":"course","type":"percent","value":"30","limit":{"type":"days","value":90}}]}'`},
		{"remove an override", "commission", url.Values{"type": {"percent"}, "value": {"12.5"}, "limit_type": {"lifetime"}, "rule_rows": {"2"},
			"rule_0_match": {"product_id"}, "rule_0_product": {"pro"}, "rule_0_type": {"fixed"}, "rule_0_value": {"5.00"}, "rule_0_remove": {"on"},
			"rule_1_match": {"product_type"}, "rule_1_product": {"course"}, "rule_1_type": {"percent"}, "rule_1_value": {"30"}},
			303, "Commission rules saved",
			`SELECT count(*) FROM programs WHERE commission = '{"type":"percent","value":"12.5","rules":[{"product_type":"course","type":"percent","value":"30"}]}'`},
		{"refuse a percent over 100", "commission", url.Values{"type": {"percent"}, "value": {"120"}, "limit_type": {"lifetime"}},
			422, "Default commission: Value must be a percentage", `SELECT count(*) FROM programs WHERE commission LIKE '%"12.5"%'`},
		{"refuse a bad override", "commission", url.Values{"type": {"percent"}, "value": {"10"}, "rule_rows": {"1"},
			"rule_0_match": {"product_id"}, "rule_0_product": {"pro"}, "rule_0_type": {"fixed"}, "rule_0_value": {"1.234"}},
			422, "Product rule 1:", `SELECT count(*) FROM programs WHERE commission LIKE '%"12.5"%'`},
		{"refuse a bad limit", "commission", url.Values{"type": {"percent"}, "value": {"10"}, "limit_type": {"days"}, "limit_value": {"soon"}},
			422, "whole number", `SELECT count(*) FROM programs WHERE commission LIKE '%"12.5"%'`},
		{"refuse an unknown section", "nope", url.Values{}, 404, "Not found", `SELECT count(*) FROM programs WHERE name = 'Renamed'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.post(base+"/settings/"+tt.section, tt.values)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d:\n%s", r.Status, tt.status, r.Body)
			}
			body := r.Body
			if r.Status == 303 {
				body = w.get(r.Header.Get("Location")).Body
			}
			if !strings.Contains(body, tt.pageText) {
				t.Errorf("page lacks %q:\n%s", tt.pageText, body)
			}
			if n := ts.count(tt.check); n != 1 {
				t.Errorf("%s counted %d, want 1", tt.check, n)
			}
		})
	}
}

func TestAdminWebRotateSecret(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram("")
	// The Keys card's button asks first, on a page of its own; asking
	// changes nothing.
	confirm := w.get("/admin/programs/" + p.ID + "/rotate?secret=api_key")
	if confirm.Status != 200 || !strings.Contains(confirm.Body, "Make a new API key?") || !strings.Contains(confirm.Body, `id="confirm-rotate"`) ||
		!strings.Contains(confirm.Body, `name="secret" value="api_key"`) {
		t.Fatalf("confirmation page: %d %s", confirm.Status, confirm.Body)
	}
	if got := ts.api(p, "GET", "/v1/transactions", "").Status; got != 200 {
		t.Fatalf("the confirmation page changed the key: %d", got)
	}
	if r := w.get("/admin/programs/" + p.ID + "/rotate?secret=admin"); r.Status != 404 {
		t.Errorf("confirmation of an unknown secret: %d, want 404", r.Status)
	}
	// Confirmed: post, then redirect to the page that shows the key once.
	r := w.post("/admin/programs/"+p.ID+"/rotate", url.Values{"secret": {"api_key"}})
	if r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "?shown=") {
		t.Fatalf("rotate: %d %s %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	shown := r.Header.Get("Location")
	r = w.get(shown)
	m := regexp.MustCompile(`<code id="secret-0" class="secret">(pk_[a-z0-9]+)</code>`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("the new API key is not shown:\n%s", r.Body)
	}
	// The slot holds the key sealed: the database never has it in clear.
	if n := ts.count(`SELECT count(*) FROM shown_once`); n != 0 {
		t.Errorf("%d shown-once slots left after the page showed them", n)
	}
	// Reloading shows a note, not the key, and rotates nothing.
	again := w.get(shown)
	if strings.Contains(again.Body, m[1]) || !strings.Contains(again.Body, "shown once and are not shown again") {
		t.Errorf("reloading the page shows the key again or no note:\n%s", again.Body)
	}
	if got := ts.api(testProgram{APIKey: m[1]}, "GET", "/v1/transactions", "").Status; got != 200 {
		t.Errorf("the key shown stopped working after the reload: %d", got)
	}
	if got := ts.api(p, "GET", "/v1/transactions", "").Status; got != 401 {
		t.Errorf("old key: %d, want 401", got)
	}
	if got := ts.api(testProgram{APIKey: m[1]}, "GET", "/v1/transactions", "").Status; got != 200 {
		t.Errorf("new key: %d, want 200", got)
	}
	if strings.Contains(w.get("/admin/programs/"+p.ID).Body, m[1]) {
		t.Error("the program page shows the API key again")
	}
	if r := w.post("/admin/programs/"+p.ID+"/rotate", url.Values{"secret": {"admin"}}); r.Status != 422 {
		t.Errorf("unknown secret: %d, want 422", r.Status)
	}
}

func TestAdminWebPartners(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram(`{"name":"Shop","allowed_origins":["https://*.shop.example","https://shop.example"]}`)
	base := "/admin/programs/" + p.ID + "/partners"
	tests := []struct {
		name   string
		values url.Values
		status int
		text   string
	}{
		{"add", url.Values{"key": {"jane"}, "name": {"Jane"}, "email": {"jane@example.com"}}, 303, "https://shop.example/?aff=jane"},
		{"same key again", url.Values{"key": {"jane"}, "name": {"Jane"}, "email": {"jane@example.com"}}, 422, "already has this key"},
		{"no key", url.Values{"key": {""}, "name": {"Nobody"}}, 422, "key is required"},
		{"bad email", url.Values{"key": {"bob"}, "email": {"not an email"}}, 422, "not an email"},
		{"key that needs escaping in a link", url.Values{"key": {"a b&c"}}, 303, "https://shop.example/?aff=a%20b%26c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.post(base, tt.values)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			body := r.Body
			if r.Status == 303 {
				body = w.get(r.Header.Get("Location")).Body
			}
			if !strings.Contains(body, tt.text) {
				t.Errorf("page lacks %q:\n%s", tt.text, body)
			}
		})
	}
	if n := ts.count(`SELECT count(*) FROM partners WHERE program_id = ?`, p.ID); n != 2 {
		t.Errorf("%d partners stored, want 2", n)
	}
	// Without a page to land on there is no link: potrack's own root is
	// no page for a visitor (it was one, a JSON 404).
	t.Run("no link without a landing page", func(t *testing.T) {
		q := ts.createProgram(`{"name":"No origins"}`)
		w.post("/admin/programs/"+q.ID+"/partners", url.Values{"key": {"zed"}})
		body := w.get("/admin/programs/" + q.ID + "/partners").Body
		if strings.Contains(body, "http://example.com/?aff=zed") || !strings.Contains(body, "No landing page yet") || !strings.Contains(body, `id="no-landing"`) {
			t.Errorf("a link to this server, or no word of the missing landing page:\n%s", body)
		}
	})
}

func TestAdminWebListsPaginate(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram("")
	for i := range webPageSize + 3 {
		key := "p" + strings.Repeat("x", i)
		if r := ts.api(p, "POST", "/v1/partners", `{"key":"`+key+`"}`); r.Status != 201 {
			t.Fatal(r.Body)
		}
	}
	first := w.get("/admin/programs/" + p.ID + "/partners")
	if !strings.Contains(first.Body, "1–25 of 28") || !strings.Contains(first.Body, "page=2") {
		t.Fatalf("first page has no pager:\n%s", first.Body)
	}
	second := w.get("/admin/programs/" + p.ID + "/partners?page=2")
	if !strings.Contains(second.Body, "26–28 of 28") {
		t.Fatalf("second page:\n%s", second.Body)
	}
	if got := strings.Count(second.Body, `<tr data-partner=`); got != 3 {
		t.Errorf("second page shows %d partners, want 3", got)
	}
	if r := w.get("/admin/programs/" + p.ID + "/partners?page=-1"); r.Status != 200 {
		t.Errorf("nonsense page number: %d", r.Status)
	}
	// A page after the last one leads to the last one.
	if r := w.get("/admin/programs/" + p.ID + "/partners?page=99"); r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "page=2") {
		t.Errorf("page past the end: %d, Location %q", r.Status, r.Header.Get("Location"))
	}
	// A one-time notice does not follow the page links.
	noticed := w.get("/admin/programs/" + p.ID + "/partners?created=1")
	if !strings.Contains(noticed.Body, "page=2") || strings.Contains(noticed.Body, "created=1&amp;page") || strings.Contains(noticed.Body, "created=1&page") {
		t.Errorf("the page links carry the notice flag:\n%s", noticed.Body)
	}
}

func TestAdminWebEmptyStates(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	if body := w.get("/admin").Body; !strings.Contains(body, "No programs yet") {
		t.Errorf("programs page has no empty state")
	}
	p := ts.createProgram("")
	for path, want := range map[string]string{
		"/partners":     "No partners yet",
		"/customers":    "No customers yet",
		"/transactions": "No transactions yet",
		"":              "No origins yet",
	} {
		if body := w.get("/admin/programs/" + p.ID + path).Body; !strings.Contains(body, want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
	if r := w.get("/admin/programs/nope"); r.Status != 404 || !strings.Contains(r.Body, "No program has this id") {
		t.Errorf("unknown program: %d %s", r.Status, r.Body)
	}
	if r := w.get("/admin/nowhere"); r.Status != 404 || !strings.Contains(r.Body, "<!doctype html>") {
		t.Errorf("unknown admin page: %d %s", r.Status, r.Body)
	}
	if r := ts.admin("GET", "/admin/api/nowhere", ""); r.Status != 404 || !strings.Contains(r.Body, `"code":"not_found"`) {
		t.Errorf("unknown admin API path: %d %s", r.Status, r.Body)
	}
}

func TestAdminWebTransactionsAndRefund(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.programWithSale(t)
	if r := ts.api(p, "POST", "/v1/transactions", `{"key":"unreferred","amount":"10.00","customer":{"key":"c2"},"options":{"create_customer":true}}`); r.Status != 201 {
		t.Fatalf("transaction: %d %s", r.Status, r.Body)
	}
	base := "/admin/programs/" + p.ID

	page := w.get(base + "/transactions")
	for _, want := range []string{`data-key="order-1"`, "$25.00", "$5.00", "to alice", ">Completed<", `id="total-sales">$35.00`, `id="total-rewards">$5.00`, "<svg", `class="bar-sales"`, `id="partner-totals"`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("transactions page lacks %q", want)
		}
	}
	filters := map[string]struct {
		rows   []string
		status int
	}{
		"?partner=alice":                    {[]string{"order-1"}, 200},
		"?source=api":                       {[]string{"order-1", "unreferred"}, 200},
		"?source=js":                        {nil, 200},
		"?status=refunded":                  {nil, 200},
		"?status=ok":                        {[]string{"order-1", "unreferred"}, 200},
		"?verified=true":                    {[]string{"order-1", "unreferred"}, 200},
		"?verified=false":                   {nil, 200},
		"?partner=nobody":                   {nil, 200},
		"?days=7":                           {[]string{"order-1", "unreferred"}, 200},
		"?from=2020-01-01&until=2020-01-31": {nil, 200},
		// A value the list cannot take is said, and filters nothing.
		"?source=<b>&status=x": {[]string{"order-1", "unreferred"}, 422},
		"?days=0":              {[]string{"order-1", "unreferred"}, 422},
	}
	for q, want := range filters {
		r := w.get(base + "/transactions" + q)
		if got := strings.Count(r.Body, "data-key="); got != len(want.rows) || r.Status != want.status {
			t.Errorf("%s: %d rows (status %d), want %d (%d)", q, got, r.Status, len(want.rows), want.status)
		}
		if want.status == 422 && !strings.Contains(r.Body, `role="alert"`) {
			t.Errorf("%s: no error shown", q)
		}
	}

	confirm := w.get(base + "/refund?key=order-1")
	if confirm.Status != 200 || !strings.Contains(confirm.Body, "Refund this transaction?") || !strings.Contains(confirm.Body, `id="confirm-refund"`) {
		t.Fatalf("confirmation page: %d %s", confirm.Status, confirm.Body)
	}
	if n := ts.count(`SELECT count(*) FROM transactions WHERE status = 'refunded'`); n != 0 {
		t.Fatal("the confirmation page refunded already")
	}
	if r := w.get(base + "/refund?key=missing"); r.Status != 404 {
		t.Errorf("refund page of a missing transaction: %d", r.Status)
	}
	if r := w.post(base+"/refund", url.Values{"key": {"missing"}}); r.Status != 404 {
		t.Errorf("refund of a missing transaction: %d", r.Status)
	}

	r := w.post(base+"/refund", url.Values{"key": {"order-1"}})
	if r.Status != 303 {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	if n := ts.count(`SELECT count(*) FROM transactions WHERE key = 'order-1' AND status = 'refunded'`); n != 1 {
		t.Fatal("transaction not refunded")
	}
	if n := ts.count(`SELECT count(*) FROM rewards WHERE status = 'reversed' AND reversed_minor = 500`); n != 1 {
		t.Fatal("reward not reversed")
	}
	after := w.get(r.Header.Get("Location")).Body
	for _, want := range []string{"refunded and its partner", "Refunded", "Reversed", `id="total-rewards">$0.00`, `id="total-sales">$10.00`} {
		if !strings.Contains(after, want) {
			t.Errorf("after the refund the page lacks %q", want)
		}
	}
	if r := w.post(base+"/refund", url.Values{"key": {"order-1"}}); r.Status != 303 {
		t.Errorf("second refund: %d", r.Status)
	}
}

func TestAdminWebStaticAssets(t *testing.T) {
	ts := newTestServer(t)
	for _, a := range []staticAsset{ts.web.css, ts.web.js} {
		r := ts.request("GET", a.url, "")
		if r.Status != 200 || r.Header.Get("ETag") != a.etag || !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: %d %v", a.url, r.Status, r.Header)
		}
		if r := ts.request("GET", a.url, "", "If-None-Match", a.etag); r.Status != 304 {
			t.Errorf("%s with its ETag: %d, want 304", a.url, r.Status)
		}
	}
	if !strings.Contains(ts.web.css.url, "?v=") {
		t.Errorf("stylesheet URL %q carries no content hash", ts.web.css.url)
	}
}

func TestAxisLabel(t *testing.T) {
	for _, tt := range []struct {
		m    rules.Money
		want string
	}{
		{rules.Money{Minor: 0, Currency: "USD"}, "$0"},
		{rules.Money{Minor: 2500, Currency: "USD"}, "$25"},
		{rules.Money{Minor: 2550, Currency: "USD"}, "$25.5"},
		{rules.Money{Minor: 250000, Currency: "USD"}, "$2,500"},
		{rules.Money{Minor: 4000000, Currency: "USD"}, "$40K"},
		{rules.Money{Minor: 150000000, Currency: "USD"}, "$1.5M"},
		{rules.Money{Minor: 1000, Currency: "JPY"}, "¥1,000"},
		{rules.Money{Minor: 9_000_000_000_000_000_000, Currency: "USD"}, "$90,000,000B"},
	} {
		if got := axisLabel(tt.m); got != tt.want {
			t.Errorf("axisLabel(%v) = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestNiceCeiling(t *testing.T) {
	tests := []struct {
		minor  int64
		digits int
		want   int64
	}{
		{0, 2, 10000},
		{1, 2, 100},
		{50, 2, 100},
		{100, 2, 100},
		{101, 2, 200},
		{12345, 2, 20000},
		{45000, 2, 50000},
		{3, 0, 4},
		{7, 0, 20},
		{999, 0, 1000},
	}
	for _, tt := range tests {
		got := niceCeiling(tt.minor, tt.digits)
		if got != tt.want {
			t.Errorf("niceCeiling(%d, %d) = %d, want %d", tt.minor, tt.digits, got, tt.want)
		}
		if got < tt.minor || got%chartTicks != 0 {
			t.Errorf("niceCeiling(%d, %d) = %d is below the maximum or not divisible into %d ticks", tt.minor, tt.digits, got, chartTicks)
		}
	}
	// Sums of many maximum sales: the axis still covers them, without
	// overflowing or looping for ever.
	for _, minor := range []int64{1_300_000_000_000_000_000, 9_170_000_000_000_000_000, math.MaxInt64 - 1, math.MaxInt64} {
		for _, digits := range []int{0, 2, 3} {
			if got := niceCeiling(minor, digits); got < minor {
				t.Errorf("niceCeiling(%d, %d) = %d, below the maximum", minor, digits, got)
			}
		}
	}
}

// TestAdminWebScriptSettings: the program page's script settings card
// saves through the admin API's validation; the page shows the stored
// settings and the snippet made from them, and a refused form shows its
// error next to the field, keeps what was typed and changes nothing.
func TestAdminWebScriptSettings(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram(`{"name":"Shop","allowed_origins":["https://www.shop.example"]}`)
	base := "/admin/programs/" + p.ID
	const all = `SELECT count(*) FROM programs WHERE cookie_domain = 'shop.example' AND link_domains = '["checkout.example","pay.example"]'
		AND require_consent = TRUE AND respect_dnt = TRUE AND spa = TRUE AND stripe_checkout = TRUE AND allowed_origins = '["https://www.shop.example"]'`
	allSettings := snippet.Settings{ReferralParams: []string{"aff"}, CookieDomain: "shop.example",
		LinkDomains: []string{"checkout.example", "pay.example"}, RequireConsent: true, RespectDNT: true, SPA: true, StripeCheckout: true}
	on := url.Values{"stripe_checkout": {"on"}, "cookie_domain": {" .Shop.Example "}, "link_domains": {"checkout.example, PAY.example\ncheckout.example"},
		"require_consent": {"on"}, "respect_dnt": {"on"}, "spa": {"on"}}
	with := func(key, value string) url.Values {
		v := url.Values{}
		for k, vs := range on {
			v[k] = vs
		}
		v.Set(key, value)
		return v
	}
	tests := []struct {
		name     string
		section  string
		values   url.Values
		status   int
		pageText []string          // on the answer (422) or after following the redirect (303)
		snippet  *snippet.Settings // the snippet the page must show, when set
		check    string            // SQL that must count 1
	}{
		{"every setting on", "script", on, 303,
			[]string{"Script settings saved", `value="shop.example"`, `value="checkout.example, pay.example"`,
				`name="require_consent" value="on" checked`, `name="respect_dnt" value="on" checked`, `name="spa" value="on" checked`,
				`name="stripe_checkout" value="on" checked`},
			&allSettings, all},
		{"a cookie domain covering no origin", "script", with("cookie_domain", "other.example"), 422,
			[]string{`id="cookie-domain-error">cookie_domain must cover one of the allowed origins`, `aria-describedby="cookie-domain-error"`,
				`value="other.example"`, `value="checkout.example, PAY.example`},
			&allSettings, all},
		{"a public suffix as cookie domain", "script", with("cookie_domain", "co.uk"), 422,
			[]string{`id="cookie-domain-error">cookie_domain cannot be a public suffix`, `value="co.uk"`}, &allSettings, all},
		{"an IP address as cookie domain", "script", with("cookie_domain", "10.0.0.1"), 422,
			[]string{`id="cookie-domain-error">cookie_domain must be a domain name, not an IP address`}, &allSettings, all},
		{"a link domain with a scheme", "script", with("link_domains", "pay.example, https://checkout.example"), 422,
			[]string{`id="link-domains-error">Link domain 2: A link domain must be a domain such as shop.example, without http://`,
				`value="pay.example, https://checkout.example"`}, &allSettings, all},
		{"removing the origin the cookie domain covers", "origins-remove", url.Values{"origin": {"https://www.shop.example"}}, 422,
			[]string{`id="origin-error">These allowed origins would leave none under cookie_domain shop.example`}, &allSettings, all},
		{"every setting off", "script", url.Values{"cookie_domain": {""}, "link_domains": {" "}}, 303,
			[]string{"Script settings saved", `name="spa" value="on" >`},
			&snippet.Settings{ReferralParams: []string{"aff"}},
			`SELECT count(*) FROM programs WHERE cookie_domain = '' AND link_domains = '[]' AND require_consent = FALSE AND respect_dnt = FALSE AND spa = FALSE AND stripe_checkout = FALSE`},
		{"the origin can go once the cookie domain is cleared", "origins-remove", url.Values{"origin": {"https://www.shop.example"}}, 303,
			[]string{"Allowed origins saved"}, nil, `SELECT count(*) FROM programs WHERE allowed_origins = '[]'`},
	}
	snippetRe := regexp.MustCompile(`(?s)<code id="snippet">(.*?)</code>`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.post(base+"/settings/"+tt.section, tt.values)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d:\n%s", r.Status, tt.status, r.Body)
			}
			body := r.Body
			if r.Status == 303 {
				body = w.get(r.Header.Get("Location")).Body
			}
			for _, want := range tt.pageText {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
			if tt.snippet != nil {
				m := snippetRe.FindStringSubmatch(body)
				want := snippet.Loader("http://example.com/js/universal.js", p.ID, *tt.snippet)
				if m == nil || html.UnescapeString(m[1]) != want {
					t.Errorf("the page's snippet is not the one of the stored settings:\n got %v\nwant %s", m, want)
				}
			}
			if n := ts.count(tt.check); n != 1 {
				t.Errorf("%s counted %d, want 1", tt.check, n)
			}
		})
	}
}
