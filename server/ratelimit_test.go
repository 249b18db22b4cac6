package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/potrack/potrack/internal/testenv"
	"github.com/valyala/fasthttp"
)

func TestClientIP(t *testing.T) {
	proxies, err := parseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.1", " 2001:db8:ffff::/48 "})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{limits: &rateLimits{proxies: proxies}}
	app := fiber.New()
	for _, tc := range []struct {
		name string
		peer string
		xff  []string // X-Forwarded-For header lines
		want string
	}{
		{"direct client", "198.51.100.1", nil, "198.51.100.1"},
		{"direct client inventing a hop", "198.51.100.1", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted proxy without header", "10.0.0.1", nil, "10.0.0.1"},
		{"one proxy", "10.0.0.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed leftmost entries", "10.0.0.1", []string{"6.6.6.6, 7.7.7.7, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", "192.0.2.1", []string{"6.6.6.6, 203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"hops split over header lines", "10.0.0.1", []string{"6.6.6.6", "203.0.113.9, 10.3.3.3"}, "203.0.113.9"},
		{"hop with a port", "10.0.0.1", []string{"203.0.113.9:51234"}, "203.0.113.9"},
		{"IPv6 hop with a port", "10.0.0.1", []string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{"garbage left of trusted hops", "10.0.0.1", []string{"not-an-ip, 10.1.1.1"}, "10.1.1.1"},
		{"garbage as the only hop", "10.0.0.1", []string{"unknown"}, "10.0.0.1"},
		{"every hop trusted", "10.0.0.1", []string{"10.2.2.2, 10.1.1.1"}, "10.2.2.2"},
		{"IPv6 proxy", "2001:db8:ffff::1", []string{"2001:db8:1::5"}, "2001:db8:1::5"},
		{"untrusted IPv6 peer", "2001:db8:1::5", []string{"203.0.113.9"}, "2001:db8:1::5"},
		{"IPv4-mapped peer", "::ffff:10.0.0.1", []string{"203.0.113.9"}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fctx fasthttp.RequestCtx
			var req fasthttp.Request
			for _, h := range tc.xff {
				req.Header.Add("X-Forwarded-For", h)
			}
			fctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tc.peer), Port: 40000}, nil)
			c := app.AcquireCtx(&fctx)
			defer app.ReleaseCtx(c)
			if got := s.clientIP(c); got.String() != tc.want {
				t.Errorf("clientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIPLimitKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"203.0.113.9", "ip:203.0.113.9"},
		{"::ffff:203.0.113.9", "ip:203.0.113.9"},
		// One IPv6 user holds a /64: every address in it shares a budget.
		{"2001:db8:1:2:aaaa::1", "ip:2001:db8:1:2::"},
		{"2001:db8:1:2:bbbb::9", "ip:2001:db8:1:2::"},
		{"2001:db8:1:3::1", "ip:2001:db8:1:3::"},
	} {
		if got := ipLimitKey(canonicalIP(net.ParseIP(tc.ip))); got != tc.want {
			t.Errorf("ipLimitKey(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		entries []string
		ok      bool
		inside  string
		outside string
	}{
		{[]string{"10.0.0.0/8"}, true, "10.200.1.1", "11.0.0.1"},
		{[]string{"192.0.2.1"}, true, "192.0.2.1", "192.0.2.2"},
		{[]string{"::1"}, true, "::1", "::2"},
		{[]string{"", " "}, true, "", "127.0.0.1"},
		{[]string{"10.0.0.0/33"}, false, "", ""},
		{[]string{"proxy.internal"}, false, "", ""},
		{[]string{"10.0.0.1", "bad"}, false, "", ""},
	} {
		p, err := parseTrustedProxies(tc.entries)
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v, want ok=%v", tc.entries, err, tc.ok)
			continue
		}
		if tc.inside != "" && !p.contains(canonicalIP(net.ParseIP(tc.inside))) {
			t.Errorf("%v does not contain %s", tc.entries, tc.inside)
		}
		if tc.outside != "" && p.contains(canonicalIP(net.ParseIP(tc.outside))) {
			t.Errorf("%v contains %s", tc.entries, tc.outside)
		}
	}
}

// TestRedisSharesLimits: with --redis, instances share one budget per
// client IP and one per admin guesser: two servers allow 4 calls a minute
// from one IP between them, not 8.
func TestRedisSharesLimits(t *testing.T) {
	url, prefix := testenv.Redis(t)
	shared := func(c *Config) { c.Redis, c.RedisPrefix, c.RateLimitIP = url, prefix, "4-M" }
	a, b := newTestServer(t, shared), newTestServer(t, shared)
	body := collectBody("nope", "clicks.create", "alice", "")
	for i, ts := range []*testServer{a, b, a, b} {
		r := ts.request("POST", "/collect", body, "Origin", shopOrigin)
		if r.Status != 404 || r.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(3-i) {
			t.Fatalf("call %d: %d, remaining %q: %s", i+1, r.Status, r.Header.Get("X-RateLimit-Remaining"), r.Body)
		}
	}
	r := a.request("POST", "/collect", body, "Origin", shopOrigin)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("fifth call from one IP across two instances: %d %s", r.Status, r.Body)
	}
	// Wrong admin tokens count on both as well.
	for i := range 10 {
		ts := []*testServer{a, b}[i%2]
		if r := ts.request("GET", "/admin/api/programs", "", "Authorization", "Bearer wrong-token-guess"); r.Status != 401 {
			t.Fatalf("guess %d: %d", i+1, r.Status)
		}
	}
	if r := b.request("GET", "/admin/api/programs", "", "Authorization", "Bearer wrong-token-guess"); r.Status != 429 {
		t.Fatalf("eleventh wrong token across two instances: %d", r.Status)
	}
	if h := healthz(t, a); h.Status != 200 || !strings.Contains(h.Body, `"status":"ok"`) {
		t.Fatalf("healthz with Redis answering: %d %s", h.Status, h.Body)
	}
}

// TestRedisDownFailsOpen: when Redis cannot be reached, /collect records
// sales without rate limits, counts every unchecked call, and /healthz says
// so while staying 200 (a balancer must not drop every instance).
func TestRedisDownFailsOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "redis://" + ln.Addr().String() + "/0"
	ln.Close() // nothing listens there now
	f := newCollectFixture(t, func(c *Config) { c.Redis, c.RateLimitIP = dead, "1-M" })
	for i := range 3 { // past the 1-a-minute budget, had it been checked
		body := collectBody(f.shop.ID, "transactions.create", "alice",
			fmt.Sprintf(`{"key":"down_%d","amount":"5.00","customer":{"key":"c_down_%d"},"options":{"create_customer":true}}`, i, i))
		r := f.ts.request("POST", "/collect", body, "Origin", shopOrigin)
		if r.Status != 201 || r.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("sale %d with Redis down: %d, limit header %q: %s", i, r.Status, r.Header.Get("X-RateLimit-Limit"), r.Body)
		}
	}
	if n := f.ts.count(`SELECT count(*) FROM transactions WHERE key LIKE 'down_%'`); n != 3 {
		t.Fatalf("%d sales stored with Redis down, want 3", n)
	}
	m := f.ts.request("GET", "/metrics", "")
	if !strings.Contains(m.Body, `potrack_ratelimit_unchecked_total{limit="ip"} 3`) ||
		!strings.Contains(m.Body, `potrack_ratelimit_unchecked_total{limit="program"} 3`) {
		t.Fatalf("unchecked calls not counted:\n%s", grepLines(m.Body, "potrack_ratelimit"))
	}
	h := healthz(t, f.ts)
	if h.Status != 200 || !strings.Contains(h.Body, `"status":"degraded"`) || !strings.Contains(h.Body, "without rate limits") ||
		strings.Contains(h.Body, "127.0.0.1") || strings.Contains(h.Body, "dial") {
		t.Fatalf("healthz with Redis down: %d %s", h.Status, h.Body)
	}
}

func healthz(t *testing.T, ts *testServer) *response {
	t.Helper()
	return ts.request("GET", "/healthz", "")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// silentRedis accepts connections and never answers: a hung Redis. It
// counts the connections it accepted.
func silentRedis(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var accepted atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "redis://" + ln.Addr().String() + "/0", &accepted
}

// TestHungRedisDelaysOneCall: when Redis accepts connections but never
// answers from the start, calls go through unchecked, and of many arriving
// at once after the back-off only one asks Redis (to load the limiter's
// scripts) and waits for it: the others do not queue behind it. Counted
// in connections to the hung Redis, not in time.
func TestHungRedisDelaysOneCall(t *testing.T) {
	url, accepted := silentRedis(t)
	limits, err := newRateLimits(Config{RateLimitIP: "120-M", RateLimitProgram: "60000-M", Redis: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer limits.close()
	atStart := accepted.Load() // the start's ping
	time.Sleep(redisBackoff + 100*time.Millisecond)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, checked := limits.perIP.take(context.Background(), "ip:198.51.100.1"); checked {
				t.Error("a call was checked against a Redis that never answers")
			}
		}()
	}
	wg.Wait()
	if n := accepted.Load() - atStart; n > 1 {
		t.Fatalf("%d calls opened a connection to the hung Redis, want one asking it", n)
	}
	if !limits.shared.down.Load() {
		t.Fatal("the hung Redis is not marked down after its call timed out")
	}
}

// TestRedisBackAfterFailure: limits are checked again within about a
// second of Redis answering again, and /healthz says "degraded" while it
// is down even with no traffic.
func TestRedisBackAfterFailure(t *testing.T) {
	realURL, prefix := testenv.Redis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down: nothing listens here yet
	ts := newTestServer(t, func(c *Config) { c.Redis, c.RedisPrefix, c.RateLimitIP = "redis://"+addr+"/0", prefix, "100-M" })
	if h := healthz(t, ts); h.Status != 200 || !strings.Contains(h.Body, `"degraded"`) {
		t.Fatalf("healthz with Redis down and no traffic: %d %s", h.Status, h.Body)
	}
	body := collectBody("nope", "clicks.create", "alice", "")
	if r := ts.request("POST", "/collect", body); r.Header.Get("X-RateLimit-Limit") != "" {
		t.Fatalf("a call was checked while Redis was down: %v", r.Header)
	}
	// Redis comes back at that address: a relay to the real one.
	proxy, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port was taken meanwhile: %v", err)
	}
	defer proxy.Close()
	relayRedis(proxy, realURL, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := ts.request("POST", "/collect", body)
		if r.Header.Get("X-RateLimit-Limit") == "100" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("limits not checked again 5 s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := healthz(t, ts); h.Status != 200 || !strings.Contains(h.Body, `"status":"ok"`) {
		t.Fatalf("healthz with Redis back: %d %s", h.Status, h.Body)
	}
}

// TestRedisURLNeverEchoesAPassword: a malformed --redis is refused at
// start without repeating its password.
func TestRedisURLNeverEchoesAPassword(t *testing.T) {
	_, err := newRateLimits(Config{RateLimitIP: "120-M", RateLimitProgram: "60000-M", Redis: "redis://:s3cretpass@127.0.0.1:6379/x"}, nil)
	if err == nil || strings.Contains(err.Error(), "s3cretpass") || !strings.Contains(err.Error(), "--redis") {
		t.Fatalf("err = %v", err)
	}
}

// TestRedisThatHangsIsAskedOnce: Redis answers, then hangs. The call that
// meets the hang goes through unchecked; after the back-off, of many calls
// at once only one sends Redis a command, the others go through unchecked
// without waiting. Counted in commands the hung Redis received.
func TestRedisThatHangsIsAskedOnce(t *testing.T) {
	realURL, prefix := testenv.Redis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var hung atomic.Bool
	swallowed := relayRedis(ln, realURL, &hung)
	limits, err := newRateLimits(Config{RateLimitIP: "120-M", RateLimitProgram: "60000-M",
		Redis: "redis://" + ln.Addr().String() + "/0", RedisPrefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer limits.close()
	ctx := context.Background()
	if _, checked := limits.perIP.take(ctx, "ip:198.51.100.2"); !checked {
		t.Fatal("a call was not checked while Redis answered")
	}
	hung.Store(true)
	if _, checked := limits.perIP.take(ctx, "ip:198.51.100.2"); checked {
		t.Fatal("a call was checked against a hung Redis")
	}
	time.Sleep(redisBackoff + 100*time.Millisecond)
	before := swallowed.Load()
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limits.perIP.take(ctx, "ip:198.51.100.2")
		}()
	}
	wg.Wait()
	if n := swallowed.Load() - before; n > 1 {
		t.Fatalf("%d commands reached the hung Redis from 32 calls after the back-off, want the one probe", n)
	}
}

// relayRedis relays the connections ln accepts to the Redis at redisURL.
// While hung (when not nil) is set, what clients send is neither forwarded
// nor answered, and counted in the result: a Redis that hangs.
func relayRedis(ln net.Listener, redisURL string, hung *atomic.Bool) (swallowed *atomic.Int32) {
	target := strings.TrimSuffix(strings.TrimPrefix(redisURL, "redis://"), "/0")
	swallowed = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer r.Close()
				go io.Copy(c, r)
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if hung != nil && hung.Load() {
						swallowed.Add(1) // never forwarded, never answered
						continue
					}
					if _, err := r.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return swallowed
}
