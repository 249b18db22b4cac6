package server

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
)

// rateLimits are the two budgets of /collect: per client IP (checked
// before anything touches the database) and per program (so one program's
// traffic cannot starve the others of the single writer); and the budget of
// wrong admin tokens per client IP.
type rateLimits struct {
	perIP      *budget
	perProgram *budget
	adminGuess *budget
	proxies    trustedProxies
	shared     *redisLimits // nil: the budgets live in this process
}

// adminGuessRate answers wrong admin tokens past ten a minute per client IP
// with 429. Since the right token must always work (SPEC.md), a guesser who
// ignores the 429s still learns which guess was right: the limit slows
// well-behaved clients and makes guessing loud (429s in the metrics), but
// what protects the admin token is its length (16 characters at least; a
// generated one carries 160 random bits).
var adminGuessRate = limiter.Rate{Period: time.Minute, Limit: 10}

// newRateLimits parses the configured rates, proxies and Redis URL, so a
// typo in a flag stops the server at start instead of failing every
// request. unchecked counts a call let through because Redis could not be
// asked (see redisLimits).
func newRateLimits(cfg Config, unchecked func(limit string)) (*rateLimits, error) {
	ipRate, err := limiter.NewRateFromFormatted(cfg.RateLimitIP)
	if err != nil {
		return nil, fmt.Errorf("rate limit per IP %q (want e.g. 120-M): %w", cfg.RateLimitIP, err)
	}
	programRate, err := limiter.NewRateFromFormatted(cfg.RateLimitProgram)
	if err != nil {
		return nil, fmt.Errorf("rate limit per program %q (want e.g. 60000-M): %w", cfg.RateLimitProgram, err)
	}
	proxies, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	r := &rateLimits{proxies: proxies}
	if cfg.Redis != "" {
		if r.shared, err = newRedisLimits(cfg.Redis, cfg.RedisPrefix, unchecked); err != nil {
			return nil, err
		}
	}
	// One store for all: the key prefixes keep them apart.
	mem := memory.NewStoreWithOptions(limiter.StoreOptions{Prefix: "collect", CleanUpInterval: time.Minute})
	b := func(name string, rate limiter.Rate) *budget {
		return &budget{name: name, rate: rate, mem: limiter.New(mem, rate), shared: r.shared}
	}
	r.perIP, r.perProgram, r.adminGuess = b("ip", ipRate), b("program", programRate), b("admin_guess", adminGuessRate)
	return r, nil
}

// close lets go of Redis, if the limits are there.
func (r *rateLimits) close() {
	if r.shared != nil {
		r.shared.close()
	}
}

// budget is one rate limit, kept in this process or in Redis.
type budget struct {
	name    string
	rate    limiter.Rate
	mem     *limiter.Limiter
	shared  *redisLimits
	inRedis atomic.Pointer[limiter.Limiter] // made once the Redis store is
}

// take counts a call against key's budget. checked is false when the
// shared budget could not be read: the call goes through unchecked (see
// redisLimits), with no budget to report.
func (b *budget) take(ctx context.Context, key string) (lc limiter.Context, checked bool) {
	if b.shared == nil {
		lc, err := b.mem.Get(ctx, key)
		return lc, err == nil // the memory store does not fail
	}
	if !b.shared.ask() {
		b.shared.failed(b.name, nil)
		return limiter.Context{}, false
	}
	lim := b.inRedis.Load()
	var err error
	if lim == nil {
		var st limiter.Store
		if st, err = b.shared.store(); err == nil {
			lim = limiter.New(st, b.rate)
			b.inRedis.Store(lim)
		}
	}
	if err == nil {
		lc, err = lim.Get(ctx, key)
	}
	if err != nil {
		b.shared.failed(b.name, err)
		return limiter.Context{}, false
	}
	b.shared.answered()
	return lc, true
}

// setLimitHeaders tells the client its budget; on the last straw it also
// says when to come back.
func setLimitHeaders(c *fiber.Ctx, lc limiter.Context) {
	c.Set("X-RateLimit-Limit", strconv.FormatInt(lc.Limit, 10))
	c.Set("X-RateLimit-Remaining", strconv.FormatInt(lc.Remaining, 10))
	c.Set("X-RateLimit-Reset", strconv.FormatInt(lc.Reset, 10))
	if lc.Reached {
		wait := lc.Reset - time.Now().Unix()
		if wait < 1 {
			wait = 1
		}
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(wait, 10))
	}
}

// trustedProxies are the reverse proxies whose X-Forwarded-For we believe.
type trustedProxies []*net.IPNet

func parseTrustedProxies(entries []string) (trustedProxies, error) {
	var out trustedProxies
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if strings.Contains(e, "/") {
			_, n, err := net.ParseCIDR(e)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not a CIDR such as 10.0.0.0/8", e)
			}
			out = append(out, n)
			continue
		}
		ip := net.ParseIP(e)
		if ip == nil {
			return nil, fmt.Errorf("trusted proxy %q is not an IP address or CIDR", e)
		}
		bits := 128
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 32
		}
		out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
	}
	return out, nil
}

func (t trustedProxies) contains(ip net.IP) bool {
	for _, n := range t {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP is the address the per-IP limit keys on: the TCP peer, unless
// the peer is a trusted proxy. Then X-Forwarded-For is read from the right,
// where each trusted proxy appended the address it saw, and the first entry
// that is not itself a trusted proxy is the client. The leftmost entries
// are whatever the client chose to send, so they are never believed.
func (s *Server) clientIP(c *fiber.Ctx) net.IP {
	return s.limits.proxies.clientIP(c.Context().RemoteIP(), c.Request().Header.PeekAll(fiber.HeaderXForwardedFor))
}

func (t trustedProxies) clientIP(peer net.IP, forwardedFor [][]byte) net.IP {
	peer = canonicalIP(peer)
	if !t.contains(peer) {
		return peer
	}
	var hops []string
	for _, h := range forwardedFor {
		hops = append(hops, strings.Split(string(h), ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		ip := parseHop(hops[i])
		if ip == nil {
			// Only a client writes garbage: the trusted hop to the right of
			// it is as close to the client as we can tell.
			break
		}
		client = ip
		if !t.contains(ip) {
			break
		}
	}
	return client
}

// parseHop reads one X-Forwarded-For entry; some proxies add a port.
func parseHop(s string) net.IP {
	s = strings.TrimSpace(s)
	if ip := net.ParseIP(s); ip != nil {
		return canonicalIP(ip)
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if ip := net.ParseIP(host); ip != nil {
			return canonicalIP(ip)
		}
	}
	return nil
}

func canonicalIP(ip net.IP) net.IP {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4
	}
	return ip
}

// ipLimitKey is the per-IP limiter key. An IPv6 user is handed a whole /64
// and can pick any address in it, so the limit applies to the /64. The key
// lives only in memory; no client IP is ever written to the database.
func ipLimitKey(ip net.IP) string {
	if ip.To4() == nil && len(ip) == net.IPv6len {
		ip = ip.Mask(net.CIDRMask(64, 128))
	}
	return "ip:" + ip.String()
}
