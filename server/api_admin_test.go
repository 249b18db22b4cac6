package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/potrack/potrack/store"
)

func TestAdminAPI(t *testing.T) {
	type sc struct {
		name    string
		method  string
		path    string // {id} is replaced by a created program's id
		body    string
		token   string // "" the admin token
		status  int
		want    []string
		notWant []string
	}
	scenarios := []sc{
		{name: "no token", method: "GET", path: "/admin/api/programs", token: "none", status: 401, want: []string{`"code":"unauthorized"`}},
		{name: "wrong token", method: "GET", path: "/admin/api/programs", token: "nope", status: 401},
		{name: "list", method: "GET", path: "/admin/api/programs", status: 200, want: []string{`"name":"Shop"`}, notWant: []string{"api_key", "signing_secret", "webhook_secret\""}},
		{name: "create with every field", method: "POST", path: "/admin/api/programs", status: 201,
			body: `{"name":"Full","currency":"eur","js_tracking":true,"allowed_origins":["https://Shop.example","https://*.shop.example","http://localhost:3000"],
				"cookie_days":60,"referral_params":["aff","ref"],"attribution":"first","js_require_signature":true,
				"commission":{"type":"fixed","value":"5.00","limit":{"type":"transactions","value":3},"rules":[{"product_type":"annual","type":"percent","value":"12.5"}]}}`,
			want: []string{`"currency":"EUR"`, `"js_tracking":true`, `"https://shop.example"`, `"https://*.shop.example"`, `"cookie_days":60`,
				`"attribution":"first"`, `"js_require_signature":true`, `"api_key":"pk_`, `"signing_secret":"ss_`, `"webhook_secret":"whsec_`,
				`"webhook_url":"`, `/webhooks/stripe/`, `"snippet":"\u003cscript\u003e`,
				`po('settings','referral_params',[\"aff\",\"ref\"]);\npo('program',`}},
		{name: "create defaults", method: "POST", path: "/admin/api/programs", body: `{"name":"Plain"}`, status: 201,
			want:    []string{`"currency":"USD"`, `"js_tracking":false`, `"allowed_origins":[]`, `"cookie_days":30`, `"referral_params":["aff"]`, `"attribution":"last"`, `"type":"percent","value":"20"`},
			notWant: []string{`referral_params',`}},
		{name: "create without name", method: "POST", path: "/admin/api/programs", body: `{}`, status: 422, want: []string{`"field":"name"`}},
		{name: "bad currency", method: "POST", path: "/admin/api/programs", body: `{"name":"x","currency":"EURO"}`, status: 422, want: []string{`"field":"currency"`}},
		{name: "origin with path", method: "POST", path: "/admin/api/programs", body: `{"name":"x","allowed_origins":["https://a.example/shop"]}`, status: 422, want: []string{`"field":"allowed_origins[0]"`}},
		{name: "origin ftp", method: "POST", path: "/admin/api/programs", body: `{"name":"x","allowed_origins":["ftp://a.example"]}`, status: 422},
		{name: "origin bare wildcard", method: "POST", path: "/admin/api/programs", body: `{"name":"x","allowed_origins":["https://*.com"]}`, status: 422},
		{name: "cookie days zero", method: "POST", path: "/admin/api/programs", body: `{"name":"x","cookie_days":0}`, status: 422, want: []string{`"field":"cookie_days"`}},
		{name: "cookie days as long as browsers keep", method: "POST", path: "/admin/api/programs", body: `{"name":"x","cookie_days":400}`, status: 201, want: []string{`"cookie_days":400`}},
		{name: "cookie days longer than browsers keep", method: "POST", path: "/admin/api/programs", body: `{"name":"x","cookie_days":401}`, status: 422,
			want: []string{`"field":"cookie_days"`, `from 1 to 400`}},
		{name: "referral param empty list", method: "POST", path: "/admin/api/programs", body: `{"name":"x","referral_params":[]}`, status: 422},
		{name: "referral param with space", method: "POST", path: "/admin/api/programs", body: `{"name":"x","referral_params":["a b"]}`, status: 422},
		{name: "attribution unknown", method: "POST", path: "/admin/api/programs", body: `{"name":"x","attribution":"middle"}`, status: 422},
		{name: "commission over 100%", method: "POST", path: "/admin/api/programs", body: `{"name":"x","commission":{"type":"percent","value":101}}`, status: 422, want: []string{`"field":"commission.value"`}},
		{name: "fixed commission with too many decimals for JPY", method: "POST", path: "/admin/api/programs", body: `{"name":"x","currency":"JPY","commission":{"type":"fixed","value":"1.5"}}`, status: 422},
		{name: "wrong type", method: "POST", path: "/admin/api/programs", body: `{"name":"x","js_tracking":"yes"}`, status: 400},
		{name: "misspelt field", method: "PATCH", path: "/admin/api/programs/{id}", body: `{"js_traking":true}`, status: 400, want: []string{`"field":"js_traking"`}},
		{name: "not JSON", method: "POST", path: "/admin/api/programs", body: `name=x`, status: 400},
		{name: "get", method: "GET", path: "/admin/api/programs/{id}", status: 200, want: []string{`"name":"Shop"`}, notWant: []string{`"api_key"`, `"signing_secret"`, `"webhook_secret"`}},
		{name: "get unknown", method: "GET", path: "/admin/api/programs/nope", status: 404, want: []string{`"code":"program_not_found"`}},
		{name: "patch", method: "PATCH", path: "/admin/api/programs/{id}", body: `{"js_tracking":true,"allowed_origins":["https://shop.example"]}`, status: 200,
			want: []string{`"js_tracking":true`, `"allowed_origins":["https://shop.example"]`, `"name":"Shop"`}, notWant: []string{`"webhook_secret"`}},
		{name: "patch currency invalidating a fixed commission", method: "PATCH", path: "/admin/api/programs/{id}", body: `{"currency":"JPY","commission":{"type":"fixed","value":"2.50"}}`, status: 422},
		{name: "patch unknown", method: "PATCH", path: "/admin/api/programs/nope", body: `{"name":"x"}`, status: 404},
		{name: "patch webhook secret is write-only", method: "PATCH", path: "/admin/api/programs/{id}", body: `{"webhook_secret":"whsec_pasted"}`, status: 200, notWant: []string{"whsec_pasted"}},
		{name: "rotate api key", method: "POST", path: "/admin/api/programs/{id}/rotate", body: `{"secret":"api_key"}`, status: 200, want: []string{`"api_key":"pk_`}, notWant: []string{`"signing_secret"`}},
		{name: "rotate signing secret", method: "POST", path: "/admin/api/programs/{id}/rotate", body: `{"secret":"signing_secret"}`, status: 200, want: []string{`"signing_secret":"ss_`}, notWant: []string{`"api_key"`}},
		{name: "rotate webhook secret", method: "POST", path: "/admin/api/programs/{id}/rotate", body: `{"secret":"webhook_secret"}`, status: 200, want: []string{`"webhook_secret":"whsec_`}},
		{name: "rotate unknown secret", method: "POST", path: "/admin/api/programs/{id}/rotate", body: `{"secret":"password"}`, status: 422, want: []string{`"field":"secret"`}},
		{name: "rotate unknown program", method: "POST", path: "/admin/api/programs/nope/rotate", body: `{"secret":"api_key"}`, status: 404},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			p := ts.createProgram(`{"name":"Shop"}`)
			headers := []string{"Content-Type", "application/json"}
			switch sc.token {
			case "":
				headers = append(headers, "Authorization", "Bearer "+testAdminToken)
			case "none":
			default:
				headers = append(headers, "Authorization", "Bearer "+sc.token)
			}
			r := ts.request(sc.method, strings.ReplaceAll(sc.path, "{id}", p.ID), sc.body, headers...)
			if r.Status != sc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, sc.status, r.Body)
			}
			r.expectBody(t, sc.want, sc.notWant)
			if r.Status >= 400 && r.JSON(t)["error"] == nil {
				t.Errorf("error body lacks 'error': %s", r.Body)
			}
			if r.Status >= 400 && (sc.method == "PATCH" || sc.method == "POST") {
				// A refused change leaves the program as it was.
				if n := ts.count(`SELECT count(*) FROM programs WHERE name = 'Shop' AND js_tracking = FALSE AND currency = 'USD'`); n != 1 {
					t.Errorf("a refused request changed the program")
				}
			}
		})
	}
}

// TestSecretsStoredSafely: the API key is kept only as a hash, and a
// rotated key replaces the old one at once.
func TestSecretsStoredSafely(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	if n := ts.count(`SELECT count(*) FROM programs WHERE api_key_hash = ?`, p.APIKey); n != 0 {
		t.Fatal("the API key is stored in clear")
	}
	if n := ts.count(`SELECT count(*) FROM programs WHERE api_key_hash = ?`, hashSecret(p.APIKey)); n != 1 {
		t.Fatal("the API key's hash is not stored")
	}
	if r := ts.api(p, "GET", "/v1/transactions", ""); r.Status != 200 {
		t.Fatalf("the new key is refused: %d", r.Status)
	}
	r := ts.admin("POST", "/admin/api/programs/"+p.ID+"/rotate", `{"secret":"api_key"}`)
	newKey := r.JSON(t)["data"].(map[string]any)["api_key"].(string)
	if r := ts.api(p, "GET", "/v1/transactions", ""); r.Status != 401 {
		t.Fatalf("the rotated-out key still works: %d", r.Status)
	}
	if r := ts.api(testProgram{APIKey: newKey}, "GET", "/v1/transactions", ""); r.Status != 200 {
		t.Fatalf("the rotated key is refused: %d", r.Status)
	}
	if n := ts.count(`SELECT count(*) FROM settings WHERE value = ?`, testAdminToken); n != 0 {
		t.Fatal("the admin token is stored in clear")
	}
}

// TestOversizedBody goes through a real listener: fasthttp refuses the
// body from its Content-Length before any handler runs, and the answer must
// still be our JSON. A raw connection sends only the headers and a little of
// the body, so the answer can be read without racing the upload.
func TestOversizedBody(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.app.Listener(ln)
	defer ts.app.Shutdown()
	for _, path := range []string{"/v1/transactions", "/admin/api/programs"} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n{\"key\":\"xxxx", path, p.APIKey, 2<<20)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(body), "too large") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	if n := ts.count(`SELECT count(*) FROM transactions`); n != 0 {
		t.Fatalf("%d transactions stored", n)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	ts := newTestServer(t)
	if r := ts.request("GET", "/healthz", ""); r.Status != 200 || !strings.Contains(r.Body, `"ok"`) {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	ts.createProgram("")
	ts.request("GET", "/v1/transactions", "")
	r := ts.request("GET", "/metrics", "")
	for _, want := range []string{
		`potrack_http_requests_total{method="POST",route="/admin/api/programs",status="201"} 1`,
		`potrack_http_requests_total{method="GET",route="/v1",status="401"} 1`,
		`potrack_http_request_duration_seconds_bucket{method="POST",route="/admin/api/programs",status="201"`,
		`potrack_store_write_batch_size_count`,
	} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestAdminTokenGuessing: wrong admin tokens are counted per client IP,
// ten a minute get 401 and the rest 429; the right token always works, on
// the API and the sign-in form alike.
func TestAdminTokenGuessing(t *testing.T) {
	limit := int(adminGuessRate.Limit)
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	tests := []struct {
		name  string
		try   func(ts *testServer, token string) *response
		right int // the right token's status
	}{
		{"admin API", func(ts *testServer, token string) *response {
			return ts.request("GET", "/admin/api/programs", "", "Authorization", "Bearer "+token)
		}, 200},
		{"sign-in form", func(ts *testServer, token string) *response {
			return ts.request("POST", "/admin/login", "token="+url.QueryEscape(token), form...)
		}, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t)
			// Requests without a token, and with the right one, are no guesses.
			for i := 0; i < 3*limit; i++ {
				ts.request("GET", "/admin/api/programs", "")
				if r := tt.try(ts, testAdminToken); r.Status != tt.right {
					t.Fatalf("the right token, call %d: %d", i, r.Status)
				}
			}
			for i := 1; i <= limit; i++ {
				if r := tt.try(ts, "wrong-guess"); r.Status != 401 || r.Header.Get("Retry-After") != "" {
					t.Fatalf("wrong guess %d: %d, Retry-After %q; want 401", i, r.Status, r.Header.Get("Retry-After"))
				}
			}
			for i := 0; i < 3; i++ {
				r := tt.try(ts, "wrong-guess")
				if r.Status != 429 || r.Header.Get("Retry-After") == "" || sessionCookieOf(r) != "" {
					t.Fatalf("wrong guess %d: %d, Retry-After %q; want 429", limit+1+i, r.Status, r.Header.Get("Retry-After"))
				}
				if !strings.Contains(r.Body, "rate_limited") && !strings.Contains(r.Body, "Too many wrong admin tokens") {
					t.Errorf("the 429 does not say why: %s", r.Body)
				}
				// The merchant behind the same address still gets in.
				if r := tt.try(ts, testAdminToken); r.Status != tt.right {
					t.Fatalf("the right token after %d wrong ones: %d %s", limit+1+i, r.Status, r.Body)
				}
			}
			if tt.right == 303 {
				if r := tt.try(ts, testAdminToken); sessionCookieOf(r) == "" {
					t.Errorf("the right token past the budget set no session cookie")
				}
			}
			// The budget is the address's, on both doors.
			if r := ts.request("GET", "/admin/api/programs", "", "Authorization", "Bearer other-guess"); r.Status != 429 {
				t.Errorf("the API after the budget: %d, want 429", r.Status)
			}
			if r := ts.request("POST", "/admin/login", "token=other-guess", form...); r.Status != 429 {
				t.Errorf("the sign-in form after the budget: %d, want 429", r.Status)
			}
		})
	}

	t.Run("parallel guesses get exactly the budget", func(t *testing.T) {
		ts := newTestServer(t)
		const n = 40
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- ts.request("GET", "/admin/api/programs", "", "Authorization", "Bearer wrong-guess").Status
			}()
		}
		wg.Wait()
		close(statuses)
		counts := map[int]int{}
		for s := range statuses {
			counts[s]++
		}
		if counts[401] != limit || counts[429] != n-limit {
			t.Fatalf("statuses %v, want %d x 401 and %d x 429", counts, limit, n-limit)
		}
		if r := ts.admin("GET", "/admin/api/programs", ""); r.Status != 200 {
			t.Fatalf("the right token after parallel guesses: %d", r.Status)
		}
	})
}

func TestShortAdminTokenRefused(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(Config{AdminToken: "short"}, st); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Fatalf("a 5-character admin token: err = %v", err)
	}
}

// TestAdminAPIScriptSettings: the script's settings (cookie_domain,
// link_domains, require_consent, respect_dnt, spa) through the admin API:
// what is accepted and how it is stored, what is refused and with which
// field, the rule that the cookie domain covers an allowed origin after the
// whole change, the program's view and its snippet. A refused request
// changes nothing.
func TestAdminAPIScriptSettings(t *testing.T) {
	const shop = `{"name":"Shop","allowed_origins":["https://www.shop.example","https://*.app.example"]}`
	const withCookie = `{"name":"Shop","allowed_origins":["https://www.shop.example"],"cookie_domain":"shop.example"}`
	long := strings.Repeat("a", 63)
	many := func(n int) string {
		var list []string
		for i := range n {
			list = append(list, fmt.Sprintf(`"d%d.example"`, i))
		}
		return `{"link_domains":[` + strings.Join(list, ",") + `]}`
	}
	type sc struct {
		name    string
		create  string // the program's creation body; "" is shop
		method  string // "" is PATCH of the program; POST creates another
		body    string
		status  int
		field   string // error.field when refused
		want    []string
		notWant []string
	}
	scenarios := []sc{
		// cookie_domain
		{name: "cookie domain: a parent of an origin", body: `{"cookie_domain":"shop.example"}`, status: 200, want: []string{`"cookie_domain":"shop.example"`}},
		{name: "cookie domain: trimmed, lower-cased, leading dot dropped", body: `{"cookie_domain":"  .Shop.EXAMPLE "}`, status: 200, want: []string{`"cookie_domain":"shop.example"`}},
		{name: "cookie domain: an origin's own host", body: `{"cookie_domain":"www.shop.example"}`, status: 200, want: []string{`"cookie_domain":"www.shop.example"`}},
		{name: "cookie domain: a wildcard origin's domain", body: `{"cookie_domain":"app.example"}`, status: 200, want: []string{`"cookie_domain":"app.example"`}},
		{name: "cookie domain: a host a wildcard origin allows", body: `{"cookie_domain":"eu.app.example"}`, status: 200, want: []string{`"cookie_domain":"eu.app.example"`}},
		{name: "cookie domain: two levels under a wildcard", body: `{"cookie_domain":"a.eu.app.example"}`, status: 422, field: "cookie_domain", want: []string{"must cover one of the allowed origins"}},
		{name: "cookie domain: covering no origin", body: `{"cookie_domain":"other.example"}`, status: 422, field: "cookie_domain", want: []string{"must cover one of the allowed origins"}},
		{name: "cookie domain: a subdomain of the origin's parent only", body: `{"cookie_domain":"cdn.shop.example"}`, status: 422, field: "cookie_domain"},
		{name: "cookie domain: a public suffix covering the origin", create: `{"name":"Shop","allowed_origins":["https://shop.co.uk"]}`, body: `{"cookie_domain":"co.uk"}`,
			status: 422, field: "cookie_domain", want: []string{"public suffix"}},
		{name: "cookie domain: a private public suffix (github.io)", create: `{"name":"Shop","allowed_origins":["https://shop.github.io"]}`, body: `{"cookie_domain":"github.io"}`,
			status: 422, field: "cookie_domain", want: []string{"public suffix"}},
		{name: "cookie domain: under a public suffix is fine", create: `{"name":"Shop","allowed_origins":["https://www.shop.co.uk"]}`, body: `{"cookie_domain":"shop.co.uk"}`,
			status: 200, want: []string{`"cookie_domain":"shop.co.uk"`}},
		{name: "cookie domain: a top-level domain", body: `{"cookie_domain":"com"}`, status: 422, field: "cookie_domain", want: []string{"at least two parts"}},
		{name: "cookie domain: an IPv4 address", create: `{"name":"Shop","allowed_origins":["http://192.168.1.10:8080"]}`, body: `{"cookie_domain":"192.168.1.10"}`,
			status: 422, field: "cookie_domain", want: []string{"not an IP address"}},
		{name: "cookie domain: an IPv6 address", body: `{"cookie_domain":"[::1]"}`, status: 422, field: "cookie_domain", want: []string{"not an IP address"}},
		{name: "cookie domain: numeric last label", body: `{"cookie_domain":"shop.123"}`, status: 422, field: "cookie_domain", want: []string{"not an IP address"}},
		{name: "cookie domain: with a scheme", body: `{"cookie_domain":"https://shop.example"}`, status: 422, field: "cookie_domain", want: []string{"without http://"}},
		{name: "cookie domain: with a port", body: `{"cookie_domain":"shop.example:443"}`, status: 422, field: "cookie_domain", want: []string{"without a port"}},
		{name: "cookie domain: with a path", body: `{"cookie_domain":"shop.example/cart"}`, status: 422, field: "cookie_domain", want: []string{"without a path"}},
		{name: "cookie domain: not ASCII", body: `{"cookie_domain":"bücher.example"}`, status: 422, field: "cookie_domain", want: []string{"xn--"}},
		{name: "cookie domain: an empty label", body: `{"cookie_domain":"shop..example"}`, status: 422, field: "cookie_domain"},
		{name: "cookie domain: a label over 63 characters", body: `{"cookie_domain":"` + long + `a.example"}`, status: 422, field: "cookie_domain"},
		{name: "cookie domain: over 253 characters", body: `{"cookie_domain":"` + strings.Repeat(long+".", 4) + `example"}`, status: 422, field: "cookie_domain", want: []string{"at most 253"}},
		{name: "cookie domain: not a string", body: `{"cookie_domain":true}`, status: 400, field: "cookie_domain"},
		{name: "cookie domain: cleared", create: withCookie, body: `{"cookie_domain":""}`, status: 200, want: []string{`"cookie_domain":""`}},
		{name: "cookie domain: at creation without origins", method: "POST", body: `{"name":"x","cookie_domain":"shop.example"}`, status: 422, field: "cookie_domain"},
		{name: "cookie domain: at creation with its origin", method: "POST", body: `{"name":"x","allowed_origins":["https://shop.example"],"cookie_domain":"shop.example"}`,
			status: 201, want: []string{`"cookie_domain":"shop.example"`}},

		// the cookie domain judged on the whole change
		{name: "after the patch: origins and cookie domain changed together", create: withCookie,
			body: `{"allowed_origins":["https://other.example"],"cookie_domain":"other.example"}`, status: 200,
			want: []string{`"allowed_origins":["https://other.example"]`, `"cookie_domain":"other.example"`}},
		{name: "after the patch: cookie domain set before its origin is added in the same patch",
			body: `{"cookie_domain":"other.example","allowed_origins":["https://www.other.example"]}`, status: 200, want: []string{`"cookie_domain":"other.example"`}},
		{name: "after the patch: origins leaving the cookie domain uncovering", create: withCookie,
			body: `{"allowed_origins":["https://other.example"]}`, status: 422, field: "allowed_origins", want: []string{"cookie_domain shop.example"}},
		{name: "after the patch: origins emptied under a cookie domain", create: withCookie,
			body: `{"allowed_origins":[]}`, status: 422, field: "allowed_origins", want: []string{"cookie_domain"}},
		{name: "after the patch: origins still covered", create: withCookie,
			body: `{"allowed_origins":["https://shop.example","https://other.example"]}`, status: 200, want: []string{`"cookie_domain":"shop.example"`}},
		{name: "after the patch: origins changed and cookie domain cleared", create: withCookie,
			body: `{"allowed_origins":["https://other.example"],"cookie_domain":""}`, status: 200, want: []string{`"cookie_domain":""`}},
		{name: "after the patch: another field leaves the cookie domain alone", create: withCookie,
			body: `{"name":"Renamed"}`, status: 200, want: []string{`"cookie_domain":"shop.example"`, `"name":"Renamed"`}},

		// link_domains
		{name: "link domains: trimmed, lower-cased, deduplicated in order",
			body:   `{"link_domains":[" Checkout.Example ","pay.example","checkout.example","PAY.EXAMPLE","shop.co.uk"]}`,
			status: 200, want: []string{`"link_domains":["checkout.example","pay.example","shop.co.uk"]`}},
		{name: "link domains: cleared", create: `{"name":"Shop","link_domains":["pay.example"]}`, body: `{"link_domains":[]}`, status: 200, want: []string{`"link_domains":[]`}},
		{name: "link domains: 20", body: many(20), status: 200, want: []string{`"d19.example"`}},
		{name: "link domains: 21", body: many(21), status: 422, field: "link_domains", want: []string{"At most 20"}},
		{name: "link domains: with a scheme", body: `{"link_domains":["pay.example","https://checkout.example"]}`, status: 422, field: "link_domains[1]", want: []string{"without http://"}},
		{name: "link domains: with a port", body: `{"link_domains":["pay.example:8443"]}`, status: 422, field: "link_domains[0]", want: []string{"without a port"}},
		{name: "link domains: with a path", body: `{"link_domains":["pay.example/checkout"]}`, status: 422, field: "link_domains[0]", want: []string{"without a path"}},
		{name: "link domains: an IP address", body: `{"link_domains":["pay.example","pay.example","10.0.0.1"]}`, status: 422, field: "link_domains[2]", want: []string{"not an IP address"}},
		{name: "link domains: a public suffix", body: `{"link_domains":["co.uk"]}`, status: 422, field: "link_domains[0]", want: []string{"public suffix"}},
		{name: "link domains: one label", body: `{"link_domains":["localhost"]}`, status: 422, field: "link_domains[0]", want: []string{"at least two parts"}},
		{name: "link domains: empty entry", body: `{"link_domains":[" "]}`, status: 422, field: "link_domains[0]", want: []string{"is empty"}},
		{name: "link domains: not a list", body: `{"link_domains":"pay.example"}`, status: 400, field: "link_domains"},

		// the switches
		{name: "consent, Do-Not-Track and SPA on", body: `{"require_consent":true,"respect_dnt":true,"spa":true}`, status: 200,
			want: []string{`"require_consent":true`, `"respect_dnt":true`, `"spa":true`}},
		{name: "consent off again", create: `{"name":"Shop","require_consent":true}`, body: `{"require_consent":false}`, status: 200, want: []string{`"require_consent":false`}},
		{name: "a switch that is not a boolean", body: `{"spa":"yes"}`, status: 400, field: "spa"},

		// the view and its snippet
		{name: "view: defaults", method: "GET", status: 200,
			want: []string{`"cookie_domain":""`, `"link_domains":[]`, `"require_consent":false`, `"respect_dnt":false`, `"spa":false`,
				`"script_url":"http://example.com/js/universal.js"`, `'po',\"http://example.com/js/universal.js\");\npo('program',`},
			notWant: []string{"ext=", `po('consent'`, "doNotTrack", "cookie_domain',", "link_domains',"}},
		{name: "view: every setting in the snippet", method: "GET",
			create: `{"name":"Shop","allowed_origins":["https://www.shop.example"],"cookie_domain":"shop.example","link_domains":["checkout.example"],` +
				`"require_consent":true,"respect_dnt":true,"spa":true,"referral_params":["ref"]}`,
			status: 200, want: []string{
				`"script_url":"http://example.com/js/universal.js?ext=xd,spa"`,
				`'po',\"http://example.com/js/universal.js?ext=xd,spa\")`,
				`if(!(navigator.doNotTrack=='1'||navigator.globalPrivacyControl))d.head.appendChild(o)`,
				`po('consent',false);\npo('settings','referral_params',[\"ref\"]);\npo('settings','cookie_domain',\"shop.example\");\n` +
					`po('settings','link_domains',[\"checkout.example\"]);\npo('program',`}},
		{name: "view: link domains load the xd variant", method: "GET", create: `{"name":"Shop","link_domains":["checkout.example"]}`, status: 200,
			want: []string{`"script_url":"http://example.com/js/universal.js?ext=xd"`, `universal.js?ext=xd\")`}, notWant: []string{"spa\\\"", "doNotTrack"}},
		{name: "Stripe Checkout stamping on", body: `{"stripe_checkout":true}`, status: 200,
			want: []string{`"stripe_checkout":true`, `"script_url":"http://example.com/js/universal.js?ext=stripe"`, `universal.js?ext=stripe\")`}},
		{name: "view: SPA loads the spa variant", method: "GET", create: `{"name":"Shop","spa":true}`, status: 200,
			want: []string{`"script_url":"http://example.com/js/universal.js?ext=spa"`, `universal.js?ext=spa\")`}, notWant: []string{"link_domains',"}},
		{name: "view: the answer to a patch has the new snippet", body: `{"respect_dnt":true}`, status: 200, want: []string{`navigator.doNotTrack`}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			create := sc.create
			if create == "" {
				create = shop
			}
			p := ts.createProgram(create)
			path := "/admin/api/programs/" + p.ID
			before := ts.admin("GET", path, "").Body
			var r *response
			switch sc.method {
			case "":
				r = ts.admin("PATCH", path, sc.body)
			case "POST":
				r = ts.admin("POST", "/admin/api/programs", sc.body)
			default:
				r = ts.admin(sc.method, path, "")
			}
			if r.Status != sc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, sc.status, r.Body)
			}
			r.expectBody(t, sc.want, sc.notWant)
			if r.Status < 400 {
				return
			}
			e, _ := r.JSON(t)["error"].(map[string]any)
			if e == nil || e["field"] != sc.field || e["message"] == "" {
				t.Errorf("error %v, want one on field %q with a message", e, sc.field)
			}
			if msg, _ := e["message"].(string); strings.Contains(msg, "publicsuffix") || strings.Contains(msg, "%!") || strings.Contains(msg, "[]string") {
				t.Errorf("the message shows internals: %q", msg)
			}
			if after := ts.admin("GET", path, "").Body; after != before {
				t.Errorf("a refused request changed the program:\nbefore %s\nafter  %s", before, after)
			}
			if n := ts.count(`SELECT count(*) FROM programs`); n != 1 {
				t.Errorf("%d programs after a refused request, want 1", n)
			}
		})
	}
}
