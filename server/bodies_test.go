package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// gzipBomb is a small gzip body that inflates to size bytes of zeros.
func gzipBomb(t testing.TB, size int) string {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for n := 0; n < size; n += len(zeros) {
		w.Write(zeros)
	}
	w.Close()
	return b.String()
}

// TestEncodedBodiesRefused: no route inflates a body; any Content-Encoding
// but identity is 415 before the body is read, in the route's error shape.
func TestEncodedBodiesRefused(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram(`{"name":"Shop","js_tracking":true,"allowed_origins":["https://shop.example"]}`)
	bomb := gzipBomb(t, 64<<20) // 64 MiB of zeros in about 64 KiB
	routes := []struct {
		method, path string
		headers      []string
		rest         bool
	}{
		{"POST", "/collect", []string{"Origin", "https://shop.example"}, false},
		{"POST", "/v1/transactions", []string{"Authorization", "Bearer " + p.APIKey}, true},
		{"POST", "/webhooks/stripe/" + p.ID, []string{"Stripe-Signature", "t=1,v1=00"}, false},
		{"POST", "/webhooks/paddle/" + p.ID, []string{"Paddle-Signature", "ts=1;h1=00"}, false},
		{"POST", "/admin/api/programs", []string{"Authorization", "Bearer " + testAdminToken}, false},
		{"PATCH", "/admin/api/programs/" + p.ID, []string{"Authorization", "Bearer " + testAdminToken}, false},
		{"POST", "/admin/login", []string{"Content-Type", "application/x-www-form-urlencoded"}, false},
		{"POST", "/nowhere", nil, false},
		{"POST", "/V1/Transactions/", []string{"Authorization", "Bearer " + p.APIKey}, true},
	}
	for _, enc := range []string{"gzip", "deflate", "br", "gzip, gzip", "GZIP", "identity, gzip", "x-unknown"} {
		for _, rt := range routes {
			t.Run(enc+" "+rt.path, func(t *testing.T) {
				r := ts.request(rt.method, rt.path, bomb, append([]string{"Content-Encoding", enc}, rt.headers...)...)
				if r.Status != 415 {
					t.Fatalf("status %d, want 415: %.200s", r.Status, r.Body)
				}
				if rt.rest {
					r.expectBody(t, []string{`"status":0`, "Content-Encoding"}, nil)
				} else {
					r.expectBody(t, []string{`"code":"unsupported_encoding"`}, nil)
				}
			})
		}
	}
	t.Run("identity is no encoding", func(t *testing.T) {
		r := ts.request("POST", "/collect", `{"program":"nope","type":"clicks.create"}`, "Content-Encoding", "identity", "Origin", "https://shop.example")
		if r.Status != 404 {
			t.Fatalf("status %d, want 404 program_not_found: %s", r.Status, r.Body)
		}
	})
	if n := ts.count(`SELECT count(*) FROM transactions`) + ts.count(`SELECT count(*) FROM programs`); n != 1 {
		t.Fatalf("encoded requests changed rows: %d programs and transactions, want the 1 program", n)
	}
}

// TestBodyLimitsPerRoute: each route takes bodies up to its own limit.
func TestBodyLimitsPerRoute(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram(`{"name":"Shop"}`)
	scenarios := []struct {
		method, path string
		limit        int
		headers      []string
		want         string
	}{
		{"POST", "/collect", 16 << 10, nil, "16 KiB"},
		{"POST", "/v1/transactions", 256 << 10, []string{"Authorization", "Bearer " + p.APIKey, "Content-Type", "application/json"}, "256 KiB"},
		{"POST", "/admin/api/programs", 256 << 10, []string{"Authorization", "Bearer " + testAdminToken}, "256 KiB"},
		{"POST", "/webhooks/stripe/" + p.ID, 1 << 20, nil, "1024 KiB"},
		{"POST", "/webhooks/paddle/" + p.ID, 1 << 20, nil, "1024 KiB"},
		{"POST", "/admin/login", 64 << 10, []string{"Content-Type", "application/x-www-form-urlencoded"}, "64 KiB"},
		// Fiber routes without case and trailing slashes; so do the limits.
		{"POST", "/Collect", 16 << 10, nil, "16 KiB"},
		{"POST", "/COLLECT/", 16 << 10, nil, "16 KiB"},
		{"POST", "/collect//", 16 << 10, nil, "16 KiB"},
		{"POST", "/V1/Transactions/", 256 << 10, []string{"Authorization", "Bearer " + p.APIKey, "Content-Type", "application/json"}, "256 KiB"},
	}
	for _, sc := range scenarios {
		t.Run(sc.path, func(t *testing.T) {
			// A JSON string padded to the size: valid JSON where a route
			// reads JSON, so only the size can refuse it.
			body := func(n int) string { return `"` + strings.Repeat("a", n-2) + `"` }
			over := ts.request(sc.method, sc.path, body(sc.limit+1), sc.headers...)
			if over.Status != 413 || !strings.Contains(over.Body, sc.want) {
				t.Fatalf("limit+1 bytes: %d %.200s, want 413 naming %s", over.Status, over.Body, sc.want)
			}
			at := ts.request(sc.method, sc.path, body(sc.limit), sc.headers...)
			if at.Status == 413 {
				t.Fatalf("exactly the limit was refused: %.200s", at.Body)
			}
		})
	}
}

// TestV1BodiesAreJSON: under /v1 a body of another type is 415 with a plain
// message in the REST shape, never the multipart parser's text.
func TestV1BodiesAreJSON(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram(`{"name":"Shop"}`)
	for i, ct := range []string{"multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/xml", "garbage;;", "text/plain"} {
		path := []string{"/v1/partners", "/V1/partners", "/v1/Partners/"}[i%3]
		r := ts.request("POST", path, "--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--x--\r\n",
			"Authorization", "Bearer "+p.APIKey, "Content-Type", ct)
		if r.Status != 415 {
			t.Errorf("%s %s: status %d, want 415: %s", path, ct, r.Status, r.Body)
		}
		r.expectBody(t, []string{`"status":0`, "application/json"}, []string{"multipart", "NextPart", "EOF"})
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "application/vnd.api+json", ""} {
		r := ts.request("POST", "/v1/partners", `{"key":"p-`+strings.ReplaceAll(ct, "/", "")+`"}`, "Authorization", "Bearer "+p.APIKey, "Content-Type", ct)
		if r.Status != 201 {
			t.Errorf("%q: status %d, want 201: %s", ct, r.Status, r.Body)
		}
	}
}

// liveServer runs ts on a real loopback listener, with its connection caps,
// until the test ends.
func liveServer(t *testing.T, mutate ...func(*Config)) (*testServer, string) {
	t.Helper()
	ts := newTestServer(t, mutate...)
	ln := listenLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ts, ln.Addr().String()
}

// rawExchange writes raw bytes to addr and returns what comes back before
// the server closes the connection or wait passes.
func rawExchange(t *testing.T, addr, raw string, wait time.Duration) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	b, _ := io.ReadAll(conn)
	return string(b), time.Since(start)
}

// TestDeclaredLengthRefusedAtOnce: a Content-Length over the route's limit
// is answered 413 from the headers and the body's first bytes, without
// waiting for the rest.
func TestDeclaredLengthRefusedAtOnce(t *testing.T) {
	_, addr := liveServer(t)
	for _, path := range []string{"/collect", "/v1/transactions", "/webhooks/stripe/x"} {
		got, took := rawExchange(t, addr, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{\"program\":", 5*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 413") || took > 3*time.Second {
			t.Errorf("%s: after %v got %.120q, want 413 at once", path, took, got)
		}
	}
	// A chunked body is cut off at the limit too.
	chunk := strings.Repeat("a", 8<<10)
	var b strings.Builder
	b.WriteString("POST /collect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	b.WriteString("0\r\n\r\n")
	if got, _ := rawExchange(t, addr, b.String(), 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 413") {
		t.Errorf("chunked 32 KiB to /collect: %.120q, want 413", got)
	}
}

// TestSlowBodyDropped: a body that does not arrive within the body timeout
// is dropped.
func TestSlowBodyDropped(t *testing.T) {
	_, addr := liveServer(t, func(c *Config) { c.BodyTimeout = 300 * time.Millisecond; c.HeaderTimeout = 300 * time.Millisecond })
	got, took := rawExchange(t, addr, "POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"program\":", 5*time.Second)
	if took > 3*time.Second {
		t.Fatalf("a stalled body held the connection for %v", took)
	}
	if got != "" && !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Fatalf("a stalled body got %.200q, want 408 or a closed connection", got)
	}
	// Headers that never end are dropped by the header timeout.
	if _, took := rawExchange(t, addr, "POST /collect HTTP/1.1\r\nHost: x\r\nX-Slow: 1", 5*time.Second); took > 3*time.Second {
		t.Fatalf("stalled headers held the connection for %v", took)
	}
}

// TestMalformedHTTPEchoesNothing: requests fasthttp cannot parse get a plain
// answer that quotes none of the request and names no parser internals.
func TestMalformedHTTPEchoesNothing(t *testing.T) {
	_, addr := liveServer(t)
	const marker = "ZZMARKERZZ"
	for _, raw := range []string{
		"GET /" + marker + " HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
		"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: " + marker + "\r\n\r\n",
		"GET / HTTP/1.1\r\n" + marker + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ" + marker + "\r\n",
		marker + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat(marker, 2000) + "\r\n\r\n",
	} {
		got, _ := rawExchange(t, addr, raw, 3*time.Second)
		for _, bad := range []string{marker, "error when reading", "cannot find", "fasthttp", "buffer size", "Buffer size"} {
			if strings.Contains(got, bad) {
				t.Errorf("answer to %.60q contains %q:\n%.300s", raw, bad, got)
			}
		}
		if got != "" {
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
			if err == nil && resp.StatusCode >= 500 {
				t.Errorf("answer to %.60q is %d", raw, resp.StatusCode)
			}
		}
	}
}

var fiberBody = regexp.MustCompile(`\bc\.Body\(\)|\bc\.BodyParser\(`)

// TestNoCodeInflatesBodies: Fiber's c.Body() inflates a Content-Encoding
// without a bound; the server reads c.Request().Body() only. (guardBody
// refuses encodings first, but a handler must not depend on that alone.)
func TestNoCodeInflatesBodies(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			code, _, _ := strings.Cut(line, "//")
			// fasthttp's Request.Body() is the bytes received; Fiber's
			// Ctx.Body() (handlers call the context c) inflates.
			if fiberBody.MatchString(code) {
				t.Errorf("%s:%d calls Body() on the Fiber context: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}
