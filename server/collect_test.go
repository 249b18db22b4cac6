package server

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/potrack/potrack/store"
)

const shopOrigin = "https://shop.example"

// noLimits keeps the rate limits out of tests that are about something else.
func noLimits(cfg *Config) {
	cfg.RateLimitIP = "1000000-M"
	cfg.RateLimitProgram = "1000000-M"
}

// collectFixture is a shop program with JS tracking on (partners alice and
// bob, customer cust_alice referred by alice, cust_plain referred by nobody)
// and a program with JS tracking off (partners alice and carol).
type collectFixture struct {
	ts        *testServer
	shop, off testProgram
}

func newCollectFixture(t *testing.T, mutate ...func(*Config)) *collectFixture {
	ts := newTestServer(t, append([]func(*Config){noLimits}, mutate...)...)
	f := &collectFixture{ts: ts,
		shop: ts.createProgram(`{"name":"Shop","js_tracking":true,"cookie_days":45,"referral_params":["ref","aff"],
			"allowed_origins":["https://shop.example","https://*.shop.example"]}`),
		off: ts.createProgram(`{"name":"Off","allowed_origins":["https://off.example"]}`),
	}
	for _, step := range []struct {
		p          testProgram
		path, body string
	}{
		{f.shop, "/v1/partners", `{"key":"alice"}`},
		{f.shop, "/v1/partners", `{"key":"bob"}`},
		{f.off, "/v1/partners", `{"key":"alice"}`},
		{f.off, "/v1/partners", `{"key":"carol"}`},
		{f.shop, "/v1/customers", `{"key":"cust_alice","partner":{"key":"alice"}}`},
		{f.shop, "/v1/customers", `{"key":"cust_plain"}`},
	} {
		if r := ts.api(step.p, "POST", step.path, step.body); r.Status != 201 {
			t.Fatalf("fixture %s %s: %d %s", step.path, step.body, r.Status, r.Body)
		}
	}
	return f
}

// collectBody builds a /collect body as the script sends it. partner is the
// cookie ("" for none); data is a JSON object or "".
func collectBody(program, typ, partner, data string) string {
	m := map[string]any{"program": program, "type": typ, "url": "https://shop.example/thanks", "referrer": ""}
	if partner != "" {
		m["partner"] = map[string]string{"key": partner}
	}
	if data != "" {
		m["data"] = json.RawMessage(data)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func clickBody(program, url, referrer, partner string) string {
	m := map[string]any{"program": program, "type": "clicks.create", "url": url, "referrer": referrer,
		"partner": map[string]string{"key": partner}}
	b, _ := json.Marshal(m)
	return string(b)
}

// collectScenario is one row of SPEC.md's /collect table (or a rule next
// to it). Rows run in order on one fixture; a row that needs an earlier
// state says so in before.
type collectScenario struct {
	name    string
	before  []string // bodies posted first from shopOrigin, each must answer 2xx
	body    string
	headers []string // replaces the default Origin: https://shop.example
	status  int
	answer  string            // error.code, or the status of a success
	field   string            // error.field
	fields  map[string]string // more fields of a success answer
	cors    bool              // Access-Control-Allow-Origin must echo the origin
	stored  []storedRows
}

// storedRows is a counting query and the count it must give afterwards.
type storedRows struct {
	query string
	want  int
}

func txRows(key string, want int) storedRows {
	return storedRows{"SELECT COUNT(*) FROM transactions WHERE key = '" + key + "'", want}
}

func (f *collectFixture) run(t *testing.T, rows []collectScenario) {
	t.Helper()
	ts := f.ts
	for _, sc := range rows {
		t.Run(sc.name, func(t *testing.T) {
			ts.t = t
			for _, b := range sc.before {
				if r := ts.request("POST", "/collect", b, "Origin", shopOrigin); r.Status >= 300 {
					t.Fatalf("before: %d %s", r.Status, r.Body)
				}
			}
			headers := sc.headers
			if headers == nil {
				headers = []string{"Origin", shopOrigin}
			}
			r := ts.request("POST", "/collect", sc.body, append([]string{"Content-Type", "text/plain"}, headers...)...)
			if r.Status != sc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, sc.status, r.Body)
			}
			got := r.JSON(t)
			if e, ok := got["error"].(map[string]any); ok {
				if e["code"] != sc.answer || fmt.Sprint(e["field"]) != fmt.Sprint(orNil(sc.field)) {
					t.Errorf("error %v, want code %q field %q", e, sc.answer, sc.field)
				}
				if msg, _ := e["message"].(string); msg == "" {
					t.Errorf("error without a message: %s", r.Body)
				}
			} else if got["status"] != sc.answer {
				t.Errorf("answer %s, want status %q", r.Body, sc.answer)
			}
			for k, v := range sc.fields {
				if fmt.Sprint(got[k]) != v {
					t.Errorf("answer field %s = %v, want %s (%s)", k, got[k], v, r.Body)
				}
			}
			origin := ""
			for i := 0; i+1 < len(headers); i += 2 {
				if headers[i] == "Origin" {
					origin = headers[i+1]
				}
			}
			// Allowed origins may read every answer; any origin may read
			// an error, so the script does not retry what cannot succeed.
			acao := r.Header.Get("Access-Control-Allow-Origin")
			cors := sc.cors || (r.Status >= 400 && origin != "")
			switch {
			case cors && origin != "" && acao != origin:
				t.Errorf("Access-Control-Allow-Origin %q, want %q", acao, origin)
			case cors && acao == "":
				t.Errorf("no Access-Control-Allow-Origin")
			case !cors && acao != "":
				t.Errorf("Access-Control-Allow-Origin %q on an answer for an origin that is not allowed", acao)
			}
			if !strings.Contains(r.Header.Get("Vary"), "Origin") {
				t.Errorf("Vary %q lacks Origin", r.Header.Get("Vary"))
			}
			for _, s := range sc.stored {
				if n := ts.count(s.query); n != s.want {
					t.Errorf("%s = %d, want %d", s.query, n, s.want)
				}
			}
		})
	}
	ts.t = t
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestCollect walks SPEC.md's /collect table row by row.
func TestCollect(t *testing.T) {
	f := newCollectFixture(t)
	shop, off := f.shop.ID, f.off.ID
	sale := func(key, amount, customer string) string {
		return fmt.Sprintf(`{"key":%q,"amount":%q,"customer":{"key":%q},"options":{"create_customer":true}}`, key, amount, customer)
	}
	f.run(t, []collectScenario{
		// body over 16 KiB
		{name: "body over 16 KiB", body: padTo(collectBody(shop, "transactions.create", "alice", sale("big", "1", "c_big")), 16<<10+1),
			status: 413, answer: "body_too_large", stored: []storedRows{txRows("big", 0)}},
		{name: "16 KiB exactly is read", body: padTo(collectBody(shop, "transactions.create", "alice", sale("at_limit", "1", "c_limit")), 16<<10),
			status: 201, answer: "created", cors: true, stored: []storedRows{txRows("at_limit", 1)}},

		// not JSON / wrong shape
		{name: "not JSON", body: `program=x&type=y`, status: 400, answer: "bad_request"},
		{name: "empty body", body: "", status: 400, answer: "bad_request"},
		{name: "JSON array", body: `[1,2]`, status: 400, answer: "bad_request"},
		{name: "two objects", body: `{"program":"x","type":"clicks.create"}{}`, status: 400, answer: "bad_request"},
		{name: "program not a string", body: `{"program":5,"type":"clicks.create"}`, status: 400, answer: "bad_request", field: "program"},
		{name: "program missing", body: `{"type":"clicks.create"}`, status: 400, answer: "bad_request", field: "program"},
		{name: "unknown type", body: collectBody(shop, "transactions.delete", "alice", ""), status: 400, answer: "bad_request", field: "type"},
		{name: "data not an object", body: collectBody(shop, "transactions.create", "alice", `"sale"`), status: 400, answer: "bad_request", field: "data"},
		{name: "data field of the wrong type", body: collectBody(shop, "customers.signup", "alice", `{"key":"k","name":{"first":"A"}}`),
			status: 400, answer: "bad_request", field: "data.name"},
		{name: "partner not an object", body: `{"program":"` + shop + `","type":"clicks.create","partner":"alice"}`, status: 400, answer: "bad_request", field: "partner"},

		// unknown program
		{name: "unknown program", body: collectBody("nosuchprogram", "transactions.create", "alice", sale("p404", "1", "c")), status: 404, answer: "program_not_found"},
		{name: "absurd program id", body: collectBody(strings.Repeat("p", 500), "clicks.create", "", ""), status: 404, answer: "program_not_found"},

		// origin not allowed
		{name: "other origin", body: collectBody(shop, "transactions.create", "alice", sale("evil", "1", "c_evil")),
			headers: []string{"Origin", "https://evil.example"}, status: 403, answer: "origin_not_allowed", stored: []storedRows{txRows("evil", 0)}},
		{name: "no Origin and no Referer", body: collectBody(shop, "transactions.create", "alice", sale("anon", "1", "c_anon")),
			headers: []string{}, status: 403, answer: "origin_not_allowed", stored: []storedRows{txRows("anon", 0)}},
		{name: "opaque origin", body: collectBody(shop, "transactions.create", "alice", sale("opaque", "1", "c_op")),
			headers: []string{"Origin", "null"}, status: 403, answer: "origin_not_allowed"},
		{name: "origin with another scheme", body: collectBody(shop, "transactions.create", "alice", sale("http", "1", "c_http")),
			headers: []string{"Origin", "http://shop.example"}, status: 403, answer: "origin_not_allowed"},
		{name: "origin with another port", body: collectBody(shop, "transactions.create", "alice", sale("port", "1", "c_port")),
			headers: []string{"Origin", "https://shop.example:8443"}, status: 403, answer: "origin_not_allowed"},
		{name: "Origin wins over an allowed Referer", body: collectBody(shop, "transactions.create", "alice", sale("both", "1", "c_both")),
			headers: []string{"Origin", "https://evil.example", "Referer", "https://shop.example/cart"}, status: 403, answer: "origin_not_allowed"},
		{name: "Referer from another origin", body: collectBody(shop, "transactions.create", "alice", sale("ref_evil", "1", "c_re")),
			headers: []string{"Referer", "https://evil.example/shop.example"}, status: 403, answer: "origin_not_allowed"},
		{name: "Referer fallback", body: collectBody(shop, "transactions.create", "alice", sale("ref_ok", "1", "c_ref")),
			headers: []string{"Referer", "https://shop.example/checkout?step=3"}, status: 201, answer: "created", cors: true,
			stored: []storedRows{txRows("ref_ok", 1)}},
		{name: "Referer with the default port", body: collectBody(shop, "transactions.create", "alice", sale("ref_443", "1", "c_ref")),
			headers: []string{"Referer", "https://shop.example:443/checkout"}, status: 201, answer: "created", cors: true},
		{name: "wildcard subdomain", body: collectBody(shop, "transactions.create", "alice", sale("wild", "1", "c_wild")),
			headers: []string{"Origin", "https://a.shop.example"}, status: 201, answer: "created", cors: true, stored: []storedRows{txRows("wild", 1)}},
		{name: "wildcard is one level", body: collectBody(shop, "transactions.create", "alice", sale("wild2", "1", "c_wild")),
			headers: []string{"Origin", "https://a.b.shop.example"}, status: 403, answer: "origin_not_allowed", stored: []storedRows{txRows("wild2", 0)}},
		{name: "wildcard keeps the scheme", body: collectBody(shop, "transactions.create", "alice", sale("wild3", "1", "c_wild")),
			headers: []string{"Origin", "http://a.shop.example"}, status: 403, answer: "origin_not_allowed"},
		{name: "another program's origin", body: collectBody(shop, "transactions.create", "alice", sale("cross", "1", "c_x")),
			headers: []string{"Origin", "https://off.example"}, status: 403, answer: "origin_not_allowed"},

		// js_tracking off
		{name: "sale while JS tracking is off", body: collectBody(off, "transactions.create", "alice", sale("off_1", "1", "c_off")),
			headers: []string{"Origin", "https://off.example"}, status: 403, answer: "js_tracking_disabled", cors: true,
			stored: []storedRows{txRows("off_1", 0)}},
		{name: "JS tracking off is checked before the fields", body: collectBody(off, "transactions.create", "alice", `{"amount":"12.345"}`),
			headers: []string{"Origin", "https://off.example"}, status: 403, answer: "js_tracking_disabled", cors: true},
		{name: "signup while JS tracking is off", body: collectBody(off, "customers.signup", "alice", `{"key":"c_off_signup"}`),
			headers: []string{"Origin", "https://off.example"}, status: 201, answer: "created", cors: true,
			stored: []storedRows{{"SELECT COUNT(*) FROM customers WHERE key = 'c_off_signup' AND program_id = '" + off + "'", 1}}},
		{name: "click while JS tracking is off", body: clickBody(off, "https://off.example/?aff=alice", "", ""),
			headers: []string{"Origin", "https://off.example"}, status: 201, answer: "created", cors: true,
			fields: map[string]string{"partner": "alice", "cookie_days": "30", "attribution": "last"},
			stored: []storedRows{{"SELECT COUNT(*) FROM clicks WHERE program_id = '" + off + "'", 1}}},

		// a field invalid
		{name: "amount with too many decimals", body: collectBody(shop, "transactions.create", "alice", sale("dec", "12.345", "c_dec")),
			status: 422, answer: "invalid_field", field: "data.amount", cors: true, stored: []storedRows{txRows("dec", 0)}},
		{name: "amount missing", body: collectBody(shop, "transactions.create", "alice", `{"key":"noamt","customer":{"key":"c"}}`),
			status: 422, answer: "invalid_field", field: "data.amount", cors: true},
		{name: "unknown currency", body: collectBody(shop, "transactions.create", "alice", `{"key":"cur","amount":"1","amount_units":"XYZW","customer":{"key":"c"}}`),
			status: 422, answer: "invalid_field", field: "data.amount_units", cors: true},
		{name: "key too long", body: collectBody(shop, "transactions.create", "alice", sale(strings.Repeat("k", 256), "1", "c_long")),
			status: 422, answer: "invalid_field", field: "data.key", cors: true},
		{name: "customer missing", body: collectBody(shop, "transactions.create", "alice", `{"key":"nocust","amount":"1"}`),
			status: 422, answer: "invalid_field", field: "data.customer.key", cors: true},
		{name: "customer email invalid", body: collectBody(shop, "transactions.create", "alice", `{"key":"em","amount":"1","customer":{"key":"c","email":"no at sign"}}`),
			status: 422, answer: "invalid_field", field: "data.customer.email", cors: true},
		{name: "signup without key", body: collectBody(shop, "customers.signup", "alice", `{"name":"Ann"}`),
			status: 422, answer: "invalid_field", field: "data.key", cors: true},
		{name: "click url with control characters", body: clickBody(shop, "https://shop.example/?aff=alice\x01", "", ""),
			status: 422, answer: "invalid_field", field: "url", cors: true},

		// stored, duplicate, key conflict
		{name: "stored", body: collectBody(shop, "transactions.create", "alice", sale("order_1", "25", "c_new")),
			status: 201, answer: "created", cors: true, stored: []storedRows{
				{"SELECT COUNT(*) FROM transactions WHERE key = 'order_1' AND source = 'js' AND verified = FALSE AND amount_minor = 2500 AND currency = 'USD'", 1},
				{"SELECT COUNT(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.key = 'c_new' AND p.key = 'alice'", 1},
				{"SELECT COUNT(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE t.key = 'order_1' AND r.amount_minor = 500", 1},
			}},
		{name: "same key, same content", body: collectBody(shop, "transactions.create", "alice", sale("order_1", "25.00", "c_new")),
			status: 200, answer: "duplicate", cors: true, stored: []storedRows{txRows("order_1", 1),
				{"SELECT COUNT(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE t.key = 'order_1'", 1}}},
		{name: "same key, other amount", body: collectBody(shop, "transactions.create", "alice", sale("order_1", "26", "c_new")),
			status: 409, answer: "key_conflict", field: "data.key", cors: true, stored: []storedRows{
				{"SELECT COUNT(*) FROM transactions WHERE key = 'order_1' AND amount_minor = 2500", 1}}},
		{name: "same key, other customer", body: collectBody(shop, "transactions.create", "alice", sale("order_1", "25", "c_other")),
			status: 409, answer: "key_conflict", field: "data.key", cors: true},

		// no partner to attribute
		{name: "no cookie", body: collectBody(shop, "transactions.create", "", sale("nocookie", "5", "c_nocookie")),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{txRows("nocookie", 0),
				{"SELECT COUNT(*) FROM customers WHERE key = 'c_nocookie'", 0}}},
		{name: "unknown partner", body: collectBody(shop, "transactions.create", "mallory", sale("unknownp", "5", "c_unknownp")),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{txRows("unknownp", 0),
				{"SELECT COUNT(*) FROM customers WHERE key = 'c_unknownp'", 0}}},
		{name: "partner of another program", body: collectBody(shop, "transactions.create", "carol", sale("otherp", "5", "c_otherp")),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{txRows("otherp", 0)}},
		{name: "customer not referred", body: collectBody(shop, "transactions.create", "alice", sale("plain_1", "5", "cust_plain")),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{txRows("plain_1", 0)}},

		// attribution rule 1: an existing customer keeps its partner
		{name: "existing customer keeps its partner", body: collectBody(shop, "transactions.create", "bob", sale("rule1", "10", "cust_alice")),
			status: 201, answer: "created", cors: true, stored: []storedRows{
				{"SELECT COUNT(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id JOIN partners p ON p.id = r.partner_id WHERE t.key = 'rule1' AND p.key = 'alice'", 1},
				{"SELECT COUNT(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.key = 'cust_alice' AND p.key = 'alice'", 1}}},
		{name: "existing customer, no cookie", body: collectBody(shop, "transactions.create", "", `{"key":"rule1b","amount":"10","customer":{"key":"cust_alice"}}`),
			status: 201, answer: "created", cors: true, stored: []storedRows{txRows("rule1b", 1)}},

		// attribution rule 2: a new customer takes the cookie's partner
		{name: "signup takes the cookie's partner", body: collectBody(shop, "customers.signup", "bob", `{"key":"c_signup","name":"Sam","email":"sam@example.com"}`),
			status: 201, answer: "created", cors: true, stored: []storedRows{
				{"SELECT COUNT(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.key = 'c_signup' AND p.key = 'bob' AND c.email = 'sam@example.com'", 1}}},
		{name: "signup of an existing customer", body: collectBody(shop, "customers.signup", "alice", `{"key":"c_signup","name":"Other"}`),
			status: 200, answer: "duplicate", cors: true, stored: []storedRows{
				{"SELECT COUNT(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.key = 'c_signup' AND p.key = 'bob' AND c.name = 'Sam'", 1}}},
		{name: "signup without a cookie", body: collectBody(shop, "customers.signup", "", `{"key":"c_signup_none"}`),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{{"SELECT COUNT(*) FROM customers WHERE key = 'c_signup_none'", 0}}},
		{name: "signup with an unknown partner", body: collectBody(shop, "customers.signup", "mallory", `{"key":"c_signup_unknown"}`),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{{"SELECT COUNT(*) FROM customers WHERE key = 'c_signup_unknown'", 0}}},
		{name: "top-level options.create_customer", body: `{"program":"` + shop + `","type":"transactions.create","partner":{"key":"bob"},` +
			`"data":{"key":"rule2","amount":"3","customer":{"key":"c_rule2"}},"options":{"create_customer":true}}`,
			status: 201, answer: "created", cors: true, stored: []storedRows{
				{"SELECT COUNT(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE c.key = 'c_rule2' AND p.key = 'bob'", 1}}},
		{name: "the page cannot name the partner", body: collectBody(shop, "transactions.create", "", `{"key":"pagep","amount":"3","customer":{"key":"c_pagep","partner":{"key":"alice"}},"options":{"create_customer":true}}`),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{txRows("pagep", 0)}},

		// attribution rule 3: unknown customer without create_customer
		{name: "unknown customer, no partner", body: collectBody(shop, "transactions.create", "", `{"key":"rule3a","amount":"3","customer":{"key":"c_rule3"}}`),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{txRows("rule3a", 0)}},
		{name: "unknown customer, known partner", body: collectBody(shop, "transactions.create", "alice", `{"key":"rule3b","amount":"3","customer":{"key":"c_rule3"}}`),
			status: 422, answer: "customer_not_found", field: "data.customer.key", cors: true, stored: []storedRows{txRows("rule3b", 0),
				{"SELECT COUNT(*) FROM customers WHERE key = 'c_rule3'", 0}}},

		// clicks
		{name: "click", body: clickBody(shop, "https://shop.example/?aff=alice&utm=x", "https://blog.example/post", ""),
			status: 201, answer: "created", cors: true, fields: map[string]string{"partner": "alice", "cookie_days": "45", "attribution": "last"},
			stored: []storedRows{{"SELECT COUNT(*) FROM clicks c JOIN partners p ON p.id = c.partner_id WHERE p.key = 'alice' AND c.url = 'https://shop.example/?aff=alice&utm=x' AND c.referrer = 'https://blog.example/post'", 1}}},
		{name: "click: referral_params in order", body: clickBody(shop, "https://shop.example/p?aff=alice&ref=bob", "", ""),
			status: 201, answer: "created", cors: true, fields: map[string]string{"partner": "bob"},
			stored: []storedRows{{"SELECT COUNT(*) FROM clicks c JOIN partners p ON p.id = c.partner_id WHERE p.key = 'bob'", 1}}},
		{name: "click: path form", body: clickBody(shop, "https://shop.example/aff/bob?utm=x", "", "alice"),
			status: 201, answer: "created", cors: true, fields: map[string]string{"partner": "bob"},
			stored: []storedRows{{"SELECT COUNT(*) FROM clicks c JOIN partners p ON p.id = c.partner_id WHERE p.key = 'bob'", 2}}},
		{name: "click for an unknown partner", body: clickBody(shop, "https://shop.example/?aff=mallory", "", ""),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{{"SELECT COUNT(*) FROM clicks", 4}}},
		{name: "click without a referral in the URL", body: clickBody(shop, "https://shop.example/?page=2", "", "alice"),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{{"SELECT COUNT(*) FROM clicks", 4}}},
		{name: "click with a param the program does not use", body: clickBody(shop, "https://shop.example/?via=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: []storedRows{{"SELECT COUNT(*) FROM clicks", 4}}},
	})

	// Every outcome is counted for /metrics.
	m := f.ts.request("GET", "/metrics", "")
	for _, line := range []string{
		`potrack_collect_total{outcome="created",type="transactions.create"}`,
		`potrack_collect_total{outcome="origin_not_allowed",type="transactions.create"}`,
		`potrack_collect_total{outcome="body_too_large",type="unknown"}`,
		`potrack_collect_total{outcome="created",type="clicks.create"}`,
	} {
		if !strings.Contains(m.Body, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// padTo fills a JSON object with spaces to exactly n bytes.
func padTo(body string, n int) string {
	return body[:len(body)-1] + strings.Repeat(" ", n-len(body)) + "}"
}

func sign(secret, payload string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(payload))
	return hex.EncodeToString(mac.Sum(nil))
}

// TestCollectSignature covers js_require_signature: the merchant's backend
// signs key|amount|CURRENCY|customer_key|product_id|product_type with the
// amount in the currency's minor digits (here without product fields; see
// TestCollectSignatureCoversTheReward for them).
func TestCollectSignature(t *testing.T) {
	ts := newTestServer(t, noLimits)
	usd := ts.createProgram(`{"name":"USD","js_tracking":true,"js_require_signature":true,"allowed_origins":["https://shop.example"]}`)
	jpy := ts.createProgram(`{"name":"JPY","currency":"JPY","js_tracking":true,"js_require_signature":true,"allowed_origins":["https://shop.example"]}`)
	optional := ts.createProgram(`{"name":"Optional","js_tracking":true,"allowed_origins":["https://shop.example"]}`)
	for _, p := range []testProgram{usd, jpy, optional} {
		if r := ts.api(p, "POST", "/v1/partners", `{"key":"alice"}`); r.Status != 201 {
			t.Fatal(r.Body)
		}
	}
	f := &collectFixture{ts: ts}
	data := func(key, amount, customer, sig string) string {
		return fmt.Sprintf(`{"key":%q,"amount":%q,"customer":{"key":%q},"options":{"create_customer":true},"signature":%q}`, key, amount, customer, sig)
	}
	verified := func(key string, want int) []storedRows {
		return []storedRows{{"SELECT COUNT(*) FROM transactions WHERE key = '" + key + "' AND verified = TRUE AND source = 'js'", want}}
	}
	f.run(t, []collectScenario{
		{name: "good signature, USD written with two decimals",
			body:   collectBody(usd.ID, "transactions.create", "alice", data("order_9", "25", "cust_7", sign(usd.SigningSecret, "order_9|25.00|USD|cust_7||"))),
			status: 201, answer: "created", cors: true, stored: verified("order_9", 1)},
		{name: "upper-case hex",
			body:   collectBody(usd.ID, "transactions.create", "alice", data("order_10", "1.5", "cust_7", strings.ToUpper(sign(usd.SigningSecret, "order_10|1.50|USD|cust_7||")))),
			status: 201, answer: "created", cors: true, stored: verified("order_10", 1)},
		{name: "good signature, JPY without decimals",
			body:   collectBody(jpy.ID, "transactions.create", "alice", data("order_j", "1000", "cust_j", sign(jpy.SigningSecret, "order_j|1000|JPY|cust_j||"))),
			status: 201, answer: "created", cors: true, stored: verified("order_j", 1)},
		{name: "missing signature",
			body:   collectBody(usd.ID, "transactions.create", "alice", `{"key":"order_11","amount":"25","customer":{"key":"cust_7"}}`),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true, stored: []storedRows{txRows("order_11", 0)}},
		{name: "amount not in minor digits",
			body:   collectBody(usd.ID, "transactions.create", "alice", data("order_12", "25", "cust_7", sign(usd.SigningSecret, "order_12|25|USD|cust_7||"))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true, stored: []storedRows{txRows("order_12", 0)}},
		{name: "signature for another amount",
			body:   collectBody(usd.ID, "transactions.create", "alice", data("order_13", "2500", "cust_7", sign(usd.SigningSecret, "order_13|25.00|USD|cust_7||"))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true, stored: []storedRows{txRows("order_13", 0)}},
		{name: "signed with another program's secret",
			body:   collectBody(usd.ID, "transactions.create", "alice", data("order_14", "25", "cust_7", sign(jpy.SigningSecret, "order_14|25.00|USD|cust_7||"))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true},
		{name: "not hex",
			body:   collectBody(usd.ID, "transactions.create", "alice", data("order_15", "25", "cust_7", strings.Repeat("zz", 32))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true},
		{name: "optional: a good signature marks the sale verified",
			body:   collectBody(optional.ID, "transactions.create", "alice", data("opt_1", "25", "cust_o", sign(optional.SigningSecret, "opt_1|25.00|USD|cust_o||"))),
			status: 201, answer: "created", cors: true, stored: verified("opt_1", 1)},
		{name: "optional: a wrong signature stores it unverified",
			body:   collectBody(optional.ID, "transactions.create", "alice", data("opt_2", "25", "cust_o", sign("guess", "opt_2|25.00|USD|cust_o||"))),
			status: 201, answer: "created", cors: true, stored: append(verified("opt_2", 0), txRows("opt_2", 1))},
	})

	// A rotated secret applies to the next call.
	r := ts.admin("POST", "/admin/api/programs/"+usd.ID+"/rotate", `{"secret":"signing_secret"}`)
	if r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	secret := r.JSON(t)["data"].(map[string]any)["signing_secret"].(string)
	f.run(t, []collectScenario{
		{name: "old secret after rotation",
			body:   collectBody(usd.ID, "transactions.create", "alice", data("order_20", "25", "cust_7", sign(usd.SigningSecret, "order_20|25.00|USD|cust_7||"))),
			status: 403, answer: "bad_signature", field: "data.signature", cors: true},
		{name: "new secret after rotation",
			body:   collectBody(usd.ID, "transactions.create", "alice", data("order_20", "25", "cust_7", sign(secret, "order_20|25.00|USD|cust_7||"))),
			status: 201, answer: "created", cors: true, stored: verified("order_20", 1)},
	})
}

// TestCollectFollowsAdminChanges: a PATCH applies to the very next call.
func TestCollectFollowsAdminChanges(t *testing.T) {
	f := newCollectFixture(t)
	patch := func(body string) string {
		return "PATCH " + body
	}
	sale := func(key string) string {
		return collectBody(f.shop.ID, "transactions.create", "alice", `{"key":"`+key+`","amount":"1","customer":{"key":"c_patch"},"options":{"create_customer":true}}`)
	}
	for _, step := range []struct {
		action string // a PATCH body, or a sale key
		status int
		answer string
	}{
		{"k1", 201, "created"},
		{patch(`{"js_tracking":false}`), 0, ""},
		{"k2", 403, "js_tracking_disabled"},
		{patch(`{"js_tracking":true}`), 0, ""},
		{"k3", 201, "created"},
		{patch(`{"allowed_origins":["https://new.example"]}`), 0, ""},
		{"k4", 403, "origin_not_allowed"},
		{patch(`{"allowed_origins":[]}`), 0, ""},
		{"k5", 403, "origin_not_allowed"},
		{patch(`{"allowed_origins":["https://shop.example"],"js_require_signature":true}`), 0, ""},
		{"k6", 403, "bad_signature"},
		{patch(`{"js_require_signature":false}`), 0, ""},
		{"k7", 201, "created"},
	} {
		if body, ok := strings.CutPrefix(step.action, "PATCH "); ok {
			if r := f.ts.admin("PATCH", "/admin/api/programs/"+f.shop.ID, body); r.Status != 200 {
				t.Fatalf("patch %s: %d %s", body, r.Status, r.Body)
			}
			continue
		}
		r := f.ts.request("POST", "/collect", sale(step.action), "Origin", shopOrigin)
		got := r.JSON(t)
		answer, _ := got["status"].(string)
		if e, ok := got["error"].(map[string]any); ok {
			answer, _ = e["code"].(string)
		}
		if r.Status != step.status || answer != step.answer {
			t.Errorf("sale %s: %d %s, want %d %s", step.action, r.Status, answer, step.status, step.answer)
		}
	}
	if n := f.ts.count(`SELECT COUNT(*) FROM transactions WHERE key IN ('k1','k2','k3','k4','k5','k6','k7')`); n != 3 {
		t.Errorf("%d sales stored, want 3 (k1, k3, k7)", n)
	}
	// The click answer follows cookie_days and attribution too.
	if r := f.ts.admin("PATCH", "/admin/api/programs/"+f.shop.ID, `{"cookie_days":7,"attribution":"first","referral_params":["via"]}`); r.Status != 200 {
		t.Fatal(r.Body)
	}
	r := f.ts.request("POST", "/collect", clickBody(f.shop.ID, "https://shop.example/?via=bob", "", ""), "Origin", shopOrigin)
	if got := r.JSON(t); r.Status != 201 || got["partner"] != "bob" || fmt.Sprint(got["cookie_days"]) != "7" || got["attribution"] != "first" {
		t.Errorf("click after patch: %d %s", r.Status, r.Body)
	}
}

// TestCollectPreflight: OPTIONS names no program, so an origin that any
// program allows gets the CORS answer.
func TestCollectPreflight(t *testing.T) {
	f := newCollectFixture(t)
	for _, tc := range []struct {
		origin  string
		allowed bool
	}{
		{"https://shop.example", true},
		{"https://a.shop.example", true},
		{"https://off.example", true}, // allowed by the other program
		{"https://a.b.shop.example", false},
		{"http://shop.example", false},
		{"https://evil.example", false},
		{"null", false},
		{"", false},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			headers := []string{"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"}
			if tc.origin != "" {
				headers = append(headers, "Origin", tc.origin)
			}
			r := f.ts.request("OPTIONS", "/collect", "", headers...)
			if r.Status != 204 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":  tc.origin,
				"Access-Control-Allow-Methods": "POST",
				"Access-Control-Allow-Headers": "Content-Type",
				"Access-Control-Max-Age":       "86400",
			}
			for h, v := range want {
				if !tc.allowed {
					v = ""
				}
				if got := r.Header.Get(h); got != v {
					t.Errorf("%s = %q, want %q", h, got, v)
				}
			}
			if !strings.Contains(r.Header.Get("Vary"), "Origin") {
				t.Errorf("Vary %q lacks Origin", r.Header.Get("Vary"))
			}
		})
	}
}

// TestCollectRateLimitHeaders: the budget is announced on every answer and
// the request past it gets 429 with Retry-After, before the program is read.
func TestCollectRateLimitHeaders(t *testing.T) {
	f := newCollectFixture(t, func(cfg *Config) { cfg.RateLimitIP = "3-M" })
	body := clickBody(f.shop.ID, "https://shop.example/?aff=alice", "", "")
	for i, want := range []struct {
		status    int
		remaining string
	}{{201, "2"}, {201, "1"}, {201, "0"}, {429, "0"}, {429, "0"}} {
		r := f.ts.request("POST", "/collect", body, "Origin", shopOrigin)
		if r.Status != want.status {
			t.Fatalf("request %d: %d %s", i+1, r.Status, r.Body)
		}
		if got := r.Header.Get("X-RateLimit-Limit"); got != "3" {
			t.Errorf("request %d: X-RateLimit-Limit %q", i+1, got)
		}
		if got := r.Header.Get("X-RateLimit-Remaining"); got != want.remaining {
			t.Errorf("request %d: X-RateLimit-Remaining %q, want %s", i+1, got, want.remaining)
		}
		if r.Header.Get("X-RateLimit-Reset") == "" {
			t.Errorf("request %d: no X-RateLimit-Reset", i+1)
		}
		retry := r.Header.Get("Retry-After")
		if want.status == 429 {
			var secs int
			if _, err := fmt.Sscan(retry, &secs); err != nil || secs < 1 || secs > 60 {
				t.Errorf("request %d: Retry-After %q, want 1..60 seconds", i+1, retry)
			}
			if code := r.JSON(t)["error"].(map[string]any)["code"]; code != "rate_limited" {
				t.Errorf("request %d: code %v", i+1, code)
			}
		} else if retry != "" {
			t.Errorf("request %d: Retry-After %q before the limit", i+1, retry)
		}
	}
	if n := f.ts.count(`SELECT COUNT(*) FROM clicks`); n != 3 {
		t.Errorf("%d clicks stored, want 3", n)
	}
}

// TestCollectProgramRateLimit: one program's budget does not touch another's.
func TestCollectProgramRateLimit(t *testing.T) {
	f := newCollectFixture(t, func(cfg *Config) { cfg.RateLimitProgram = "2-M" })
	shopClick := clickBody(f.shop.ID, "https://shop.example/?aff=alice", "", "")
	offClick := clickBody(f.off.ID, "https://off.example/?aff=alice", "", "")
	for i, step := range []struct {
		body, origin string
		status       int
	}{
		{shopClick, shopOrigin, 201},
		{shopClick, shopOrigin, 201},
		{shopClick, shopOrigin, 429},
		{offClick, "https://off.example", 201},
		// Rejected origins do not spend the program's budget.
		{shopClick, "https://evil.example", 403},
		{offClick, "https://off.example", 201},
		{offClick, "https://off.example", 429},
	} {
		r := f.ts.request("POST", "/collect", step.body, "Origin", step.origin)
		if r.Status != step.status {
			t.Fatalf("step %d: %d %s", i+1, r.Status, r.Body)
		}
		if step.status == 429 {
			if r.Header.Get("Retry-After") == "" || r.Header.Get("X-RateLimit-Limit") != "2" || r.Header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("step %d: headers %v", i+1, r.Header)
			}
			// Past the origin check: the browser may read why.
			if r.Header.Get("Access-Control-Allow-Origin") != step.origin {
				t.Errorf("step %d: no CORS on the program's 429", i+1)
			}
		}
	}
	if n := f.ts.count(`SELECT COUNT(*) FROM clicks`); n != 4 {
		t.Errorf("%d clicks stored, want 4", n)
	}
}

// TestCollectRateLimitIgnoresForwardedFor: without a trusted proxy, a
// client cannot buy a fresh budget by making up X-Forwarded-For.
func TestCollectRateLimitIgnoresForwardedFor(t *testing.T) {
	f := newCollectFixture(t, func(cfg *Config) { cfg.RateLimitIP = "5-M" })
	statuses := map[int]int{}
	for i := 0; i < 10; i++ {
		r := f.ts.request("POST", "/collect", clickBody(f.shop.ID, "https://shop.example/?aff=alice", "", ""),
			"Origin", shopOrigin, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		statuses[r.Status]++
	}
	if statuses[201] != 5 || statuses[429] != 5 {
		t.Errorf("statuses %v, want 5 × 201 and 5 × 429", statuses)
	}
}

// listen serves ts on a real loopback listener and returns its base URL.
func listen(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.app.Listener(ln)
	t.Cleanup(func() { s.app.Shutdown() })
	return "http://" + ln.Addr().String()
}

func post(t testing.TB, client *http.Client, url, body string, headers ...string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestCollectHugeBody: a body past the server-wide limit is refused from
// its Content-Length and the body's first bytes (bodies are streamed, and
// fasthttp reads a little before the handler); the answer is still in the
// SPEC's shape. Only the start of the body is sent, so the server's early
// close cannot race a client still writing it.
func TestCollectHugeBody(t *testing.T) {
	f := newCollectFixture(t)
	addr := strings.TrimPrefix(listen(t, f.ts.Server), "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /collect HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n{\"program\":", addr, 2<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(b), `"code":"body_too_large"`) {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

// TestCollectTrustedProxy: behind a trusted proxy the limit keys on the
// right-most untrusted X-Forwarded-For entry; the client-written entries
// to its left change nothing.
func TestCollectTrustedProxy(t *testing.T) {
	f := newCollectFixture(t, func(cfg *Config) {
		cfg.RateLimitIP = "5-M"
		cfg.TrustedProxies = []string{"127.0.0.1"}
	})
	url := listen(t, f.ts.Server) + "/collect"
	body := clickBody(f.shop.ID, "https://shop.example/?aff=alice", "", "")
	client := &http.Client{}
	statuses := map[int]int{}
	for i := 0; i < 10; i++ {
		status, _ := post(t, client, url, body, "Origin", shopOrigin,
			"X-Forwarded-For", fmt.Sprintf("10.9.9.%d, 203.0.113.7", i))
		statuses[status]++
	}
	if statuses[201] != 5 || statuses[429] != 5 {
		t.Errorf("one client behind the proxy: statuses %v, want 5 × 201 and 5 × 429", statuses)
	}
	// Another client behind the same proxy has its own budget.
	if status, _ := post(t, client, url, body, "Origin", shopOrigin, "X-Forwarded-For", "10.9.9.1, 203.0.113.8"); status != 201 {
		t.Errorf("another client behind the proxy: %d, want 201", status)
	}
}

// TestCollectConcurrentSales is the "must show": 16 browsers post
// 640 distinct sales at once; every one is answered 201 and stored.
func TestCollectConcurrentSales(t *testing.T) {
	f := newCollectFixture(t)
	url := listen(t, f.ts.Server) + "/collect"
	const workers, perWorker = 16, 40
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var wg sync.WaitGroup
	var created atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				key := fmt.Sprintf("w%d_%d", w, i)
				body := collectBody(f.shop.ID, "transactions.create", "alice",
					`{"key":"`+key+`","amount":"19.99","customer":{"key":"c_`+key+`"},"options":{"create_customer":true}}`)
				status, _ := post(t, client, url, body, "Origin", shopOrigin)
				if status == 201 {
					created.Add(1)
				} else {
					t.Errorf("sale %s: %d", key, status)
				}
			}
		}()
	}
	wg.Wait()
	if created.Load() != workers*perWorker {
		t.Errorf("%d answered 201, want %d", created.Load(), workers*perWorker)
	}
	if n := f.ts.count(`SELECT COUNT(*) FROM transactions WHERE source = 'js' AND key LIKE 'w%'`); n != workers*perWorker {
		t.Errorf("%d sales stored, want %d", n, workers*perWorker)
	}
	if n := f.ts.count(`SELECT COUNT(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE t.key LIKE 'w%' AND r.amount_minor = 400`); n != workers*perWorker {
		t.Errorf("%d rewards stored, want %d", n, workers*perWorker)
	}
}

// TestNewRejectsBadLimits: a mistyped flag stops the server at start.
func TestNewRejectsBadLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"ip rate without period", func(c *Config) { c.RateLimitIP = "120" }},
		{"ip rate with unknown period", func(c *Config) { c.RateLimitIP = "120-W" }},
		{"program rate not a number", func(c *Config) { c.RateLimitProgram = "many-M" }},
		{"trusted proxy not an address", func(c *Config) { c.TrustedProxies = []string{"proxy.local"} }},
		{"trusted proxy with a bad mask", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/99"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{AdminToken: testAdminToken}
			tc.mutate(&cfg)
			st, err := store.Open(filepath.Join(t.TempDir(), "potrack.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := New(cfg, st); err == nil {
				t.Error("New accepted the configuration")
			}
		})
	}
}

// newBenchServer is a server with one JS-tracking program and partner
// alice, listening on loopback.
func newBenchServer(b *testing.B) (url, program string) {
	st, err := store.Open(filepath.Join(b.TempDir(), "potrack.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	cfg := Config{AdminToken: testAdminToken}
	noLimits(&cfg)
	s, err := New(cfg, st)
	if err != nil {
		b.Fatal(err)
	}
	base := listen(b, s)
	client := &http.Client{}
	req, _ := http.NewRequest("POST", base+"/admin/api/programs",
		strings.NewReader(`{"name":"Bench","js_tracking":true,"allowed_origins":["https://shop.example"]}`))
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var created struct {
		Data struct {
			ID     string `json:"id"`
			APIKey string `json:"api_key"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != 201 {
		b.Fatalf("create program: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", base+"/v1/partners", strings.NewReader(`{"key":"alice"}`))
	req.Header.Set("Authorization", "Bearer "+created.Data.APIKey)
	req.Header.Set("Content-Type", "application/json")
	if resp, err = client.Do(req); err != nil || resp.StatusCode != 201 {
		b.Fatalf("create partner: %v", err)
	}
	resp.Body.Close()
	return base + "/collect", created.Data.ID
}

func benchCollect(b *testing.B, parallel bool) {
	url, program := newBenchServer(b)
	var seq atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	one := func() {
		key := fmt.Sprintf("b%d", seq.Add(1))
		body := collectBody(program, "transactions.create", "alice",
			`{"key":"`+key+`","amount":"19.99","customer":{"key":"c_`+key+`"},"options":{"create_customer":true}}`)
		if status, _ := post(b, client, url, body, "Origin", shopOrigin); status != 201 {
			b.Errorf("sale %s: %d", key, status)
		}
	}
	b.ResetTimer()
	if parallel {
		b.SetParallelism(16) // 16 × GOMAXPROCS browsers in flight: enough to fill the writer's groups
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	} else {
		for i := 0; i < b.N; i++ {
			one()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sales/s")
}

// BenchmarkCollect is many browsers reporting sales at once: the writer
// commits them in groups.
func BenchmarkCollect(b *testing.B) { benchCollect(b, true) }

// BenchmarkCollectSerial is one browser at a time: one commit per sale,
// the baseline BenchmarkCollect's group commit is measured against.
func BenchmarkCollectSerial(b *testing.B) { benchCollect(b, false) }

// TestVerifiedSaleWinsOverBrowserReport: a browser report is unverified and
// anyone can send one under any key. The merchant's own report of that key
// (REST or Stripe) must not be refused because of it: with the same content
// it confirms the row, with other content it replaces it.
func TestVerifiedSaleWinsOverBrowserReport(t *testing.T) {
	f := newCollectFixture(t)
	post := func(key, amount string) int {
		body := collectBody(f.shop.ID, "transactions.create", "bob",
			`{"key":"`+key+`","amount":"`+amount+`","customer":{"key":"cust_alice"}}`)
		return f.ts.request("POST", "/collect", body, "Origin", shopOrigin).Status
	}
	rest := func(key, amount string) *response {
		return f.ts.api(f.shop, "POST", "/v1/transactions", `{"key":"`+key+`","amount":"`+amount+`","customer":{"key":"cust_alice"}}`)
	}
	// The same sale from the page and from the server: one row, now verified.
	if st := post("order_1", "10.00"); st != 201 {
		t.Fatalf("browser report: %d", st)
	}
	if r := rest("order_1", "10.00"); r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "true" || !strings.Contains(r.Body, `"verified":true`) {
		t.Fatalf("server report of the same sale: %d %s", r.Status, r.Body)
	}
	// A forged report under the merchant's next order key, with another amount.
	if st := post("order_2", "9999.00"); st != 201 {
		t.Fatalf("forged report: %d", st)
	}
	if r := rest("order_2", "25.00"); r.Status != 201 || !strings.Contains(r.Body, `"amount":25.00`) {
		t.Fatalf("server report after a forged one: %d %s", r.Status, r.Body)
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM transactions WHERE key = 'order_1' AND verified = TRUE`:                           1,
		`SELECT count(*) FROM transactions WHERE key = 'order_2' AND verified = TRUE AND amount_minor = 2500`:   1,
		`SELECT count(*) FROM transactions WHERE key IN ('order_1', 'order_2')`:                                 2,
		`SELECT count(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE t.key = 'order_2'`: 1,
	} {
		if got := f.ts.count(q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	// Confirming takes every field: a browser report with another product
	// (which picks the commission) is replaced, not confirmed.
	body := collectBody(f.shop.ID, "transactions.create", "bob", `{"key":"order_3","amount":"10.00","product_id":"gold","customer":{"key":"cust_alice"}}`)
	if st := f.ts.request("POST", "/collect", body, "Origin", shopOrigin).Status; st != 201 {
		t.Fatalf("browser report with a product: %d", st)
	}
	if r := rest("order_3", "10.00"); r.Status != 201 || !strings.Contains(r.Body, `"product_id":""`) || !strings.Contains(r.Body, `"verified":true`) {
		t.Fatalf("server report of another product: %d %s", r.Status, r.Body)
	}
	// A verified sale is never replaced by a browser report.
	if st := post("order_2", "1.00"); st != 409 {
		t.Errorf("browser report over a verified sale: %d, want 409", st)
	}
}

// TestCollectClickOffOrigin: a click counts only for a landing page on the
// origin that passed the origin check (scheme, host and port); any other
// url is 202 ignored and stores nothing.
func TestCollectClickOffOrigin(t *testing.T) {
	f := newCollectFixture(t)
	shop := f.shop.ID
	clicks := func(want int) []storedRows {
		return []storedRows{{"SELECT COUNT(*) FROM clicks WHERE program_id = '" + shop + "'", want}}
	}
	noURL := `{"program":"` + shop + `","type":"clicks.create","referrer":""}`
	created := map[string]string{"partner": "alice"}
	f.run(t, []collectScenario{
		{name: "same origin", body: clickBody(shop, "https://shop.example/?aff=alice", "", ""),
			status: 201, answer: "created", fields: created, cors: true, stored: clicks(1)},
		{name: "same origin, default port written out", body: clickBody(shop, "https://shop.example:443/p?aff=alice", "", ""),
			status: 201, answer: "created", fields: created, cors: true, stored: clicks(2)},
		{name: "same origin, host in upper case", body: clickBody(shop, "https://SHOP.example/aff/alice", "", ""),
			status: 201, answer: "created", fields: created, cors: true, stored: clicks(3)},
		{name: "foreign site", body: clickBody(shop, "https://evil.example/?aff=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: clicks(3)},
		{name: "wildcard-allowed subdomain page", body: clickBody(shop, "https://eu.shop.example/?aff=alice", "", ""),
			headers: []string{"Origin", "https://eu.shop.example"}, status: 201, answer: "created", fields: created, cors: true, stored: clicks(4)},
		{name: "another allowed origin than the request's", body: clickBody(shop, "https://shop.example/?aff=alice", "", ""),
			headers: []string{"Origin", "https://eu.shop.example"}, status: 202, answer: "ignored", cors: true, stored: clicks(4)},
		{name: "another wildcard subdomain than the request's", body: clickBody(shop, "https://us.shop.example/?aff=alice", "", ""),
			headers: []string{"Origin", "https://eu.shop.example"}, status: 202, answer: "ignored", cors: true, stored: clicks(4)},
		{name: "Referer's origin when there is no Origin", body: clickBody(shop, "https://shop.example/?aff=alice", "", ""),
			headers: []string{"Referer", "https://shop.example/landing"}, status: 201, answer: "created", fields: created, cors: true, stored: clicks(5)},
		{name: "other scheme", body: clickBody(shop, "http://shop.example/?aff=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: clicks(5)},
		{name: "other port", body: clickBody(shop, "https://shop.example:8443/?aff=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: clicks(5)},
		{name: "allowed host as a prefix of another", body: clickBody(shop, "https://shop.example.evil.example/?aff=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: clicks(5)},
		{name: "allowed host as user info", body: clickBody(shop, "https://shop.example@evil.example/?aff=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: clicks(5)},
		{name: "relative url", body: clickBody(shop, "/?aff=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: clicks(5)},
		{name: "garbage url", body: clickBody(shop, "https://shop.example:port/%zz?aff=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: clicks(5)},
		{name: "not a url at all", body: clickBody(shop, "aff=alice", "", ""),
			status: 202, answer: "ignored", cors: true, stored: clicks(5)},
		{name: "no url", body: noURL, status: 202, answer: "ignored", cors: true, stored: clicks(5)},
	})
}

// TestNewSaleCostsThreeStatements: a browser sale of a new customer
// referred by a known partner claims the customer, claims the key and
// inserts the reward; the reward's first ledger entry (accrued) and a look
// for the partner's recent paid-ad clicks (the cookie attributed a new
// customer: fraud flags) add two; one more read per batch asks whether
// gateway sales wait for new customers. Read from
// potrack_store_statements_total.
func TestNewSaleCostsThreeStatements(t *testing.T) {
	f := newCollectFixture(t)
	statements := func() int {
		t.Helper()
		m := f.ts.request("GET", "/metrics", "")
		for _, line := range strings.Split(m.Body, "\n") {
			if v, ok := strings.CutPrefix(line, "potrack_store_statements_total "); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("metric line %q", line)
				}
				return int(n)
			}
		}
		t.Fatalf("no potrack_store_statements_total in /metrics")
		return 0
	}
	sale := func(key string) {
		t.Helper()
		body := collectBody(f.shop.ID, "transactions.create", "alice",
			`{"key":"`+key+`","amount":"10.00","customer":{"key":"c_`+key+`"},"options":{"create_customer":true}}`)
		if r := f.ts.request("POST", "/collect", body, "Origin", shopOrigin); r.Status != 201 {
			t.Fatalf("sale %s: %d %s", key, r.Status, r.Body)
		}
	}
	sale("warm") // programs and partners come from memory from now on
	before := statements()
	sale("order_1")
	if n := statements() - before; n != 6 {
		t.Fatalf("a new sale ran %d statements, want 6 (3 + the ledger entry + the paid-ad look + the per-batch read)", n)
	}
	if n := f.ts.count(`SELECT count(*) FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE t.key = 'order_1'`); n != 1 {
		t.Fatalf("%d rewards stored for the sale", n)
	}
}
