package server

import (
	"strings"
	"testing"
)

// TestFirstPage: what a newcomer sees at the server's root, and the icon.
func TestFirstPage(t *testing.T) {
	plain := newTestServer(t)
	demo := newTestServer(t, func(c *Config) { c.Demo = true })
	scenarios := []struct {
		name        string
		ts          *testServer
		path        string
		status      int
		location    string
		contentType string
		body        []string
	}{
		{name: "root goes to the admin page", ts: plain, path: "/", status: 302, location: "/admin"},
		{name: "root in the demo links the shop and the admin", ts: demo, path: "/", status: 200, contentType: "text/html",
			body: []string{`href="/demo/?aff=demo-partner"`, `href="/admin"`, "potrack is running"}},
		{name: "favicon.ico is a PNG", ts: plain, path: "/favicon.ico", status: 200, contentType: "image/png", body: []string{"\x89PNG"}},
		{name: "pages link the SVG icon", ts: plain, path: "/admin/login", status: 200, body: []string{`<link rel="icon" href="/admin/static/favicon.svg?v=`}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := sc.ts.request("GET", sc.path, "")
			if r.Status != sc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, sc.status, r.Body)
			}
			if got := r.Header.Get("Location"); got != sc.location {
				t.Errorf("Location %q, want %q", got, sc.location)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, sc.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, sc.contentType)
			}
			r.expectBody(t, sc.body, nil)
		})
	}

	t.Run("the linked icon is served", func(t *testing.T) {
		page := plain.request("GET", "/admin/login", "").Body
		i := strings.Index(page, "/admin/static/favicon.svg?v=")
		if i < 0 {
			t.Fatal("no icon link")
		}
		url := page[i : i+strings.IndexByte(page[i:], '"')]
		r := plain.request("GET", url, "")
		if r.Status != 200 || r.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(r.Body, "<svg") {
			t.Fatalf("%s: %d %q %.40q", url, r.Status, r.Header.Get("Content-Type"), r.Body)
		}
	})
}
