// Command potrack is the affiliate tracking server.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/potrack/potrack/server"
	"github.com/potrack/potrack/store"
)

const usage = `potrack: a self-hosted tracking server for affiliate programs.

Usage:
  potrack serve [flags]   run the server
  potrack help            show this text

Run 'potrack serve -h' for the flags. Every flag can also be set by the
environment variable named next to it.
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Print(usage)
		return
	}
	switch os.Args[1] {
	case "serve":
		if err := serve(os.Args[2:]); err != nil {
			slog.Error("potrack stopped", "err", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "potrack: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

// env returns the environment variable or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg server.Config
	var proxies string
	fs.StringVar(&cfg.Addr, "addr", env("POTRACK_ADDR", server.DefaultAddr), "listen address (POTRACK_ADDR)")
	fs.StringVar(&cfg.DB, "db", env("POTRACK_DB", server.DefaultDB), "SQLite database file (POTRACK_DB)")
	fs.StringVar(&cfg.PublicURL, "public-url", env("POTRACK_PUBLIC_URL", ""), "URL browsers and gateways use to reach this server, e.g. https://track.example (POTRACK_PUBLIC_URL)")
	fs.StringVar(&proxies, "trusted-proxies", env("POTRACK_TRUSTED_PROXIES", ""), "comma-separated CIDRs or IPs of reverse proxies whose X-Forwarded-For is trusted (POTRACK_TRUSTED_PROXIES)")
	fs.StringVar(&cfg.AdminToken, "admin-token", env("POTRACK_ADMIN_TOKEN", ""), "admin token; generated on first start when empty (POTRACK_ADMIN_TOKEN)")
	fs.StringVar(&cfg.RateLimitIP, "rate-limit-ip", env("POTRACK_RATE_LIMIT_IP", server.DefaultRateLimitIP), "requests per client IP on /collect, ulule/limiter format like 120-M (POTRACK_RATE_LIMIT_IP)")
	fs.StringVar(&cfg.RateLimitProgram, "rate-limit-program", env("POTRACK_RATE_LIMIT_PROGRAM", server.DefaultRateLimitProgram), "requests per program on /collect (POTRACK_RATE_LIMIT_PROGRAM)")
	demo := env("POTRACK_DEMO", "") == "1" || env("POTRACK_DEMO", "") == "true"
	fs.BoolVar(&cfg.Demo, "demo", demo, "seed a demo program, partner and shop pages into a new database (POTRACK_DEMO)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.TrustedProxies = append(cfg.TrustedProxies, p)
		}
	}

	st, err := store.Open(cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := server.New(cfg, st)
	if err != nil {
		return err
	}
	// The banner shows where to click and, when it was just generated, the
	// admin token: the one time it is known in clear.
	fmt.Print(srv.Banner())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	slog.Info("potrack listening", "addr", cfg.Addr, "db", cfg.DB)
	if err := srv.Serve(ctx); err != nil {
		return err
	}
	// Every accepted write has answered by now; Close commits nothing new
	// but waits for the writer to finish.
	return st.Close()
}
