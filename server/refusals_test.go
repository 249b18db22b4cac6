package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// refusalsOf reads a program's refusals through the admin API.
func (ts *testServer) refusalsOf(p testProgram, query string) refusalsView {
	ts.t.Helper()
	r := ts.admin("GET", "/admin/api/programs/"+p.ID+"/refusals"+query, "")
	if r.Status != 200 {
		ts.t.Fatalf("refusals: %d %s", r.Status, r.Body)
	}
	var body struct{ Data refusalsView }
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		ts.t.Fatal(err)
	}
	return body.Data
}

func countsOf(v refusalsView) string {
	var parts []string
	for _, c := range v.Counts {
		parts = append(parts, fmt.Sprintf("%s=%d", c.Reason, c.Count))
	}
	return strings.Join(parts, " ")
}

// TestRefusalsCountedPerReason: every refusal /collect makes for a known
// program is counted by reason and listed (the list capped at 50, newest
// first), with what it keeps: reason, call type, origin, partner, key and
// field; never the client's IP or the body. A program nobody knows, and a
// call refused before its body is read, are counted in the metrics only.
func TestRefusalsCountedPerReason(t *testing.T) {
	const clientIP = "203.0.113.77"
	f := newCollectFixture(t, func(cfg *Config) {
		cfg.TrustedProxies = []string{"0.0.0.0"} // app.Test's peer
		cfg.RateLimitProgram = "70-M"
	})
	ts := f.ts
	signed := ts.createProgram(`{"name":"Signed","js_tracking":true,"js_require_signature":true,"allowed_origins":["https://signed.example"]}`)
	post := func(origin, body string, want int) {
		t.Helper()
		r := ts.request("POST", "/collect", body, "Content-Type", "text/plain", "Origin", origin, "X-Forwarded-For", clientIP)
		if r.Status != want {
			t.Fatalf("%s %s: %d, want %d: %s", origin, body, r.Status, want, r.Body)
		}
	}
	sale := func(p testProgram, key, amount string) string {
		return collectBody(p.ID, "transactions.create", "alice",
			`{"key":"`+key+`","amount":`+amount+`,"customer":{"key":"cust_alice"},"product_id":"BODY-MARKER"}`)
	}
	post("https://off.example", sale(f.off, "off_1", `"10.00"`), 403)                     // js_tracking_disabled
	post("https://off.example", sale(f.off, "off_2", `"10.00"`), 403)                     // js_tracking_disabled
	post(shopOrigin, sale(f.shop, "bad_amount", `"abc"`), 422)                            // invalid_field
	post(shopOrigin, `{"program":"`+f.shop.ID+`","type":"nope","data":{"key":"x"}}`, 400) // bad_request
	post("https://signed.example", sale(signed, "unsigned", `"10.00"`), 403)              // bad_signature
	post("https://signed.example", sale(signed, "amount_abc", `"abc"`), 422)              // invalid_field
	post(shopOrigin, collectBody("no-such-program", "transactions.create", "alice", `{"key":"k","amount":1}`), 404)
	for i := range 60 {
		post("https://evil.example", sale(f.shop, fmt.Sprint("evil_", i), `"1.00"`), 403) // origin_not_allowed
	}
	// The program's budget (70 a minute) runs out after 69 clicks: one
	// sale passed the origin check before (the 60 refused for their origin
	// do not count), so 11 clicks are refused.
	for i := range 80 {
		body := clickBody(f.shop.ID, "https://shop.example/?ref=bob", "", "")
		r := ts.request("POST", "/collect", body, "Content-Type", "text/plain", "Origin", shopOrigin, "X-Forwarded-For", clientIP)
		if r.Status != 201 && r.Status != 429 {
			t.Fatalf("click %d: %d %s", i, r.Status, r.Body)
		}
	}

	off := ts.refusalsOf(f.off, "")
	if got := countsOf(off); got != "js_tracking_disabled=2" {
		t.Errorf("off: %s", got)
	}
	if len(off.Summary) != 1 || off.Summary[0].Text != "In the last 24 h: 2 sales refused because JS tracking is off." ||
		!strings.HasPrefix(off.Summary[0].Fix, "Turn on JS tracking") || off.Summary[0].Action["js_tracking"] != true {
		t.Errorf("off summary %+v", off.Summary)
	}
	if r := off.Recent[0]; r.Reason != "js_tracking_disabled" || r.CallType != "transactions.create" || r.Origin != "https://off.example" ||
		r.PartnerKey != "alice" || r.Key != "off_2" || r.At.IsZero() {
		t.Errorf("off's newest refusal %+v", r)
	}

	shop := ts.refusalsOf(f.shop, "?hours=1")
	if want := "origin_not_allowed=60 rate_limited=11 bad_request=1 invalid_field=1"; countsOf(shop) != want {
		t.Errorf("shop: %s, want %s", countsOf(shop), want)
	}
	if len(shop.Recent) != 50 || shop.Recent[0].Reason != "rate_limited" || shop.Recent[0].CallType != "clicks.create" ||
		shop.Recent[0].PartnerKey != "bob" {
		t.Errorf("shop's recent: %d, newest %+v", len(shop.Recent), shop.Recent[0])
	}
	var origin *refusalNote
	for i := range shop.Summary {
		if shop.Summary[i].Reason == "origin_not_allowed" {
			origin = &shop.Summary[i]
		}
	}
	if origin == nil || origin.Text != "In the last 1 h: 60 calls refused because their site is not an allowed origin." ||
		origin.Origin != "https://evil.example" || !strings.Contains(origin.Fix, "Add https://evil.example to the allowed origins, if that site is yours") ||
		fmt.Sprint(origin.Action["allowed_origins"]) != "[https://shop.example https://*.shop.example https://evil.example]" {
		t.Errorf("origin note %+v", origin)
	}
	// The list holds the newest 50: the rate-limited clicks and the last
	// origin refusals; the first ones are gone from memory and the table.
	if n := ts.count(`SELECT count(*) FROM refusals WHERE program_id = ?1`, f.shop.ID); n != 50 {
		t.Errorf("%d refusals stored for shop, want 50", n)
	}
	if last := shop.Recent[49]; last.Reason != "origin_not_allowed" || last.Key != "evil_21" || last.Origin != "https://evil.example" || last.Field != "" {
		t.Errorf("shop's oldest kept refusal %+v, want evil_21", last)
	}

	sig := ts.refusalsOf(signed, "")
	if countsOf(sig) != "bad_signature=1 invalid_field=1" || sig.Recent[0].Field != "data.amount" || sig.Recent[1].Field != "data.signature" {
		t.Errorf("signed: %s %+v", countsOf(sig), sig.Recent)
	}
	texts := []string{}
	for _, n := range sig.Summary {
		texts = append(texts, n.Text)
	}
	if want := "In the last 24 h: 1 sale refused because their signature was missing or wrong.|" +
		"In the last 24 h: 1 call refused because a field was not valid (most often data.amount)."; strings.Join(texts, "|") != want {
		t.Errorf("signed summary %q, want %q", texts, want)
	}

	// What was kept, everywhere: no IP, nothing of the body but the keys.
	for _, v := range ts.everyValue() {
		if strings.Contains(v, clientIP) || strings.Contains(v, "BODY-MARKER") {
			t.Errorf("a stored value holds the client's IP or the body: %q", v)
		}
	}
	if n := ts.count(`SELECT count(*) FROM refusal_counts WHERE program_id NOT IN (SELECT id FROM programs)`) +
		ts.count(`SELECT count(*) FROM refusals WHERE program_id = 'no-such-program'`); n != 0 {
		t.Errorf("%d rows for an unknown program", n)
	}
	metrics := ts.request("GET", "/metrics", "").Body
	if !strings.Contains(metrics, `potrack_collect_total{outcome="program_not_found",type="transactions.create"} 1`) {
		t.Errorf("the unknown program's refusal is not in the metrics")
	}
}

// TestRefusalsBeforeTheBody: a call refused by the per-IP budget, before
// its body is read, is counted in the metrics but for no program.
func TestRefusalsBeforeTheBody(t *testing.T) {
	f := newCollectFixture(t, func(cfg *Config) { cfg.RateLimitIP = "1-M" })
	ts := f.ts
	body := collectBody(f.shop.ID, "transactions.create", "alice", `{"key":"k1","amount":1,"customer":{"key":"cust_alice"}}`)
	for _, want := range []int{201, 429} {
		if r := ts.request("POST", "/collect", body, "Content-Type", "text/plain", "Origin", shopOrigin); r.Status != want {
			t.Fatalf("%d, want %d: %s", r.Status, want, r.Body)
		}
	}
	if v := ts.refusalsOf(f.shop, ""); len(v.Counts) != 0 || len(v.Recent) != 0 {
		t.Errorf("a per-IP refusal was counted for the program: %+v", v)
	}
}

// TestRefusalsAPI: the endpoint's own validation.
func TestRefusalsAPI(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	for _, c := range []struct {
		path, token string
		status      int
		want        string
	}{
		{"/admin/api/programs/{id}/refusals", "", 200, `"hours":24`},
		{"/admin/api/programs/{id}/refusals?hours=2160", "", 200, `"hours":2160`},
		{"/admin/api/programs/{id}/refusals?hours=0", "", 422, `"field":"hours"`},
		{"/admin/api/programs/{id}/refusals?hours=2161", "", 422, `"field":"hours"`},
		{"/admin/api/programs/{id}/refusals?hours=1.5", "", 422, `"field":"hours"`},
		{"/admin/api/programs/nope/refusals", "", 404, `"code":"program_not_found"`},
		{"/admin/api/programs/{id}/refusals", "wrong", 401, `"code":"unauthorized"`},
	} {
		token := testAdminToken
		if c.token != "" {
			token = c.token
		}
		r := ts.request("GET", strings.ReplaceAll(c.path, "{id}", p.ID), "", "Authorization", "Bearer "+token)
		if r.Status != c.status || !strings.Contains(r.Body, c.want) {
			t.Errorf("%s: %d %s, want %d with %s", c.path, r.Status, r.Body, c.status, c.want)
		}
	}
}
