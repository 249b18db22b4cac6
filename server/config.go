package server

// Config is what `potrack serve` is started with. SPEC.md "Running" lists
// the flags and environment variables that fill it.
type Config struct {
	Addr             string   // listen address, ":8080"
	DB               string   // SQLite file
	PublicURL        string   // where browsers reach us, e.g. "https://track.example"; derived from the request when empty
	TrustedProxies   []string // CIDRs or IPs whose X-Forwarded-For is believed
	AdminToken       string   // when empty, one is generated once and its hash stored
	RateLimitIP      string   // ulule/limiter format, per client IP on /collect
	RateLimitProgram string   // ulule/limiter format, per program on /collect
	Demo             bool     // seed demo data into a new database
}

// Defaults for the flags.
const (
	DefaultAddr             = ":8080"
	DefaultDB               = "./data/potrack.db"
	DefaultRateLimitIP      = "120-M"
	DefaultRateLimitProgram = "60000-M"
)
