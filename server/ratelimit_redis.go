package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// redisLimits keeps the rate limits in Redis (ulule/limiter's Redis store,
// one atomic Lua script per call), so several instances share one budget
// per IP, per program and per admin guesser.
//
// When Redis cannot be reached, calls go through unchecked (fail open):
// rate limits protect the service, and refusing every sale because the
// limiter's store is down would make Redis an outage of its own. Each call
// let through counts in potrack_ratelimit_unchecked_total{limit}, a
// warning is logged at most once a minute, and /healthz answers "degraded"
// with the reason. After a failure Redis is left alone for a second, so a
// dead Redis costs requests nothing but that count, not a timeout each;
// the per-connection caps (listener.go) still hold.
type redisLimits struct {
	client    *redis.Client
	prefix    string
	unchecked func(limit string)

	mu sync.Mutex
	st limiter.Store // nil until the limiter's scripts are loaded

	downUntil atomic.Int64 // unix nanoseconds: Redis is not asked before
	lastFail  atomic.Int64 // unix nanoseconds of the last failure
	warnedAt  atomic.Int64 // unix nanoseconds of the last warning logged
	lastErr   atomic.Value // string: the last failure, for /healthz
}

const (
	redisTimeout  = 250 * time.Millisecond // a call's budget for Redis; the limit is checked on every /collect
	redisBackoff  = time.Second            // Redis is left alone this long after a failure
	redisWarnEach = time.Minute
	redisRecent   = 10 * time.Second // /healthz reports failures this recent
)

func newRedisLimits(url, prefix string, unchecked func(limit string)) (*redisLimits, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--redis %q is not a Redis URL such as redis://127.0.0.1:6379/0: %w", url, err)
	}
	// go-redis waits 5 s to connect and 3 s for an answer by default: far
	// too long for a check made on every call. The URL may set its own.
	if opt.DialTimeout == 0 {
		opt.DialTimeout = redisTimeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = redisTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = redisTimeout
	}
	opt.MaxRetries = 1
	// One dial a call: go-redis tries five times, 100 ms apart, by default.
	opt.DialerRetries = 1
	if prefix == "" {
		prefix = "potrack"
	}
	r := &redisLimits{client: redis.NewClient(opt), prefix: prefix + ":limit", unchecked: unchecked}
	// Say at start whether Redis answers; potrack starts either way.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.failed("start", err)
	}
	return r, nil
}

// store is the limiter's Redis store, made on first use: making it loads
// the limiter's scripts into Redis, which must answer for that.
func (r *redisLimits) store() (limiter.Store, error) {
	if time.Now().UnixNano() < r.downUntil.Load() {
		return nil, errRedisBackoff
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st != nil {
		return r.st, nil
	}
	st, err := sredis.NewStoreWithOptions(r.client, limiter.StoreOptions{Prefix: r.prefix})
	if err != nil {
		return nil, err
	}
	r.st = st
	return st, nil
}

var errRedisBackoff = fmt.Errorf("Redis failed less than %s ago", redisBackoff)

// failed lets a call through unchecked and remembers why.
func (r *redisLimits) failed(limit string, err error) {
	now := time.Now()
	if err != errRedisBackoff {
		r.downUntil.Store(now.Add(redisBackoff).UnixNano())
		r.lastErr.Store(err.Error())
	}
	r.lastFail.Store(now.UnixNano())
	if limit != "start" && r.unchecked != nil {
		r.unchecked(limit)
	}
	if last := r.warnedAt.Load(); now.UnixNano()-last >= int64(redisWarnEach) && r.warnedAt.CompareAndSwap(last, now.UnixNano()) {
		slog.Warn("Redis cannot be reached: calls go through without rate limits until it answers", "err", r.lastErr.Load())
	}
}

// problem is what /healthz says about Redis: "" when it answered lately.
func (r *redisLimits) problem() string {
	if time.Since(time.Unix(0, r.lastFail.Load())) > redisRecent {
		return ""
	}
	// The error itself (addresses, Go's words) goes to the log only.
	return "Redis cannot be reached: calls go through without rate limits (see the server log)"
}

func (r *redisLimits) close() error { return r.client.Close() }

func init() {
	// go-redis logs every failed dial on its own; potrack says it once a
	// minute (failed), so its lines go to the debug log.
	redis.SetLogger(debugLogger{})
}

type debugLogger struct{}

func (debugLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Debug("redis: " + fmt.Sprintf(format, v...))
}
