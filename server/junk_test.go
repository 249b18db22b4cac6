package server

import (
	"strings"
	"testing"
)

// junkBodies are malformed inputs of many shapes. None may crash the server,
// answer 5xx or store anything.
var junkBodies = []string{
	``, ` `, `null`, `true`, `0`, `"x"`, `[]`, `[{}]`, `{`, `}`, `{"a":}`, `{"key":null}`,
	`{"amount":null,"customer":null}`, `{"amount":{},"customer":[]}`, `{"amount":[1]}`,
	`{"amount":1e999,"customer":{"key":"c"}}`, `{"amount":-0,"customer":{"key":"c"}}`,
	`{"amount":"1","customer":{"key":""}}`, `{"amount":"1","customer":{"key":"\ud800"}}`,
	`{"amount":"1","amount_units":"\u0000","customer":{"key":"c"}}`,
	`{"amount":"1","customer":{"key":"c","partner":{"id":-1}}}`,
	`{"amount":"1","customer":{"key":"c","partner":{"id":1e40}}}`,
	`{"amount":"1","customer":{"key":"c","partner":"p"}}`,
	`{"transactions":null}`, `{"transactions":[null]}`, `{"transactions":[[]]}`, `{"transactions":"x"}`,
	`{"key":"` + strings.Repeat("🙂", 300) + `","amount":"1","customer":{"key":"c"}}`,
	strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000),
	strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000),
	`{"name":123}`, `{"name":"x","commission":{"type":"percent","value":"1e5"}}`,
	`{"name":"x","commission":{"type":"percent","value":null}}`, `{"name":"x","commission":{"rules":[null]}}`,
	`{"name":"x","allowed_origins":[null,1]}`, `{"name":"x","allowed_origins":["http://[::1"]}`,
	`{"name":"x","cookie_days":1e10}`, `{"name":"x","cookie_days":-1}`, `{"secret":null}`,
	"\xff\xfe\xfd", `{"key":"k","email":"` + strings.Repeat("a", 5000) + `@x"}`,
}

func TestJunkNeverServerErrors(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram(`{"name":"Shop"}`)
	other := ts.createProgram(`{"name":"Other"}`)
	ts.api(other, "POST", "/v1/partners", `{"key":"x"}`)
	before := ts.count(`SELECT (SELECT count(*) FROM partners) + (SELECT count(*) FROM customers) + (SELECT count(*) FROM transactions) + (SELECT count(*) FROM programs)`)
	for i, body := range junkBodies {
		r := ts.request("POST", "/collect", `{"program":"`+p.ID+`","type":"transactions.create","data":`+body+`}`,
			"Origin", "https://shop.example")
		if r.Status >= 500 || strings.Contains(r.Body, "server.") || strings.Contains(r.Body, "Go value") {
			t.Errorf("/collect junk data #%d: %d %s", i, r.Status, r.Body)
		}
	}
	targets := []struct{ method, path string }{
		{"POST", "/v1/partners"}, {"POST", "/v1/customers"}, {"POST", "/v1/transactions"},
		{"POST", "/admin/api/programs"}, {"PATCH", "/admin/api/programs/" + p.ID},
		{"POST", "/admin/api/programs/" + p.ID + "/rotate"},
	}
	for _, tg := range targets {
		for i, body := range junkBodies {
			r := ts.request(tg.method, tg.path, body, "Authorization", "Bearer "+p.APIKey)
			if strings.HasPrefix(tg.path, "/admin") {
				r = ts.admin(tg.method, tg.path, body)
			}
			// A PATCH whose fields are all absent is a valid no-op.
			if r.Status >= 500 || (r.Status < 400 && tg.method != "PATCH") {
				t.Errorf("%s %s junk #%d: status %d %s", tg.method, tg.path, i, r.Status, r.Body)
			}
			// Messages are for merchants: no Go type names.
			for _, leak := range []string{"server.", "rules.", "Go value", "json:"} {
				if strings.Contains(r.Body, leak) {
					t.Errorf("%s %s junk #%d: the message shows %q: %s", tg.method, tg.path, i, leak, r.Body)
				}
			}
		}
	}
	for _, path := range []string{"/v1/partners/%ff", "/v1/customers/" + strings.Repeat("k", 300), "/v1/transactions?limit=-1&page=99999999999999999999"} {
		if r := ts.api(p, "GET", path, ""); r.Status >= 500 {
			t.Errorf("GET %s: %d", path, r.Status)
		}
	}
	after := ts.count(`SELECT (SELECT count(*) FROM partners) + (SELECT count(*) FROM customers) + (SELECT count(*) FROM transactions) + (SELECT count(*) FROM programs)`)
	if after != before {
		t.Errorf("junk changed the database: %d rows before, %d after", before, after)
	}
}

// FuzzV1Transactions checks that no body makes POST /v1/transactions answer
// 5xx. `go test` runs the seeds; `go test -fuzz FuzzV1Transactions` explores.
func FuzzV1Transactions(f *testing.F) {
	for _, b := range junkBodies {
		f.Add(b)
	}
	f.Add(seedTransaction)
	ts := newTestServer(f)
	p := ts.createProgram("")
	f.Fuzz(func(t *testing.T, body string) {
		ts.t = t
		if r := ts.api(p, "POST", "/v1/transactions", body); r.Status >= 500 {
			t.Fatalf("status %d for %q: %s", r.Status, body, r.Body)
		}
	})
}
