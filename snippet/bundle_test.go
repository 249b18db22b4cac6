package snippet

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

func TestBuildReadsOnlyTheFS(t *testing.T) {
	src := fstest.MapFS{
		"po.ts":  {Data: []byte(`import { two } from './lib'; (window as any).x = two() + 1`)},
		"lib.ts": {Data: []byte(`export const two = (): number => 2`)},
	}
	s, err := Build(src)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	a := s[""]
	if !bytes.Contains(a.Raw, []byte("2")) || bytes.Contains(a.Raw, []byte("number")) {
		t.Errorf("unexpected bundle %q", a.Raw)
	}
}

func TestBuildErrors(t *testing.T) {
	for name, src := range map[string]fstest.MapFS{
		"syntax":         {"po.ts": {Data: []byte(`const = ;`)}},
		"missing import": {"po.ts": {Data: []byte(`import { x } from './nope'; x()`)}},
		"bare import":    {"po.ts": {Data: []byte(`import { x } from 'left-pad'; x()`)}},
		"no entry":       {},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Build(src)
			if err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			if !strings.Contains(err.Error(), "po.ts") {
				t.Errorf("error %q does not name the file", err)
			}
			t.Log(err)
		})
	}
}

func TestAssetForms(t *testing.T) {
	a := buildForTest(t)
	if got := gunzip(t, a.Gzip); !bytes.Equal(got, a.Raw) {
		t.Error("gzip form does not decompress to Raw")
	}
	if got := unbrotli(t, a.Brotli); !bytes.Equal(got, a.Raw) {
		t.Error("brotli form does not decompress to Raw")
	}
	if len(a.ETag) < 10 || a.ETag[0] != '"' || a.ETag[len(a.ETag)-1] != '"' {
		t.Errorf("ETag %q is not a quoted tag", a.ETag)
	}
	b := buildForTest(t)
	if a.ETag != b.ETag {
		t.Errorf("two builds of the same sources have ETags %s and %s", a.ETag, b.ETag)
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func unbrotli(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(brotli.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHandler(t *testing.T) {
	a := buildForTest(t)
	app := fiber.New()
	app.Get("/js/universal.js", a.Handler())

	tests := []struct {
		name     string
		method   string
		headers  map[string]string
		status   int
		encoding string // Content-Encoding; "" is identity
	}{
		{name: "plain", status: 200},
		{name: "gzip", headers: map[string]string{"Accept-Encoding": "gzip, deflate"}, status: 200, encoding: "gzip"},
		{name: "br preferred", headers: map[string]string{"Accept-Encoding": "gzip, deflate, br, zstd"}, status: 200, encoding: "br"},
		{name: "br refused", headers: map[string]string{"Accept-Encoding": "gzip, br;q=0"}, status: 200, encoding: "gzip"},
		{name: "gzip refused", headers: map[string]string{"Accept-Encoding": "gzip;q=0, deflate"}, status: 200},
		{name: "star", headers: map[string]string{"Accept-Encoding": "*"}, status: 200, encoding: "br"},
		{name: "star but not br", headers: map[string]string{"Accept-Encoding": "br;q=0.0, *;q=0.5"}, status: 200, encoding: "gzip"},
		{name: "q with spaces", headers: map[string]string{"Accept-Encoding": "GZIP ; q=0.8"}, status: 200, encoding: "gzip"},
		{name: "identity only", headers: map[string]string{"Accept-Encoding": "identity"}, status: 200},
		{name: "etag matches", headers: map[string]string{"If-None-Match": a.ETag}, status: 304},
		{name: "weak etag in list", headers: map[string]string{"If-None-Match": `"nope", W/` + a.ETag, "Accept-Encoding": "br"}, status: 304},
		{name: "etag star", headers: map[string]string{"If-None-Match": "*"}, status: 304},
		{name: "etag differs", headers: map[string]string{"If-None-Match": `"0123456789abcdef"`}, status: 200},
		{name: "head", method: "HEAD", headers: map[string]string{"Accept-Encoding": "gzip"}, status: 200, encoding: "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, "/js/universal.js?v8k2j", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			for k, want := range map[string]string{
				"ETag":                        a.ETag,
				"Cache-Control":               "public, max-age=3600",
				"Vary":                        "Accept-Encoding",
				"Access-Control-Allow-Origin": "*",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if tc.status == 304 {
				if len(body) != 0 {
					t.Errorf("304 with a %d-byte body", len(body))
				}
				return
			}
			if got := resp.Header.Get("Content-Type"); got != "application/javascript; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			if got := resp.Header.Get("Content-Encoding"); got != tc.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tc.encoding)
			}
			if method == "HEAD" {
				if len(body) != 0 {
					t.Errorf("HEAD with a %d-byte body", len(body))
				}
				return
			}
			switch tc.encoding {
			case "gzip":
				body = gunzip(t, body)
			case "br":
				body = unbrotli(t, body)
			}
			if !bytes.Equal(body, a.Raw) {
				t.Errorf("body (%d bytes decoded) differs from Raw (%d bytes)", len(body), len(a.Raw))
			}
		})
	}
}

func TestLoader(t *testing.T) {
	hostile := `</script><script>alert(1)</script>`
	got := Loader("https://track.example/js/universal.js?x=1&y=</script>", hostile, Settings{})
	if !strings.HasPrefix(got, "<script>") || !strings.HasSuffix(got, "</script>") {
		t.Fatalf("not one script element: %s", got)
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(got, "<script>"), "</script>")
	for _, bad := range []string{"</script", "<script", "<!--", "alert(1)</"} {
		if strings.Contains(strings.ToLower(inner), bad) {
			t.Errorf("loader body contains %q: %s", bad, got)
		}
	}
	for _, want := range []string{
		`"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"`,
		`"https://track.example/js/universal.js?x=1\u0026y=\u003c/script\u003e"`,
		"__partnerObject",
		"po('program',",
		",'load')",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("loader lacks %s:\n%s", want, got)
		}
	}
	t.Logf("loader (%d bytes): %s", len(got), got)
}

// TestVariants: each ext value is served its own build, with its own ETag;
// names are canonicalised (order, case, spaces) and unknown ones ignored,
// so a script URL with a typo still loads the closest variant.
func TestVariants(t *testing.T) {
	s := buildAllForTest(t)
	app := fiber.New()
	app.Get("/js/universal.js", s.Handler())

	// What each extension's code is recognised by.
	marks := map[string][]string{
		"xd":     {"po_ref", "link_domains"},
		"spa":    {"pushState", "popstate"},
		"stripe": {"client-reference-id", "MutationObserver"},
	}
	if len(s) != 1<<len(Variants) {
		t.Fatalf("%d variants built", len(s))
	}
	etags := map[string]string{}
	for ext, a := range s {
		if Variant(ext) != ext {
			t.Errorf("variant key %q is not canonical (%q)", ext, Variant(ext))
		}
		for v, ws := range marks {
			want := slices.Contains(strings.Split(ext, ","), v)
			for _, w := range ws {
				if got := bytes.Contains(a.Raw, []byte(w)); got != want {
					t.Errorf("variant %q contains %q: %v, want %v", ext, w, got, want)
				}
			}
		}
		if other, dup := etags[a.ETag]; dup {
			t.Errorf("variants %q and %q share the ETag %s", ext, other, a.ETag)
		}
		etags[a.ETag] = ext
	}

	for _, tc := range []struct{ query, want string }{
		{"", ""},
		{"?v8k2j", ""},
		{"?ext=xd", "xd"},
		{"?ext=spa", "spa"},
		{"?ext=xd,spa", "xd,spa"},
		{"?ext=spa,xd", "xd,spa"},
		{"?ext=SPA,%20xd", "xd,spa"},
		{"?ext=xd,xd", "xd"},
		{"?ext=nope,spa", "spa"},
		{"?ext=nope", ""},
		{"?ext=xd&v8k2j", "xd"},
		{"?ext=stripe", "stripe"},
		{"?ext=stripe,spa,xd", "xd,spa,stripe"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := app.Test(httptest.NewRequest("GET", "/js/universal.js"+tc.query, nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			want := s[tc.want]
			if resp.StatusCode != 200 || !bytes.Equal(body, want.Raw) || resp.Header.Get("ETag") != want.ETag {
				t.Errorf("status %d, ETag %s, %d bytes: want variant %q (ETag %s, %d bytes)",
					resp.StatusCode, resp.Header.Get("ETag"), len(body), tc.want, want.ETag, len(want.Raw))
			}
		})
	}
}

// TestLoaderSettings: the snippet carries exactly the settings that differ
// from the defaults, before the program's load call, and loads the variant
// they need.
func TestLoaderSettings(t *testing.T) {
	const url = "https://track.example/js/universal.js"
	for _, tc := range []struct {
		name      string
		s         Settings
		want, not []string
	}{
		{name: "defaults", s: Settings{ReferralParams: []string{"aff"}},
			want: []string{`o.src=s;d.head.appendChild(o)`, `"` + url + `"`},
			not:  []string{"consent", "settings", "doNotTrack", "ext="}},
		{name: "consent first", s: Settings{RequireConsent: true, ReferralParams: []string{"ref"}},
			want: []string{"\npo('consent',false);\npo('settings','referral_params',[\"ref\"]);\npo('program',"}},
		{name: "cookie domain", s: Settings{CookieDomain: "shop.example"},
			want: []string{`po('settings','cookie_domain',"shop.example");`}, not: []string{"ext="}},
		{name: "link domains: xd", s: Settings{LinkDomains: []string{"checkout.example", "app.example"}},
			want: []string{`po('settings','link_domains',["checkout.example","app.example"]);`, `"` + url + `?ext=xd"`}},
		{name: "spa", s: Settings{SPA: true}, want: []string{`"` + url + `?ext=spa"`}, not: []string{"settings"}},
		{name: "both", s: Settings{SPA: true, LinkDomains: []string{"x.example"}}, want: []string{`"` + url + `?ext=xd,spa"`}},
		{name: "stripe", s: Settings{StripeCheckout: true}, want: []string{`"` + url + `?ext=stripe"`}, not: []string{"settings"}},
		{name: "dnt", s: Settings{RespectDNT: true},
			want: []string{`if(!(navigator.doNotTrack=='1'||navigator.globalPrivacyControl))d.head.appendChild(o)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Loader(url, "prog1", tc.s)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("loader lacks %s:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("loader has %s:\n%s", n, got)
				}
			}
			if !strings.HasSuffix(got, "po('program',\"prog1\",'load');</script>") {
				t.Errorf("the load call is not last:\n%s", got)
			}
		})
	}
	if got := Loader(url+"?v=1", "p", Settings{SPA: true}); !strings.Contains(got, `?v=1\u0026ext=spa"`) {
		t.Errorf("ext not appended to a URL with a query: %s", got)
	}
}
