package server

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are potrack's Prometheus series, on their own registry so tests
// can build many servers in one process.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	batches   prometheus.Histogram
	collected *prometheus.CounterVec

	refusedConns *prometheus.CounterVec // connections closed at accept, by cap
	unchecked    *prometheus.CounterVec // calls let through, Redis unreachable
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "potrack_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "potrack_http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "potrack_store_write_batch_size",
			Help:    "Writes (clicks included) carried by one SQLite transaction (group commit), committed or not.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048},
		}),
		collected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "potrack_collect_total",
			Help: "POST /collect calls by type and outcome (error code or status).",
		}, []string{"type", "outcome"}),
		refusedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "potrack_connections_refused_total",
			Help: "Connections closed as soon as they were accepted, by the cap they hit (total, per_ip).",
		}, []string{"cap"}),
		unchecked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "potrack_ratelimit_unchecked_total",
			Help: "Calls let through without a rate-limit check because Redis could not be reached, by limit (ip, program, admin_guess).",
		}, []string{"limit"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.batches, m.collected, m.refusedConns, m.unchecked,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// middleware counts and times every request. Errors are rendered here (not
// after) so the recorded status is the one the client gets.
func (m *metrics) middleware(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	route := c.Route().Path
	if c.Route().Method == "USE" && c.Response().StatusCode() == fiber.StatusNotFound {
		// No route matched: keep unknown paths out of the label set.
		route = "unmatched"
	}
	status := strconv.Itoa(c.Response().StatusCode())
	m.requests.WithLabelValues(route, c.Method(), status).Inc()
	m.latency.WithLabelValues(route, c.Method(), status).Observe(time.Since(start).Seconds())
	return nil
}

func (m *metrics) handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}

// storeStatements exports the statements the writer ran, read when
// scraped: divided by the writes, what each costs.
func (m *metrics) storeStatements(n func() int64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "potrack_store_statements_total",
		Help: "SQL statements run by writes (BEGIN and COMMIT not counted).",
	}, func() float64 { return float64(n()) }))
}

// storeRetries exports how often a write ran again after colliding with
// another on PostgreSQL, read when scraped.
func (m *metrics) storeRetries(n func() int64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "potrack_store_write_retries_total",
		Help: "Writes run again after a serialization failure or deadlock (PostgreSQL).",
	}, func() float64 { return float64(n()) }))
}

// openConns exports the number of open connections, read when scraped.
func (m *metrics) openConns(open func() int) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "potrack_connections_open",
		Help: "Client connections open now.",
	}, func() float64 { return float64(open()) }))
}
