package server

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestAdminWebCoupons: the Partners tab lists each partner's codes, adds
// one through its form (post, then redirect to the list) and deletes one
// with its button, all CSRF-checked; refused input shows next to the form.
func TestAdminWebCoupons(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram(`{"name":"Shop"}`)
	for _, body := range []string{`{"key":"sam","name":"Sam"}`, `{"key":"pat","name":"Pat"}`} {
		if r := ts.api(p, "POST", "/v1/partners", body); r.Status != 201 {
			t.Fatal(r.Status, r.Body)
		}
	}
	base := "/admin/programs/" + p.ID
	coupons := func() int { return ts.count(`SELECT count(*) FROM coupons WHERE program_id = ?`, p.ID) }

	if body := w.get(base + "/partners").Body; !strings.Contains(body, `action="/admin/programs/`+p.ID+`/coupons"`) || !strings.Contains(body, "Add a coupon code") {
		t.Fatalf("the Partners tab has no add-a-code form:\n%s", body)
	}
	adds := []struct {
		name    string
		values  url.Values
		status  int
		text    string
		coupons int
	}{
		{"add", url.Values{"code": {"Summer24"}, "partner": {"sam"}}, 303, "Code added.", 1},
		{"add another to the same partner", url.Values{"code": {" pod_1 "}, "partner": {"sam"}}, 303, "Code added.", 2},
		{"same code in another case", url.Values{"code": {"SUMMER24"}, "partner": {"pat"}}, 409, "already taken in this program, as Summer24 by partner sam", 2},
		{"invalid code", url.Values{"code": {"50% off"}, "partner": {"pat"}}, 422, "a letter (A-Z, any case), a digit, &#39;-&#39; or &#39;_&#39;", 2},
		{"no code", url.Values{"code": {""}, "partner": {"pat"}}, 422, "code must be 1 to 64 characters", 2},
		{"no partner", url.Values{"code": {"PAT1"}}, 422, "Choose the partner who owns the code", 2},
		{"unknown partner", url.Values{"code": {"PAT1"}, "partner": {"ghost"}}, 422, "No partner of this program has the key ghost.", 2},
	}
	for _, tt := range adds {
		t.Run(tt.name, func(t *testing.T) {
			ts.t = t
			r := w.post(base+"/coupons", tt.values)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			body := r.Body
			if r.Status == 303 {
				loc := r.Header.Get("Location")
				if !strings.HasPrefix(loc, base+"/partners?saved=coupon") {
					t.Errorf("redirected to %q", loc)
				}
				body = w.get(loc).Body
			} else {
				// The input stays in the form, next to the message.
				if !strings.Contains(body, `id="c-code" name="code" value="`+html.EscapeString(strings.TrimSpace(tt.values.Get("code")))+`"`) {
					t.Errorf("the form lost the code typed:\n%s", body)
				}
			}
			if !strings.Contains(body, tt.text) {
				t.Errorf("page lacks %q:\n%s", tt.text, body)
			}
			if n := coupons(); n != tt.coupons {
				t.Errorf("%d codes stored, want %d", n, tt.coupons)
			}
		})
	}
	ts.t = t
	if n := ts.count(`SELECT count(*) FROM coupons k JOIN partners p ON p.id = k.partner_id WHERE p.key = 'sam' AND k.code IN ('Summer24', 'pod_1')`); n != 2 {
		t.Fatalf("sam's codes: %d rows, want 2", n)
	}

	// Sam's row lists both codes, each with its delete button.
	page := w.get(base + "/partners").Body
	row := regexp.MustCompile(`(?s)<tr data-partner="sam">.*?</tr>`).FindString(page)
	for _, want := range []string{"<code>pod_1</code>", "<code>Summer24</code>", `aria-label="Delete code Summer24"`, `name="code" value="Summer24"`} {
		if !strings.Contains(row, want) {
			t.Errorf("Sam's row lacks %q:\n%s", want, row)
		}
	}
	// "+ code" fills the form with the partner.
	if body := w.get(base + "/partners?code_for=pat").Body; !strings.Contains(body, `id="c-partner" name="partner" value="pat"`) {
		t.Errorf("code_for does not fill the partner:\n%s", body)
	}

	t.Run("refused without CSRF token, session or from another site", func(t *testing.T) {
		ts.t = t
		for name, send := range map[string]func(path string, v url.Values) *response{
			"no token": func(path string, v url.Values) *response { v.Set("csrf", ""); return w.post(path, v) },
			"another site": func(path string, v url.Values) *response {
				return w.post(path, v, "Origin", "https://evil.example")
			},
			"no session": func(path string, v url.Values) *response {
				return ts.request("POST", path, v.Encode(), "Content-Type", "application/x-www-form-urlencoded")
			},
		} {
			for path, v := range map[string]url.Values{
				base + "/coupons":        {"code": {"SNEAKY"}, "partner": {"pat"}},
				base + "/coupons/delete": {"code": {"Summer24"}},
			} {
				if r := send(path, v); r.Status != 403 {
					t.Errorf("%s POST %s: %d, want 403", name, path, r.Status)
				}
			}
		}
		if n := coupons(); n != 2 {
			t.Errorf("%d codes after refused forms, want 2", n)
		}
	})
	ts.t = t

	t.Run("delete", func(t *testing.T) {
		ts.t = t
		r := w.post(base+"/coupons/delete", url.Values{"code": {"summer24"}, "page": {"1"}})
		if r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "saved=coupon-deleted") {
			t.Fatalf("delete: %d to %q", r.Status, r.Header.Get("Location"))
		}
		if body := w.get(r.Header.Get("Location")).Body; !strings.Contains(body, "Code deleted.") || strings.Contains(body, "<code>Summer24</code>") {
			t.Errorf("after delete:\n%s", body)
		}
		if n := ts.count(`SELECT count(*) FROM coupons WHERE code = 'Summer24'`); n != 0 {
			t.Errorf("the code is still stored")
		}
		// A second click (or another tab) changes nothing and says the same.
		if r := w.post(base+"/coupons/delete", url.Values{"code": {"Summer24"}, "page": {"3"}}); r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "&page=3") {
			t.Errorf("delete again: %d to %q", r.Status, r.Header.Get("Location"))
		}
		if n := coupons(); n != 1 {
			t.Errorf("%d codes, want 1", n)
		}
	})
	ts.t = t
}

// TestAdminWebTransactionAttribution: the transactions table says how each
// sale was attributed, and a code a sale named that did not attribute it.
func TestAdminWebTransactionAttribution(t *testing.T) {
	ts := newTestServer(t, noLimits)
	w := ts.signIn()
	p := ts.createProgram(`{"name":"Shop","js_tracking":true,"allowed_origins":["https://shop.example"]}`)
	for _, step := range []struct{ path, body string }{
		{"/v1/partners", `{"key":"sam"}`},
		{"/v1/partners", `{"key":"pat"}`},
		{"/v1/coupons", `{"code":"SUMMER","partner":{"key":"sam"}}`},
		{"/v1/transactions", `{"key":"by_code","amount":"10","discount_code":"summer","customer":{"key":"c1"},"options":{"create_customer":true}}`},
		{"/v1/transactions", `{"key":"by_code_later","amount":"10","customer":{"key":"c1"}}`},
		{"/v1/transactions", `{"key":"by_partner","amount":"10","discount_code":"SUMMER","customer":{"key":"c2","partner":{"key":"pat"}},"options":{"create_customer":true}}`},
		{"/v1/transactions", `{"key":"unknown_code","amount":"10","discount_code":"NOPE","customer":{"key":"c3"},"options":{"create_customer":true}}`},
	} {
		if r := ts.api(p, "POST", step.path, step.body); r.Status != 201 {
			t.Fatalf("%s: %d %s", step.body, r.Status, r.Body)
		}
	}
	for _, key := range []string{"by_cookie", "by_metadata"} {
		if r := ts.request("POST", "/collect", collectBody(p.ID, "transactions.create", "pat",
			`{"key":"`+key+`","amount":"10","customer":{"key":"c_`+key+`"},"options":{"create_customer":true}}`), "Origin", "https://shop.example"); r.Status != 201 {
			t.Fatalf("collect: %d %s", r.Status, r.Body)
		}
	}
	// Gateway metadata, as the payment gateways' webhooks record it.
	ts.exec(`UPDATE transactions SET attributed_by = 'metadata' WHERE key = 'by_metadata'`)

	body := w.get("/admin/programs/" + p.ID + "/transactions").Body
	for key, want := range map[string]string{
		"by_code":       `code SUMMER</div>`,
		"by_code_later": `code SUMMER</div>`,
		"by_partner":    `partner · sale named <code>SUMMER</code></div>`,
		"unknown_code":  `sale named <code>NOPE</code></div>`,
		"by_cookie":     `>cookie</div>`,
		"by_metadata":   `>metadata</div>`,
	} {
		row := regexp.MustCompile(`(?s)<tr data-key="` + key + `">.*?</tr>`).FindString(body)
		if !strings.Contains(row, `<div class="sub attribution" title="How this customer's partner was decided">`) || !strings.Contains(row, want) {
			t.Errorf("row %s lacks %q:\n%s", key, want, row)
		}
	}
}
