// Package server is potrack's HTTP side: the REST API, the admin API and
// page, the browser script and /collect, and payment gateway webhooks.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	potrack "github.com/potrack/potrack"
	"github.com/potrack/potrack/snippet"
	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/webhooks"
)

// Server holds everything a request may need.
type Server struct {
	cfg       Config
	store     *store.Store
	app       *fiber.App
	metrics   *metrics
	adminHash string
	script    snippet.Scripts
	limits    *rateLimits
	web       *adminWeb        // the admin page's templates and session key
	webhooks  *webhooks.Worker // webhooks out: Serve runs it (outgoing.go)

	// demoProgramID is the program --demo seeded, when there is one.
	demoProgramID string

	// GeneratedAdminToken is set when this start created the admin token;
	// it is shown once and never stored in clear.
	GeneratedAdminToken string
}

// New builds the server on an open store.
func New(cfg Config, st *store.Store) (*Server, error) {
	if cfg.RateLimitIP == "" {
		cfg.RateLimitIP = DefaultRateLimitIP
	}
	if cfg.RateLimitProgram == "" {
		cfg.RateLimitProgram = DefaultRateLimitProgram
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.HeaderTimeout, DefaultHeaderTimeout}, {&cfg.BodyTimeout, DefaultBodyTimeout},
		{&cfg.WriteTimeout, DefaultWriteTimeout}, {&cfg.IdleTimeout, DefaultIdleTimeout}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Server{cfg: cfg, store: st, metrics: newMetrics()}
	st.Batches = func(n int) { s.metrics.batches.Observe(float64(n)) }
	st.SetEventView(eventView)
	s.webhooks = s.newWebhookWorker(st, cfg.Webhooks)
	s.metrics.storeStatements(st.Statements)
	s.metrics.storeRetries(st.Retries)

	var err error
	if s.limits, err = newRateLimits(cfg, func(limit string) { s.metrics.unchecked.WithLabelValues(limit).Inc() }); err != nil {
		return nil, err
	}
	if s.adminHash, s.GeneratedAdminToken, err = ensureAdminToken(context.Background(), st, cfg.AdminToken); err != nil {
		return nil, err
	}
	if s.script, err = snippet.Build(potrack.SnippetFS); err != nil {
		return nil, fmt.Errorf("bundle the browser script: %w", err)
	}

	s.app = fiber.New(fiber.Config{
		// Values outlive handlers (the write queue, logs): never hand out
		// views of fasthttp's reused buffers.
		Immutable:               true,
		ErrorHandler:            s.errorHandler,
		DisableStartupMessage:   true,
		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
		// Bodies are streamed, so a declared length reserves no memory;
		// guardBody reads them within each route's limit (bodies.go).
		// Multipart forms are not parsed ahead of the handler either.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    maxBodyLimit,
		// ReadTimeout runs from a request's first byte to its headers;
		// requestConfig gives the body its own, once the headers are in.
		ReadTimeout:  cfg.HeaderTimeout,
		WriteTimeout: cfg.WriteTimeout,
		IdleTimeout:  cfg.IdleTimeout,
	})
	s.app.Server().HeaderReceived = s.requestConfig
	// fasthttp's own error logs would quote the raw request.
	s.app.Server().SecureErrorLogMessage = true
	s.routes()
	if cfg.Demo {
		if err := s.seedDemo(context.Background()); err != nil {
			return nil, fmt.Errorf("seed demo data: %w", err)
		}
	}
	return s, nil
}

// App is the Fiber application, for tests and for Listen.
func (s *Server) App() *fiber.App { return s.app }

func (s *Server) routes() {
	app := s.app
	app.Use(recover.New())
	app.Use(s.metrics.middleware)
	app.Use(s.guardBody)

	app.Get("/", s.home)
	app.Get("/healthz", s.healthz)
	app.Get("/metrics", s.metrics.handler())
	app.Get("/js/universal.js", s.script.Handler())
	app.Get("/po.js", s.script.Handler())
	app.Get("/aff/:key", s.affRedirect) // a referral link on this host (aff.go)

	v1 := app.Group("/v1", s.requireAPIKey)
	v1.Post("/partners", s.v1CreatePartner)
	v1.Get("/partners/:key", s.v1GetPartner)
	v1.Post("/customers", s.v1CreateCustomer)
	v1.Get("/customers/:key", s.v1GetCustomer)
	v1.Post("/transactions", s.v1CreateTransactions)
	v1.Get("/transactions", s.v1ListTransactions)
	v1.Get("/transactions/:key", s.v1GetTransaction)
	v1.Delete("/transactions/:key", s.v1RefundTransaction)
	v1.Post("/coupons", s.v1CreateCoupon)
	v1.Get("/coupons", s.v1ListCoupons)
	v1.Get("/coupons/:code", s.v1GetCoupon)
	v1.Delete("/coupons/:code", s.v1DeleteCoupon)

	adm := app.Group("/admin/api", s.requireAdminToken)
	adm.Get("/programs", s.adminListPrograms)
	adm.Post("/programs", s.adminCreateProgram)
	adm.Get("/programs/:id", s.adminGetProgram)
	adm.Patch("/programs/:id", s.adminPatchProgram)
	adm.Post("/programs/:id/rotate", s.adminRotateSecret)
	adm.Get("/programs/:id/coupons", s.adminListCoupons)
	adm.Post("/programs/:id/coupons", s.adminCreateCoupon)
	adm.Get("/programs/:id/coupons/:code", s.adminGetCoupon)
	adm.Delete("/programs/:id/coupons/:code", s.adminDeleteCoupon)
	s.payoutRoutes(adm) // balances, payouts, fraud flags, partner pages (api_payouts.go)
	s.outgoingRoutes(adm)
	s.reportAPIRoutes(adm) // numbers, refusals, exports (reports.go)

	app.Post("/collect", s.collect)
	app.Get("/p/:token", s.partnerPublicPage) // partner pages (partner_page.go)
	app.Options("/collect", s.collectPreflight)
	app.Post("/webhooks/stripe/:program", s.stripeWebhook)
	app.Post("/webhooks/paddle/:program", s.paddleWebhook)
	s.reportPageRoutes(app) // before the admin page's catch-all
	s.adminWebRoutes(app)
	s.demoRoutes(app)

}

// healthz is 200 only when the database can be read and written: a load
// balancer must stop sending sales to an instance whose writes fail.
func (s *Server) healthz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	if err := s.store.Health(ctx); err != nil {
		reason := "the database does not answer"
		var he *store.HealthError
		if errors.As(err, &he) {
			reason = he.Reason
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "reason": reason})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	if s.limits.shared != nil {
		if problem := s.limits.shared.problem(ctx); problem != "" {
			// Still 200: the server records sales; a balancer must not
			// take every instance out because Redis is down.
			return c.JSON(fiber.Map{"status": "degraded", "reason": problem})
		}
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

// Serve answers on ln, within the connection caps, until ctx ends; then it
// stops taking requests, lets the ones in flight finish (their writes
// commit) and returns. The caller binds ln before anything is stored or
// printed, so a busy port fails the start cleanly.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	fileLimit := RaiseFileLimit()
	maxConns := connCap(s.cfg.MaxConns, fileLimit)
	capped := newCapListener(ln, maxConns, s.cfg.MaxConnsPerIP, s.limits.proxies.contains,
		func(reason string) { s.metrics.refusedConns.WithLabelValues(reason).Inc() })
	s.metrics.openConns(capped.Open)
	slog.Info("connection limits", "max_conns", maxConns, "max_conns_per_ip", s.cfg.MaxConnsPerIP, "open_file_limit", fileLimit)
	defer s.limits.close()
	// Rewards past their hold are approved while the server runs
	// (ledger_job.go); the job ends before Serve returns.
	actx, stopApprovals := context.WithCancel(ctx)
	approvalsDone := make(chan struct{})
	go func() { defer close(approvalsDone); s.runApprovals(actx) }()
	defer func() { stopApprovals(); <-approvalsDone }()
	// Webhooks out are sent while the server runs; at shutdown the
	// attempts in flight finish and are recorded before the store closes.
	wctx, stopWebhooks := context.WithCancel(ctx)
	webhooksDone := make(chan struct{})
	go func() { defer close(webhooksDone); s.webhooks.Run(wctx) }()
	defer func() { stopWebhooks(); <-webhooksDone }()
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(capped) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down: finishing requests in flight")
	if err := s.app.ShutdownWithTimeout(30 * time.Second); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return <-errc
}
