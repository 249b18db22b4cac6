package server

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"
)

// internals are words that belong to Go, its libraries or the machine, never
// to an answer a merchant reads.
var internals = []string{
	"json:", "unmarshal", "Unmarshal", "struct field", "Go struct", "Go value", "int64", "float64", "[]uint8",
	"map[string]", "json.Number", "fasthttp",
	".go:", "goroutine", "panic", "runtime error", "Buffer size", "NextPart", "multipart:", "/root/", "/tmp/",
	"sqlite3", "SQL logic", "no such table", "invalid number literal",
}

// goName is a Go identifier of ours or Fiber's (server.Error,
// *rules.Decimal); "the server." in a sentence is not one.
var goName = regexp.MustCompile(`\b(server|rules|store|tracking|fiber|gateway)\.[A-Za-z]`)

// TestNoInternalsInAnswers sends junk to every route, in every body type,
// and fails on any answer that shows internals or is a 5xx.
func TestNoInternalsInAnswers(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram(`{"name":"Shop","js_tracking":true,"allowed_origins":["https://shop.example"],"paddle_webhook_secret":"pdl_junk"}`)
	web := ts.signIn()
	junk := append([]string{
		`{"id":"evt_1","type":"invoice.paid","created":"yesterday","data":{"object":{}}}`,
		`{"id":"evt_1","type":"charge.refunded","data":{"object":{"amount_refunded":"lots","currency":7}}}`,
		`{"id":"evt_1","type":"invoice.paid","data":{"object":{"amount_paid":1e99,"currency":"usd","customer":{"x":1}}}}`,
		`{"id":"evt_1","type":"customer.created","data":{"object":{"id":"cus_1","metadata":{"partnero_partner":["a"]}}}}`,
		`{"id":"evt_1","type":"charge.succeeded","data":null}`, `{"data":{"object":"str"}}`,
		`{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"cs_1","client_reference_id":{"a":1},"discounts":[7]}}}`,
		`{"event_type":"transaction.completed","data":{"id":"txn_1","customer_id":"ctm_1","currency_code":"USD","details":{"totals":{"grand_total":["1"]}}}}`,
		`{"event_type":"transaction.completed","data":{"id":"txn_1","customer_id":"ctm_1","currency_code":"USD","details":{"totals":{"grand_total":"1e9"}}}}`,
		`{"event_type":"adjustment.updated","data":{"id":"adj_1","action":"refund","status":"approved","transaction_id":"txn_1","totals":null}}`,
		`{"event_type":"customer.created","data":{"id":"ctm_1","custom_data":"str","name":7}}`, `{"event_type":7}`,
		`{"program":"` + p.ID + `","type":"transactions.create","data":{"key":"k","amount":"abc","customer":{"key":"c"}}}`,
		`{"program":"` + p.ID + `","type":"transactions.create","data":{"key":"k","amount":"NaN","customer":{"key":"c"}}}`,
		`{"program":"` + p.ID + `","type":"transactions.create","data":{"key":"k","amount":"","customer":{"key":"c"}}}`,
		`{"program":"` + p.ID + `","type":"transactions.create","data":{"key":"k","amount":"1,00","customer":{"key":"c"}}}`,
		`{"program":"` + p.ID + `","type":"clicks.create","url":{"a":1}}`,
		`{"key":"k","amount":"abc","customer":{"key":"c"}}`, `{"key":"k","amount":"NaN","customer":{"key":"c"}}`,
		`{"transactions":[{"key":"k","amount":"1,00","customer":{"key":"c"}}]}`,
	}, junkBodies...)
	contentTypes := []string{"application/json", "text/plain", "multipart/form-data; boundary=x",
		"multipart/form-data", "application/x-www-form-urlencoded", ""}
	type route struct {
		method, path string
		headers      func(body string) []string
	}
	bearer := func(key string) func(string) []string {
		return func(string) []string { return []string{"Authorization", "Bearer " + key} }
	}
	routes := []route{
		{"POST", "/collect", func(string) []string { return []string{"Origin", "https://shop.example"} }},
		{"POST", "/v1/partners", bearer(p.APIKey)}, {"POST", "/v1/customers", bearer(p.APIKey)},
		{"POST", "/v1/transactions", bearer(p.APIKey)}, {"DELETE", "/v1/transactions/k", bearer(p.APIKey)},
		{"GET", "/v1/transactions?limit=abc&page=-1", bearer(p.APIKey)},
		{"POST", "/admin/api/programs", bearer(testAdminToken)}, {"PATCH", "/admin/api/programs/" + p.ID, bearer(testAdminToken)},
		{"POST", "/admin/api/programs/" + p.ID + "/rotate", bearer(testAdminToken)},
		// Signed with the program's webhook secret: junk that passes the
		// signature reaches the event decoder.
		{"POST", "/webhooks/stripe/" + p.ID, func(body string) []string {
			signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(body), Secret: p.WebhookSecret})
			return []string{"Stripe-Signature", signed.Header}
		}},
		{"POST", "/webhooks/paddle/" + p.ID, func(body string) []string {
			return []string{"Paddle-Signature", paddleSignature("pdl_junk", time.Now(), body)}
		}},
		{"POST", "/admin/login", func(string) []string { return nil }},
		{"POST", "/admin/programs", func(string) []string { return []string{"Cookie", sessionCookie + "=" + web.cookie} }},
		{"POST", "/admin/programs/" + p.ID + "/settings/commission", func(string) []string {
			return []string{"Cookie", sessionCookie + "=" + web.cookie}
		}},
	}
	checked := 0
	for _, rt := range routes {
		for _, ct := range contentTypes {
			for i, body := range junk {
				if strings.HasPrefix(rt.path, "/admin/programs") || rt.path == "/admin/login" {
					// Forms: the junk as a field value, and as the raw body.
					if i%2 == 0 {
						body = url.Values{"csrf": {web.csrf}, "name": {body}, "token": {body}, "value": {body}}.Encode()
					}
				}
				r := ts.request(rt.method, rt.path, body, append([]string{"Content-Type", ct}, rt.headers(body)...)...)
				checked++
				if r.Status >= 500 {
					t.Errorf("%s %s (%s) junk #%d: status %d %.300s", rt.method, rt.path, ct, i, r.Status, r.Body)
				}
				for _, leak := range internals {
					if strings.Contains(r.Body, leak) {
						t.Errorf("%s %s (%s) junk #%d: answer shows %q: %.300s", rt.method, rt.path, ct, i, leak, r.Body)
						break
					}
				}
				if m := goName.FindString(r.Body); m != "" {
					t.Errorf("%s %s (%s) junk #%d: answer names %q: %.300s", rt.method, rt.path, ct, i, m, r.Body)
				}
			}
		}
	}
	t.Logf("%d junk requests, no internals", checked)
}

// FuzzCollect: no body makes POST /collect answer 5xx or show internals.
// `go test` runs the seeds (these and testdata/fuzz/FuzzCollect);
// `make fuzz` explores.
func FuzzCollect(f *testing.F) {
	ts := newTestServer(f)
	p := ts.createProgram(`{"name":"Shop","js_tracking":true,"allowed_origins":["https://shop.example"]}`)
	ts.api(p, "POST", "/v1/partners", `{"key":"pat"}`)
	for _, data := range junkBodies {
		f.Add(`{"program":"` + p.ID + `","type":"transactions.create","partner":{"key":"pat"},"data":` + data + `}`)
	}
	f.Add(`{"program":"` + p.ID + `","type":"clicks.create","url":"https://shop.example/?aff=pat","partner":{"key":"pat"}}`)
	f.Add(`{"program":"` + p.ID + `","type":"customers.signup","partner":{"key":"pat"},"data":{"key":"c1","email":"a@b.c"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		ts.t = t
		r := ts.request("POST", "/collect", body, "Origin", "https://shop.example")
		if r.Status >= 500 {
			t.Fatalf("status %d for %q: %s", r.Status, body, r.Body)
		}
		for _, leak := range internals {
			if strings.Contains(r.Body, leak) {
				t.Fatalf("answer to %q shows %q: %s", body, leak, r.Body)
			}
		}
	})
}
