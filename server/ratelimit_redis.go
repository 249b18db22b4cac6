package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
// with the reason. After a failure, Redis is left alone for a second; then
// one call at a time asks it again (the others still go through
// unchecked), so a Redis that hangs delays at most that one call by the
// 250 ms budget, and a Redis that is back is used again within a second.
type redisLimits struct {
	client    *redis.Client
	prefix    string
	unchecked func(limit string)

	mu sync.Mutex                    // held while the limiter's scripts load
	st atomic.Pointer[limiter.Store] // nil until they are loaded

	down      atomic.Bool  // the last call to Redis failed
	probing   atomic.Bool  // one call is asking a down Redis again
	downUntil atomic.Int64 // unix nanoseconds: a down Redis is not asked before
	warnedAt  atomic.Int64 // unix nanoseconds of the last warning logged
	lastErr   atomic.Value // string: the last failure, for the log
}

const (
	redisTimeout  = 250 * time.Millisecond // a call's budget for Redis; the limit is checked on every /collect
	redisBackoff  = time.Second            // a down Redis is left alone this long after a failure
	redisWarnEach = time.Minute
)

func newRedisLimits(rawURL, prefix string, unchecked func(limit string)) (*redisLimits, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// Never the URL itself: it may hold a password.
		shown := "the value"
		if u, perr := url.Parse(rawURL); perr == nil {
			shown = fmt.Sprintf("%q", u.Redacted())
		}
		return nil, fmt.Errorf("--redis: %s is not a Redis URL such as redis://127.0.0.1:6379/0", shown)
	}
	// go-redis waits 5 s to connect and 3 s for an answer, retries three
	// times and dials five: far too long for a check made on every call.
	// The URL may set its own timeouts.
	if opt.DialTimeout == 0 {
		opt.DialTimeout = redisTimeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = redisTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = redisTimeout
	}
	opt.PoolTimeout = redisTimeout
	opt.MaxRetries = -1 // none
	opt.DialerRetries = 1
	if prefix == "" {
		prefix = "potrack"
	}
	r := &redisLimits{client: redis.NewClient(opt), prefix: prefix + ":limit", unchecked: unchecked}
	// Say at start whether Redis answers; potrack starts either way.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.failed("", err)
	}
	return r, nil
}

// ask reports whether this call may ask Redis: always while it answers;
// while it is down, one call at a time once the back-off is over.
func (r *redisLimits) ask() bool {
	if !r.down.Load() {
		return true
	}
	if time.Now().UnixNano() < r.downUntil.Load() {
		return false
	}
	return r.probing.CompareAndSwap(false, true)
}

// store is the limiter's Redis store, made on first use: making it loads
// the limiter's scripts into Redis, which must answer for that. A call
// that finds another loading them goes through unchecked.
func (r *redisLimits) store() (limiter.Store, error) {
	if st := r.st.Load(); st != nil {
		return *st, nil
	}
	if !r.mu.TryLock() {
		return nil, errRedisBusy
	}
	defer r.mu.Unlock()
	if st := r.st.Load(); st != nil {
		return *st, nil
	}
	st, err := sredis.NewStoreWithOptions(r.client, limiter.StoreOptions{Prefix: r.prefix})
	if err != nil {
		return nil, err
	}
	r.st.Store(&st)
	return st, nil
}

var errRedisBusy = errors.New("another call is loading the limiter's scripts into Redis")

// answered records that Redis answered a call.
func (r *redisLimits) answered() {
	if r.down.Load() {
		r.down.Store(false)
		slog.Info("Redis answers again: rate limits are checked")
	}
	r.probing.Store(false)
}

// failed records that Redis could not be asked (err) or was not
// (errRedisBusy, or down); limit names the call let through unchecked.
func (r *redisLimits) failed(limit string, err error) {
	now := time.Now()
	if err != nil && err != errRedisBusy {
		r.down.Store(true)
		r.downUntil.Store(now.Add(redisBackoff).UnixNano())
		r.lastErr.Store(err.Error())
		r.probing.Store(false)
	}
	if err == errRedisBusy {
		r.probing.Store(false) // the probe did not happen: another may
	}
	if limit != "" && r.unchecked != nil {
		r.unchecked(limit)
	}
	if err == nil || err == errRedisBusy {
		return
	}
	if last := r.warnedAt.Load(); now.UnixNano()-last >= int64(redisWarnEach) && r.warnedAt.CompareAndSwap(last, now.UnixNano()) {
		slog.Warn("Redis cannot be reached: calls go through without rate limits until it answers", "err", r.lastErr.Load())
	}
}

// problem is what /healthz says about Redis: "" when it answers. It asks
// Redis itself, so a Redis that died while no call came still shows.
func (r *redisLimits) problem(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*redisTimeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.failed("", err)
		// The error itself (addresses, Go's words) goes to the log only.
		return "Redis cannot be reached: calls go through without rate limits (see the server log)"
	}
	return ""
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
