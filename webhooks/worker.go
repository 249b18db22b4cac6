// Package webhooks delivers a program's events to its webhook endpoints
// (webhooks out; docs/webhooks.md). The events and their deliveries are
// written by the store inside the writes they describe (store.Tx.Announce,
// the outbox); this package's Worker claims the due deliveries, sends each
// one signed the Standard Webhooks way, and records the answer: 2xx is
// delivered, anything else is retried with back-off for three days, then
// the delivery fails and its endpoint is marked failing.
//
// Imports go one way: server starts the worker, the worker uses store.
package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/potrack/potrack/store"
)

// Options tune the worker; the zero value of a field takes its default.
type Options struct {
	// Timeout bounds one attempt, from connecting to the answer's end
	// (10 s).
	Timeout time.Duration
	// Lease is how long a claimed delivery is the worker's alone: an
	// attempt's timeout plus the time to record its answer (Timeout+20 s).
	// A worker that dies mid-send leaves a lease that expires, and the
	// delivery is sent again.
	Lease time.Duration
	// Poll is how often an idle worker looks for due deliveries (1 s):
	// events written by other instances, and retries that came due.
	Poll time.Duration
	// Backoff is the wait after each failed attempt; the last entry
	// repeats (BackoffTable). Each wait gets ±20 % jitter.
	Backoff []time.Duration
	// Window is how long a delivery is retried from its first attempt
	// (or its resend) before it fails (72 h).
	Window time.Duration
	// Concurrency is how many attempts run at once (4, at most 4): a
	// claim takes only as many deliveries as there are free slots, so
	// no lease waits behind another attempt.
	Concurrency int
	// Retention is how long ended deliveries and their events are kept
	// (30 days); pruning runs hourly.
	Retention time.Duration
	// Now is the clock (time.Now); tests move it.
	Now func() time.Time
	// Client sends the requests; nil: an http.Client with Timeout that
	// follows no redirect.
	Client *http.Client
	// OnAttempt, when set, hears how each recorded attempt ended:
	// "delivered", "retry" (due again later), "failed" (out of retries)
	// or "stale" (its lease had run out and another attempt had it).
	OnAttempt func(result string)
}

// BackoffTable is the default wait after each failed attempt: 5 s, 30 s,
// 2 min, 10 min, 1 h, 3 h, then every 6 h until the window ends.
var BackoffTable = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour}

// maxConcurrency bounds Options.Concurrency.
const maxConcurrency = 4

// maxBody is how much of an answer is read (and dropped) so the
// connection can be kept.
const maxBody = 64 << 10

// UserAgent names potrack to receivers.
const UserAgent = "potrack-webhooks/1"

// Defaults fill the fields an Options leaves zero, before the built-in
// defaults. Production code leaves it alone; a test may set it before
// starting a server whose options it cannot reach (a child process).
var Defaults Options

func (o Options) withDefaults() Options {
	d := Defaults
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.Lease <= 0 {
		o.Lease = d.Lease
	}
	if o.Poll <= 0 {
		o.Poll = d.Poll
	}
	if len(o.Backoff) == 0 {
		o.Backoff = d.Backoff
	}
	if o.Window <= 0 {
		o.Window = d.Window
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = o.Timeout + 20*time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if len(o.Backoff) == 0 {
		o.Backoff = BackoffTable
	}
	if o.Window <= 0 {
		o.Window = 72 * time.Hour
	}
	if o.Concurrency <= 0 || o.Concurrency > maxConcurrency {
		o.Concurrency = maxConcurrency
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout: o.Timeout,
			// A redirect is an answer other than 2xx: it is retried,
			// never followed (the signature is for the endpoint's URL).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   o.Timeout,
				ResponseHeaderTimeout: o.Timeout,
				MaxIdleConns:          16,
				MaxIdleConnsPerHost:   maxConcurrency,
				IdleConnTimeout:       90 * time.Second,
			},
		}
	}
	return o
}

// Worker sends due deliveries. Run it once per process; several
// processes (instances on one PostgreSQL) share the work through leases.
type Worker struct {
	st   *store.Store
	o    Options
	wake chan struct{}
	// readFailing: the last look for due deliveries failed (logged once).
	readFailing bool
}

// New makes a worker on st.
func New(st *store.Store, o Options) *Worker {
	return &Worker{st: st, o: o.withDefaults(), wake: make(chan struct{}, 1)}
}

// Wake makes an idle worker look for due deliveries now rather than at
// its next poll (after a write that announced events, say).
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then lets the attempts in flight finish
// and record their answers (each within Timeout) before it returns. It
// claims nothing once ctx has ended.
//
// An idle worker reads (NextWebhookDue) and claims only when a delivery
// is due: a claim is a write, and an idle server writes nothing.
func (w *Worker) Run(ctx context.Context) {
	slots := make(chan struct{}, w.o.Concurrency)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	// Attempts and their records outlive ctx: a shutdown drains them.
	keep := context.WithoutCancel(ctx)
	nextPrune := w.o.Now()
	for ctx.Err() == nil {
		if now := w.o.Now(); !now.Before(nextPrune) {
			w.prune(keep, now)
			nextPrune = now.Add(time.Hour)
		}
		// Wait for a free slot, then claim as many as are free.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
	fill:
		for free < w.o.Concurrency {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break fill
			}
		}
		var claimed []*store.ClaimedDelivery
		now := w.o.Now()
		due, ok, err := w.st.NextWebhookDue(ctx, now)
		wait := w.o.Poll
		if err == nil && w.readFailing {
			w.readFailing = false
			slog.Info("webhooks: the database answers again; deliveries resume")
		}
		switch {
		case err != nil:
			// Once per outage, not every poll: /healthz and the
			// store's own logs say more.
			if ctx.Err() == nil && !w.readFailing {
				w.readFailing = true
				slog.Warn("webhooks: could not look for due deliveries; retrying every poll", "err", err)
			}
		case !ok:
		case due.After(now):
			wait = min(wait, due.Sub(now))
		default:
			claimed, err = w.st.ClaimWebhookDeliveries(keep, now, w.o.Lease, free)
			if errors.Is(err, store.ErrClosed) {
				for range free {
					<-slots
				}
				return
			}
			if err != nil {
				slog.Warn("webhooks: could not claim deliveries", "err", err)
			}
		}
		for range free - len(claimed) {
			<-slots
		}
		for _, d := range claimed {
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				defer func() { <-slots }()
				w.deliver(keep, d)
			}()
		}
		if len(claimed) > 0 {
			continue // more may be due; the next look says
		}
		w.idle(ctx, wait)
	}
}

// idle waits for wait, a wake-up or ctx's end.
func (w *Worker) idle(ctx context.Context, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.wake:
	case <-ctx.Done():
	}
}

func (w *Worker) prune(ctx context.Context, now time.Time) {
	for range 100 { // at most 100,000 rows an hour
		n, err := w.st.PruneWebhooks(ctx, now.Add(-w.o.Retention), 1000)
		if err != nil {
			if !errors.Is(err, store.ErrClosed) {
				slog.Warn("webhooks: could not prune old deliveries", "err", err)
			}
			return
		}
		if n == 0 {
			return
		}
	}
}

// deliver makes one attempt and records it.
func (w *Worker) deliver(ctx context.Context, d *store.ClaimedDelivery) {
	status, err := w.send(ctx, d)
	now := w.o.Now()
	r := store.AttemptResult{At: now, Status: status}
	switch {
	case err == nil:
		r.Delivered = true
	default:
		r.Error = err.Error()
		if next := now.Add(w.backoff(d.Attempt)); next.Before(d.StartedAt.Add(w.o.Window)) {
			r.Retry = next
		}
	}
	kept, err := w.st.RecordWebhookAttempt(ctx, d, r)
	if err != nil {
		// The lease expires and the delivery is sent again: at least once.
		slog.Warn("webhooks: could not record an attempt", "delivery", d.ID, "event", d.EventID, "err", err)
		return
	}
	result := "retry"
	switch {
	case !kept:
		result = "stale"
	case r.Delivered:
		result = "delivered"
	case r.Retry.IsZero():
		result = "failed"
		slog.Warn("webhooks: delivery failed after its retries", "delivery", d.ID, "event", d.EventID, "url", d.URL, "last_error", r.Error)
	}
	if w.o.OnAttempt != nil {
		w.o.OnAttempt(result)
	}
}

// backoff is the wait after the attempt-th failed attempt, with jitter.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.o.Backoff[min(max(attempt, 1), len(w.o.Backoff))-1]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// send POSTs the event to the endpoint. It returns the HTTP status (0:
// none) and nil for a 2xx, else why it failed.
func (w *Worker) send(ctx context.Context, d *store.ClaimedDelivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	now := w.o.Now()
	sig, err := Sign(d.Secrets, d.EventID, now, d.Payload)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, fmt.Errorf("the endpoint's URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(standardwebhooks.HeaderWebhookID, d.EventID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return 0, describe(err, w.o.Timeout)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// Sign is the webhook-signature header for an attempt: one v1 signature
// per secret, space-separated, made by the Standard Webhooks library
// (base64 HMAC-SHA256 of "id.timestamp.body" keyed with the secret's
// decoded bytes).
func Sign(secrets []string, id string, at time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return "", fmt.Errorf("the endpoint's secret: %w", err)
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// describe says why a request got no answer, without the URL (the
// delivery shows it) and briefly.
func describe(err error, timeout time.Duration) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no answer within %v", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return errors.New("the connection was closed before an answer")
	}
	return err
}
