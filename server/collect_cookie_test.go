package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// A click's answer sets the referral cookie itself (Set-Cookie) when
// potrack is reached on the page's own origin, through the shop's reverse
// proxy: Safari keeps such a cookie for cookie_days, one written by script
// for 7 days at most. These tests read the Set-Cookie headers as a browser
// would (net/http's parser) and check each attribute.

// oddKey needs escaping: a space, '+', '/' and a letter outside ASCII.
const oddKey = "a b+/é"

// cookieFixture is a server with one program per cookie setting, each
// with the partners alice and oddKey.
type cookieFixture struct {
	ts                                *testServer
	last, first, long, capped, domain testProgram
}

func newCookieFixture(t *testing.T, mutate ...func(*Config)) *cookieFixture {
	ts := newTestServer(t, append([]func(*Config){noLimits}, mutate...)...)
	const origins = `"allowed_origins":["https://shop.example","https://*.shop.example","http://shop.example:8080","https://other.example","https://myshop.example"]`
	f := &cookieFixture{ts: ts,
		last:   ts.createProgram(`{"name":"Last","cookie_days":45,` + origins + `}`),
		first:  ts.createProgram(`{"name":"First","cookie_days":30,"attribution":"first",` + origins + `}`),
		long:   ts.createProgram(`{"name":"Long","cookie_days":400,` + origins + `}`),
		capped: ts.createProgram(`{"name":"Capped","cookie_days":400,` + origins + `}`),
		domain: ts.createProgram(`{"name":"Domain","cookie_days":10,` + origins + `}`),
	}
	// Behind the API's back, before any /collect call reads (and caches)
	// the programs: a lifetime past the cap, as a row written before the
	// cap could hold, and a cookie_domain.
	ts.exec(`UPDATE programs SET cookie_days = 1000 WHERE id = ?`, f.capped.ID)
	ts.exec(`UPDATE programs SET cookie_domain = 'shop.example' WHERE id = ?`, f.domain.ID)
	for _, p := range []testProgram{f.last, f.first, f.long, f.capped, f.domain} {
		for _, key := range []string{"alice", oddKey} {
			b, _ := json.Marshal(map[string]string{"key": key})
			if r := ts.api(p, "POST", "/v1/partners", string(b)); r.Status != 201 {
				t.Fatalf("partner %q: %d %s", key, r.Status, r.Body)
			}
		}
	}
	return f
}

// wantCookie is one Set-Cookie header, attribute by attribute. maxAge is
// net/http's: -1 for Max-Age=0.
type wantCookie struct {
	value  string // as sent, escaped
	maxAge int
	domain string
	secure bool
}

// cookieScenario is one click and what its answer must set.
type cookieScenario struct {
	name      string
	program   testProgram
	body      string
	host      string   // the Host header; "" for potrack's own, track.example
	headers   []string // Origin, X-Forwarded-*, …
	status    int
	cookies   []wantCookie // in order; none: no Set-Cookie at all
	clicks    int          // the program's click rows afterwards
	cookieSet bool         // the answer's cookie_set
	keeps     bool         // first attribution keeps the body's cookie
}

// checkCookieAnswer checks the status, the answer, the Set-Cookie headers
// and the stored clicks of one scenario.
func checkCookieAnswer(t *testing.T, ts *testServer, sc cookieScenario, resp *http.Response) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != sc.status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, sc.status, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if v, present := got["cookie_set"]; present != sc.cookieSet || (present && v != true) {
		t.Errorf("cookie_set %v (present %v), want present %v: %s", v, present, sc.cookieSet, body)
	}
	if sc.status == 201 {
		// The rest of a click's answer is what it always was.
		for _, k := range []string{"status", "partner", "cookie_days", "attribution"} {
			if _, ok := got[k]; !ok {
				t.Errorf("answer lacks %s: %s", k, body)
			}
		}
		// cookie is what the script writes: nothing when this answer
		// set the cookie, or when first attribution keeps the one the
		// call carried.
		want := got["partner"]
		if sc.cookieSet || sc.keeps {
			want = nil
		}
		if got["cookie"] != want {
			t.Errorf("cookie %v, want %v: %s", got["cookie"], want, body)
		}
		n := 4
		if sc.cookieSet || want != nil {
			n++
		}
		if len(got) != n {
			t.Errorf("answer has other fields: %s", body)
		}
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("Vary %q lacks Origin", resp.Header.Get("Vary"))
	}
	raw := resp.Header.Values("Set-Cookie")
	if len(raw) != len(sc.cookies) {
		t.Fatalf("Set-Cookie %q, want %d of them", raw, len(sc.cookies))
	}
	for i, w := range sc.cookies {
		ck, err := http.ParseSetCookie(raw[i])
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", raw[i], err)
		}
		if ck.Name != "partnero_partner" || ck.Value != w.value || ck.MaxAge != w.maxAge || ck.Path != "/" ||
			ck.SameSite != http.SameSiteLaxMode || ck.Domain != w.domain || ck.Secure != w.secure || ck.HttpOnly {
			t.Errorf("Set-Cookie %q: got name %q value %q max-age %d path %q samesite %v domain %q secure %v httponly %v; want value %q max-age %d domain %q secure %v",
				raw[i], ck.Name, ck.Value, ck.MaxAge, ck.Path, ck.SameSite, ck.Domain, ck.Secure, ck.HttpOnly,
				w.value, w.maxAge, w.domain, w.secure)
		}
	}
	if n := ts.count(`SELECT COUNT(*) FROM clicks WHERE program_id = ?`, sc.program.ID); n != sc.clicks {
		t.Errorf("%d clicks stored for the program, want %d", n, sc.clicks)
	}
}

// runAppTest posts each scenario through app.Test, whose peer is 0.0.0.0.
func (f *cookieFixture) runAppTest(t *testing.T, rows []cookieScenario) {
	t.Helper()
	for _, sc := range rows {
		t.Run(sc.name, func(t *testing.T) {
			f.ts.t = t
			req := httptest.NewRequest("POST", "/collect", strings.NewReader(sc.body))
			req.Host = "track.example"
			if sc.host != "" {
				req.Host = sc.host
			}
			req.Header.Set("Content-Type", "text/plain")
			for i := 0; i+1 < len(sc.headers); i += 2 {
				req.Header.Add(sc.headers[i], sc.headers[i+1])
			}
			resp, err := f.ts.app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			checkCookieAnswer(t, f.ts, sc, resp)
		})
	}
	f.ts.t = t
}

func landing(key string) string { return "https://shop.example/?aff=" + url.QueryEscape(key) }

// viaProxy are the headers of a same-origin call forwarded by the shop's
// proxy for https://<host>.
func viaProxy(host string, more ...string) []string {
	return append([]string{"Origin", "https://" + host, "X-Forwarded-Host", host, "X-Forwarded-Proto", "https"}, more...)
}

// TestCollectClickCookie: the cases of a same-origin click, with app.Test's
// peer (0.0.0.0) standing for the shop's trusted reverse proxy.
func TestCollectClickCookie(t *testing.T) {
	f := newCookieFixture(t, func(cfg *Config) { cfg.TrustedProxies = []string{"0.0.0.0"} })
	day := 86400
	long := wantCookie{value: "alice", maxAge: 400 * day, secure: true}
	f.runAppTest(t, []cookieScenario{
		{name: "same origin https through the proxy", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			headers: viaProxy("shop.example"), status: 201, cookieSet: true, clicks: 1,
			cookies: []wantCookie{{value: "alice", maxAge: 45 * day, secure: true}}},
		{name: "same origin by the Host header, http on a port: not Secure", program: f.last,
			body: clickBody(f.last.ID, "http://shop.example:8080/?aff=alice", "", ""),
			host: "shop.example:8080", headers: []string{"Origin", "http://shop.example:8080"}, status: 201, cookieSet: true, clicks: 2,
			cookies: []wantCookie{{value: "alice", maxAge: 45 * day}}},
		{name: "host upper case, default port written out", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			headers: []string{"Origin", "https://shop.example", "X-Forwarded-Host", "SHOP.example:443", "X-Forwarded-Proto", "HTTPS"},
			status:  201, cookieSet: true, clicks: 3,
			cookies: []wantCookie{{value: "alice", maxAge: 45 * day, secure: true}}},
		{name: "cross origin: potrack on its own host", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			headers: []string{"Origin", "https://shop.example", "X-Forwarded-Proto", "https"}, status: 201, clicks: 4},
		{name: "cross origin: the same host over http", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			host: "shop.example", headers: []string{"Origin", "https://shop.example"}, status: 201, clicks: 5},
		{name: "cross origin: another port", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			headers: []string{"Origin", "https://shop.example", "X-Forwarded-Host", "shop.example:8443", "X-Forwarded-Proto", "https"},
			status:  201, clicks: 6},
		{name: "no Origin, the Referer's only", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			headers: []string{"Referer", "https://shop.example/", "X-Forwarded-Host", "shop.example", "X-Forwarded-Proto", "https"},
			status:  201, clicks: 7},
		{name: "X-Forwarded-Host a list", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			headers: []string{"Origin", "https://shop.example", "X-Forwarded-Host", "shop.example, proxy.internal", "X-Forwarded-Proto", "https"},
			status:  201, clicks: 8},
		{name: "X-Forwarded-Host twice", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			headers: viaProxy("shop.example", "X-Forwarded-Host", "shop.example"), status: 201, clicks: 9},
		{name: "unknown partner: 202, nothing", program: f.last, body: clickBody(f.last.ID, landing("nobody"), "", ""),
			headers: viaProxy("shop.example"), status: 202, clicks: 9},
		{name: "a key that needs escaping", program: f.last, body: clickBody(f.last.ID, landing(oddKey), "", ""),
			headers: viaProxy("shop.example"), status: 201, cookieSet: true, clicks: 10,
			cookies: []wantCookie{{value: "a%20b%2B%2F%C3%A9", maxAge: 45 * day, secure: true}}},

		{name: "first attribution, the browser has a cookie: kept", program: f.first, body: clickBody(f.first.ID, landing("alice"), "", oddKey),
			headers: viaProxy("shop.example"), status: 201, clicks: 1, keeps: true},
		{name: "first attribution, no cookie yet: set", program: f.first, body: clickBody(f.first.ID, landing("alice"), "", ""),
			headers: viaProxy("shop.example"), status: 201, cookieSet: true, clicks: 2,
			cookies: []wantCookie{{value: "alice", maxAge: 30 * day, secure: true}}},
		{name: "last attribution, the browser has a cookie: replaced", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", oddKey),
			headers: viaProxy("shop.example"), status: 201, cookieSet: true, clicks: 11,
			cookies: []wantCookie{{value: "alice", maxAge: 45 * day, secure: true}}},

		{name: "cookie_days 400", program: f.long, body: clickBody(f.long.ID, landing("alice"), "", ""),
			headers: viaProxy("shop.example"), status: 201, cookieSet: true, clicks: 1, cookies: []wantCookie{long}},
		{name: "cookie_days stored past 400: capped", program: f.capped, body: clickBody(f.capped.ID, landing("alice"), "", ""),
			headers: viaProxy("shop.example"), status: 201, cookieSet: true, clicks: 1, cookies: []wantCookie{long}},

		{name: "cookie_domain of a subdomain's page: Domain, and the host-only cookie expired", program: f.domain,
			body:    clickBody(f.domain.ID, "https://eu.shop.example/?aff=alice", "", ""),
			headers: viaProxy("eu.shop.example"), status: 201, cookieSet: true, clicks: 1,
			cookies: []wantCookie{{value: "", maxAge: -1, secure: true}, {value: "alice", maxAge: 10 * day, domain: "shop.example", secure: true}}},
		{name: "cookie_domain the page's host itself", program: f.domain, body: clickBody(f.domain.ID, landing(oddKey), "", ""),
			headers: viaProxy("shop.example"), status: 201, cookieSet: true, clicks: 2,
			cookies: []wantCookie{{value: "", maxAge: -1, secure: true}, {value: "a%20b%2B%2F%C3%A9", maxAge: 10 * day, domain: "shop.example", secure: true}}},
		{name: "cookie_domain not covering the page: host-only", program: f.domain,
			body:    clickBody(f.domain.ID, "https://other.example/?aff=alice", "", ""),
			headers: viaProxy("other.example"), status: 201, cookieSet: true, clicks: 3,
			cookies: []wantCookie{{value: "alice", maxAge: 10 * day, secure: true}}},
		{name: "cookie_domain as the end of another name: host-only", program: f.domain,
			body:    clickBody(f.domain.ID, "https://myshop.example/?aff=alice", "", ""),
			headers: viaProxy("myshop.example"), status: 201, cookieSet: true, clicks: 4,
			cookies: []wantCookie{{value: "alice", maxAge: 10 * day, secure: true}}},
	})
}

// TestCollectClickCookieUntrustedPeer: forwarded headers from a peer that
// is not a trusted proxy are ignored, so a call cannot be made to look
// same-origin with them.
func TestCollectClickCookieUntrustedPeer(t *testing.T) {
	f := newCookieFixture(t, func(cfg *Config) { cfg.TrustedProxies = []string{"10.0.0.0/8"} })
	f.runAppTest(t, []cookieScenario{
		{name: "X-Forwarded-Host and -Proto of the page's origin", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			headers: viaProxy("shop.example"), status: 201, clicks: 1},
		{name: "X-Forwarded-Proto alone, the Host right", program: f.last, body: clickBody(f.last.ID, landing("alice"), "", ""),
			host: "shop.example", headers: []string{"Origin", "https://shop.example", "X-Forwarded-Proto", "https"}, status: 201, clicks: 2},
		// The Host is what the browser sent, proxy or not.
		{name: "the Host header of a plain http origin", program: f.last,
			body: clickBody(f.last.ID, "http://shop.example:8080/?aff=alice", "", ""),
			host: "shop.example:8080", headers: []string{"Origin", "http://shop.example:8080"}, status: 201, cookieSet: true, clicks: 3,
			cookies: []wantCookie{{value: "alice", maxAge: 45 * 86400}}},
	})
}

// TestCollectClickCookieThroughProxy: the deployment itself. A real
// listener behind a net/http/httputil reverse proxy on 127.0.0.1 that
// serves https://shop.example and forwards /potrack/* to potrack, as the
// shop's own server would (the script's api_host being
// https://shop.example/potrack).
func TestCollectClickCookieThroughProxy(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		name := "trusted proxy"
		if !trusted {
			name = "proxy not trusted"
		}
		t.Run(name, func(t *testing.T) {
			f := newCookieFixture(t, func(cfg *Config) {
				if trusted {
					cfg.TrustedProxies = []string{"127.0.0.1"}
				}
			})
			target, err := url.Parse(serve(t, f.ts, listenLoopback(t)))
			if err != nil {
				t.Fatal(err)
			}
			// TLS in front, X-Forwarded-Host and -Proto set (SetXForwarded),
			// the Host rewritten to potrack's address: what Caddy or
			// nginx with those headers send.
			proxy := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.Out.URL.Path = strings.TrimPrefix(r.In.URL.Path, "/potrack")
				r.Out.URL.RawPath = ""
				r.SetXForwarded()
			}})
			defer proxy.Close()
			post := func(t *testing.T, host, body string) *http.Response {
				req, err := http.NewRequest("POST", proxy.URL+"/potrack/collect", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Host = host // the browser's, on the shop's proxy
				req.Header.Set("Content-Type", "text/plain")
				req.Header.Set("Origin", "https://"+host)
				resp, err := proxy.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				return resp
			}
			var set []wantCookie
			var domainSet []wantCookie
			if trusted {
				set = []wantCookie{{value: "a%20b%2B%2F%C3%A9", maxAge: 45 * 86400, secure: true}}
				domainSet = []wantCookie{{value: "", maxAge: -1, secure: true}, {value: "alice", maxAge: 10 * 86400, domain: "shop.example", secure: true}}
			}
			for _, sc := range []cookieScenario{
				{name: "click", program: f.last, host: "shop.example", body: clickBody(f.last.ID, landing(oddKey), "", ""),
					status: 201, cookieSet: trusted, clicks: 1, cookies: set},
				// Trusted, both Set-Cookie headers arrive through the proxy.
				{name: "click with a cookie_domain", program: f.domain, host: "eu.shop.example",
					body:   clickBody(f.domain.ID, "https://eu.shop.example/aff/alice", "", ""),
					status: 201, cookieSet: trusted, clicks: 1, cookies: domainSet},
				{name: "unknown partner", program: f.last, host: "shop.example", body: clickBody(f.last.ID, landing("nobody"), "", ""),
					status: 202, clicks: 1},
			} {
				t.Run(sc.name, func(t *testing.T) {
					f.ts.t = t
					checkCookieAnswer(t, f.ts, sc, post(t, sc.host, sc.body))
				})
			}
		})
	}
}

// TestEncodeURIComponent: the cookie's value is escaped as the script's
// encodeURIComponent escapes it (values from a JavaScript console).
func TestEncodeURIComponent(t *testing.T) {
	for in, want := range map[string]string{
		"alice":              "alice",
		oddKey:               "a%20b%2B%2F%C3%A9",
		"-_.!~*'()":          "-_.!~*'()",
		`;,=&?#%"\`:          "%3B%2C%3D%26%3F%23%25%22%5C",
		"日本":                 "%E6%97%A5%E6%9C%AC",
		"\U0001F600 ok@x:y$": "%F0%9F%98%80%20ok%40x%3Ay%24",
	} {
		got := encodeURIComponent(in)
		if got != want {
			t.Errorf("encodeURIComponent(%q) = %q, want %q", in, got, want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != in {
			t.Errorf("%q does not decode back to %q: %q %v", got, in, back, err)
		}
	}
}
