package server

import (
	"time"

	"github.com/potrack/potrack/webhooks"
)

// Config is what `potrack serve` is started with. SPEC.md "Running" lists
// the flags and environment variables that fill it.
type Config struct {
	Addr             string   // listen address, ":8080"
	DB               string   // SQLite file or postgres:// URL
	PublicURL        string   // where browsers reach us, e.g. "https://track.example"; derived from the request when empty
	TrustedProxies   []string // CIDRs or IPs whose X-Forwarded-For is believed
	AdminToken       string   // when empty, one is generated once and its hash stored
	RateLimitIP      string   // ulule/limiter format, per client IP on /collect
	RateLimitProgram string   // ulule/limiter format, per program on /collect
	// Redis, a redis:// URL, keeps the rate limits in Redis so that every
	// instance shares them; empty: in this process's memory.
	Redis string
	// RedisPrefix starts every key potrack writes to Redis ("potrack"
	// when empty): several deployments, or tests, may share one Redis.
	RedisPrefix string
	Demo        bool // seed demo data into a new database

	// Connections and timeouts (listener.go, bodies.go): what one client
	// may hold, and how long the server waits for it.
	MaxConns      int           // open connections in all; 0: from the open-file limit
	MaxConnsPerIP int           // open connections per client IP; 0: no cap; trusted proxies are exempt
	HeaderTimeout time.Duration // from a request's first byte (or a new connection) to its headers
	BodyTimeout   time.Duration // from the headers to the end of the body
	WriteTimeout  time.Duration // to write an answer
	IdleTimeout   time.Duration // a keep-alive connection between requests

	// Webhooks tunes the delivery of webhooks out (Serve runs the
	// worker); zero fields take the defaults (webhooks.Options).
	Webhooks webhooks.Options
}

// Defaults for the flags.
const (
	DefaultAddr             = ":8080"
	DefaultDB               = "./data/potrack.db"
	DefaultRateLimitIP      = "120-M"
	DefaultRateLimitProgram = "60000-M"

	DefaultMaxConnsPerIP = 256
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 30 * time.Second
	DefaultWriteTimeout  = 30 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
)
