package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestAmountNotANumber: an amount that is not a JSON number or a decimal
// string is 422 invalid_field naming the amount, on every route that takes
// one, in a plain message that neither echoes the input nor shows Go or
// library internals.
func TestAmountNotANumber(t *testing.T) {
	f := newCollectFixture(t)
	ts := f.ts
	long := `"` + strings.Repeat("z", 2000) + `"`
	inputs := []string{
		`"abc"`, `"NaN"`, `""`, `"1,00"`, `"1e5"`, `true`, `{}`,
		`false`, `[]`, `[1]`, `{"value":1}`, `1e5`, `1E2`, `"Infinity"`, `"-"`, `"0x10"`, `" 1"`, `"1 "`,
		`"+1"`, `".5"`, `"1."`, `"01"`, `"١"`, `"1\u0000"`, `"\ud800"`, long,
	}
	// Words that belong to Go or its JSON library, never to a merchant.
	leaks := []string{"json:", "json.", "unmarshal", "Unmarshal", "Number", "struct", "Go ", "float", "int64",
		"interface", "map[", "server.", "rules.", "flexString", "invalid character", "literal"}

	type route struct {
		name, field string
		send        func(amount string) *response
		stored      string
	}
	routes := []route{
		{"/collect", "data.amount", func(amount string) *response {
			body := collectBody(f.shop.ID, "transactions.create", "alice",
				`{"key":"nan_js","amount":`+amount+`,"customer":{"key":"cust_alice"}}`)
			return ts.request("POST", "/collect", body, "Origin", shopOrigin, "Content-Type", "text/plain")
		}, `SELECT COUNT(*) FROM transactions WHERE key = 'nan_js'`},
		{"POST /v1/transactions", "amount", func(amount string) *response {
			return ts.api(f.shop, "POST", "/v1/transactions", `{"key":"nan_v1","amount":`+amount+`,"customer":{"key":"cust_alice"}}`)
		}, `SELECT COUNT(*) FROM transactions WHERE key = 'nan_v1'`},
		{"POST /v1/transactions batch", "transactions[1].amount", func(amount string) *response {
			return ts.api(f.shop, "POST", "/v1/transactions", `{"transactions":[`+
				`{"key":"nan_b0","amount":"1.00","customer":{"key":"cust_alice"}},`+
				`{"key":"nan_b1","amount":`+amount+`,"customer":{"key":"cust_alice"}}]}`)
		}, `SELECT COUNT(*) FROM transactions WHERE key IN ('nan_b0', 'nan_b1')`},
	}
	for _, rt := range routes {
		for _, in := range inputs {
			name := in
			if len(name) > 20 {
				name = name[:20] + "…"
			}
			t.Run(rt.name+" "+name, func(t *testing.T) {
				ts.t = t
				r := rt.send(in)
				if r.Status != 422 {
					t.Fatalf("status %d, want 422: %s", r.Status, r.Body)
				}
				body := r.JSON(t)
				var msg string
				if rt.name == "/collect" {
					e, _ := body["error"].(map[string]any)
					if e["code"] != "invalid_field" || e["field"] != rt.field {
						t.Errorf("error %v, want invalid_field on %s", e, rt.field)
					}
					msg, _ = e["message"].(string)
				} else {
					errs, _ := body["errors"].(map[string]any)
					list, _ := errs[rt.field].([]any)
					if fmt.Sprint(body["status"]) != "0" || len(list) != 1 || len(errs) != 1 {
						t.Errorf("errors %v, want one for %s in the REST shape: %s", errs, rt.field, r.Body)
					}
					msg, _ = body["message"].(string)
				}
				if msg == "" || !strings.Contains(msg, "amount") {
					t.Errorf("message %q does not say what is wrong with the amount", msg)
				}
				for _, leak := range leaks {
					if strings.Contains(msg, leak) {
						t.Errorf("message %q shows %q", msg, leak)
					}
				}
				if raw := strings.Trim(in, `"`); len(raw) > 1 && strings.Contains(msg, raw) {
					t.Errorf("message %q echoes the input", msg)
				}
				if n := ts.count(rt.stored); n != 0 {
					t.Errorf("%d transactions stored", n)
				}
			})
		}
	}
	ts.t = t
	// The same field still takes numbers and decimal strings.
	for _, ok := range []string{`"25.00"`, `25`, `25.5`, `"0"`} {
		r := ts.api(f.shop, "POST", "/v1/transactions", `{"key":"ok_`+strings.Trim(ok, `"`)+`","amount":`+ok+`,"customer":{"key":"cust_alice"}}`)
		if r.Status != 201 {
			t.Errorf("amount %s: %d %s", ok, r.Status, r.Body)
		}
	}
}

// TestJSONProblemHidesLibraryErrors: a decoding error in the JSON
// library's words (which names Go types and repeats the input) is never
// shown; our own plain errors are, when short.
func TestJSONProblemHidesLibraryErrors(t *testing.T) {
	for _, tc := range []struct {
		err       error
		wantMsg   string
		wantField string
	}{
		{errors.New(`json: invalid number literal, trying to unmarshal "\"abc\"" into Number`), errBadRequest.Message, "data"},
		{errors.New("expected a string or a number"), "The request body is not valid: expected a string or a number.", "data"},
		{errors.New(strings.Repeat("x", 500)), errBadRequest.Message, "data"},
		{errors.New(`json: unknown field "` + strings.Repeat("f", 500) + `"`), "The request body has an unknown field.", ""},
		{errors.New(`json: unknown field "colour"`), "Unknown field 'data.colour'.", "data.colour"},
	} {
		e := asError(jsonProblem(tc.err, "data"))
		if e.Status != 400 || e.Message != tc.wantMsg || e.Field != tc.wantField {
			t.Errorf("jsonProblem(%.40q) = %d %q field %q, want 400 %q field %q", tc.err, e.Status, e.Message, e.Field, tc.wantMsg, tc.wantField)
		}
	}
}
