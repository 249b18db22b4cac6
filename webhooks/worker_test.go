package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a real HTTP endpoint on 127.0.0.1 that checks every
// request's signature twice, with the Standard Webhooks library's
// verifier and with an independent HMAC, and answers as plan says for
// the n-th attempt (from 1) of an event id.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	plan   func(id string, n int) string // "200", "500", "drop", "hang"
	secret string

	mu       sync.Mutex
	attempts map[string]int // by webhook-id
	accepted map[string]int // 2xx answers by webhook-id
	bodies   map[string]string
	inflight map[string]int
	overlap  int // requests for an id that arrived while one for it was in flight
	bad      []string
}

func newReceiver(t *testing.T, plan func(id string, n int) string) *receiver {
	r := &receiver{t: t, plan: plan, secret: testSecret, attempts: map[string]int{}, accepted: map[string]int{},
		bodies: map[string]string{}, inflight: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hooks/potrack" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.attempts[id]++
	n := r.attempts[id]
	if r.inflight[id] > 0 {
		r.overlap++
	}
	r.inflight[id]++
	if prev, ok := r.bodies[id]; ok && prev != string(body) {
		r.bad = append(r.bad, id+": another body on a retry")
	}
	r.bodies[id] = string(body)
	if err := r.verify(body, req.Header); err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%s attempt %d: %v", id, n, err))
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inflight[id]--
		r.mu.Unlock()
	}()
	switch r.plan(id, n) {
	case "500":
		http.Error(w, "try later", http.StatusInternalServerError)
	case "drop":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	case "hang":
		select {
		case <-req.Context().Done():
		case <-time.After(10 * time.Second):
		}
	default:
		r.mu.Lock()
		r.accepted[id]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// verify checks the signature with the library and by hand: base64
// HMAC-SHA256 of "id.timestamp.body" under the secret's decoded bytes.
func (r *receiver) verify(body []byte, h http.Header) error {
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err != nil {
		return err
	}
	if err := wh.Verify(body, h); err != nil {
		return fmt.Errorf("the library's verifier: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			if h.Get("Content-Type") != "application/json" {
				return fmt.Errorf("Content-Type %q", h.Get("Content-Type"))
			}
			return nil
		}
	}
	return fmt.Errorf("no signature matches an independent HMAC: %q", h.Get("webhook-signature"))
}

func (r *receiver) snapshot() (attempts, accepted map[string]int, overlap int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	attempts, accepted = map[string]int{}, map[string]int{}
	for k, v := range r.attempts {
		attempts[k] = v
	}
	for k, v := range r.accepted {
		accepted[k] = v
	}
	return attempts, accepted, r.overlap, append([]string(nil), r.bad...)
}

// fixture opens a store with a program and one endpoint at url taking
// every event.
func fixture(t *testing.T, db, url string) (*store.Store, *store.WebhookEndpoint) {
	t.Helper()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ep := &store.WebhookEndpoint{ProgramID: "prog", URL: url, Events: store.EventTypes, Enabled: true, Secret: testSecret}
	err = st.Write(context.Background(), func(tx *store.Tx) error {
		p := &store.Program{ID: "prog", Name: "Shop", Currency: "USD", CookieDays: 30, ReferralParams: []string{"aff"},
			Attribution: "last", Commission: rules.DefaultCommission()}
		if err := tx.InsertProgram(p, "hash-prog"); err != nil {
			return err
		}
		return tx.InsertWebhookEndpoint(ep)
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, ep
}

// announce writes n events and returns their ids.
func announce(t *testing.T, st *store.Store, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		err := st.Write(context.Background(), func(tx *store.Tx) error {
			id, err := tx.Announce("prog", store.EventTransactionCreated, map[string]any{"key": fmt.Sprint("order-", i)})
			if err == nil {
				ids = append(ids, id)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// fast are timings for tests: retries a second apart.
func fast(o Options) Options {
	if o.Backoff == nil {
		o.Backoff = []time.Duration{time.Second}
	}
	if o.Poll == 0 {
		o.Poll = 50 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	return o
}

// run starts w and returns a stop that waits for it to drain.
func run(w *Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	return func() { cancel(); <-done }
}

// waitFor polls cond every 20 ms until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deliveries(t *testing.T, st *store.Store, status string) []*store.WebhookDelivery {
	t.Helper()
	list, err := st.WebhookDeliveries(context.Background(), store.DeliveryFilter{ProgramID: "prog", Status: status, Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestDeliveryRetriesUntilDelivered: against a real receiver that answers
// 500 twice, then drops the connection, then does not answer within the
// timeout, then 204, every event is delivered; every attempt carries the
// same webhook-id and body and a signature the library's verifier and an
// independent HMAC accept; the receiver accepts each id once; the
// deliveries record 5 attempts and the last answer. About 5 s.
func TestDeliveryRetriesUntilDelivered(t *testing.T) {
	rcv := newReceiver(t, func(id string, n int) string {
		return [...]string{"", "500", "500", "drop", "hang", "200"}[min(n, 5)]
	})
	st, ep := fixture(t, testenv.Database(t, t.TempDir()), rcv.url())
	ids := announce(t, st, 6)
	stop := run(New(st, fast(Options{Timeout: 500 * time.Millisecond})))
	defer stop()
	waitFor(t, 30*time.Second, "every event delivered", func() bool { return len(deliveries(t, st, store.DeliveryDelivered)) == len(ids) })
	stop()

	attempts, accepted, _, bad := rcv.snapshot()
	if len(bad) > 0 {
		t.Fatalf("bad requests: %v", bad)
	}
	for _, id := range ids {
		if attempts[id] != 5 || accepted[id] != 1 {
			t.Errorf("event %s: %d attempts, accepted %d times; want 5 attempts and 1 acceptance", id, attempts[id], accepted[id])
		}
	}
	if len(attempts) != len(ids) {
		t.Errorf("the receiver saw %d ids, want %d: one per event", len(attempts), len(ids))
	}
	for _, d := range deliveries(t, st, "") {
		if d.Attempts != 5 || d.LastStatus != 204 || d.LastError != "" || d.DeliveredAt.IsZero() {
			t.Errorf("delivery %+v", d)
		}
	}
	if e, _ := st.WebhookEndpoint(context.Background(), "prog", ep.ID); !e.FailingSince.IsZero() {
		t.Error("endpoint failing after deliveries succeeded")
	}
}

// TestDeliveryFailsAfterTheWindowThenResend: a receiver that always
// answers 500 exhausts a 3-second retry window (the back-off table is
// injected): the delivery fails with its last answer, the endpoint is
// failing (and stays enabled); a resend sends the same id again, and its
// success clears the failing mark. About 5 s.
func TestDeliveryFailsAfterTheWindowThenResend(t *testing.T) {
	var mu sync.Mutex
	answer := "500"
	rcv := newReceiver(t, func(string, int) string { mu.Lock(); defer mu.Unlock(); return answer })
	st, ep := fixture(t, testenv.Database(t, t.TempDir()), rcv.url())
	ids := announce(t, st, 1)
	w := New(st, fast(Options{Window: 3 * time.Second}))
	stop := run(w)
	defer stop()
	waitFor(t, 20*time.Second, "the delivery failed", func() bool { return len(deliveries(t, st, store.DeliveryFailed)) == 1 })
	d := deliveries(t, st, "")[0]
	if d.LastStatus != 500 || d.LastError != "HTTP 500" || d.Attempts < 2 || !d.NextAttemptAt.IsZero() {
		t.Fatalf("failed delivery %+v: want the last answer, at least 2 attempts, no next one", d)
	}
	e, err := st.WebhookEndpoint(context.Background(), "prog", ep.ID)
	if err != nil || e.FailingSince.IsZero() || !e.Enabled {
		t.Fatalf("endpoint %+v (%v): want failing and still enabled", e, err)
	}
	before, _, _, _ := rcv.snapshot()

	mu.Lock()
	answer = "200"
	mu.Unlock()
	if err := st.Write(context.Background(), func(tx *store.Tx) error { return tx.ResendWebhookDelivery("prog", d.ID) }); err != nil {
		t.Fatal(err)
	}
	w.Wake()
	waitFor(t, 10*time.Second, "the resent delivery delivered", func() bool { return len(deliveries(t, st, store.DeliveryDelivered)) == 1 })
	attempts, accepted, _, bad := rcv.snapshot()
	if len(bad) > 0 || attempts[ids[0]] != before[ids[0]]+1 || accepted[ids[0]] != 1 || len(attempts) != 1 {
		t.Fatalf("after the resend: attempts %v (before %v), accepted %v, bad %v: want one more attempt of the same id", attempts, before, accepted, bad)
	}
	if e, _ := st.WebhookEndpoint(context.Background(), "prog", ep.ID); !e.FailingSince.IsZero() {
		t.Fatal("the resend's success did not clear the failing mark")
	}
}

// TestShutdownDrainsAttemptsInFlight: ending Run's context while a
// receiver is slow lets the attempt finish and records it; nothing new is
// claimed afterwards.
func TestShutdownDrainsAttemptsInFlight(t *testing.T) {
	got := make(chan struct{}, 1)
	rcv := newReceiver(t, func(string, int) string {
		got <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return "200"
	})
	st, _ := fixture(t, testenv.Database(t, t.TempDir()), rcv.url())
	announce(t, st, 1)
	stop := run(New(st, fast(Options{})))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt")
	}
	stop() // returns once the attempt in flight is recorded
	if n := len(deliveries(t, st, store.DeliveryDelivered)); n != 1 {
		t.Fatalf("%d delivered after the drain, want 1", n)
	}
}

// TestTwoWorkersNeverDoubleSend (PostgreSQL): two workers on two stores
// of one database, as two instances, share 40 events through their
// leases: the receiver gets each id exactly once and never two requests
// for one id at a time.
func TestTwoWorkersNeverDoubleSend(t *testing.T) {
	db := testenv.Postgres(t)
	rcv := newReceiver(t, func(string, int) string { time.Sleep(10 * time.Millisecond); return "200" })
	st1, _ := fixture(t, db, rcv.url())
	st2, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	ids := announce(t, st1, 40)
	stop1 := run(New(st1, fast(Options{})))
	stop2 := run(New(st2, fast(Options{})))
	waitFor(t, 30*time.Second, "every event delivered", func() bool { return len(deliveries(t, st1, store.DeliveryDelivered)) == len(ids) })
	stop1()
	stop2()
	attempts, accepted, overlap, bad := rcv.snapshot()
	if len(bad) > 0 || overlap > 0 {
		t.Fatalf("bad %v, overlapping requests %d", bad, overlap)
	}
	for _, id := range ids {
		if attempts[id] != 1 || accepted[id] != 1 {
			t.Errorf("event %s sent %d times, want once", id, attempts[id])
		}
	}
}

// TestSignMatchesTheSpec: the header is "v1,<base64 HMAC-SHA256>" of
// "id.timestamp.body" under the decoded secret, one per secret.
func TestSignMatchesTheSpec(t *testing.T) {
	at := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	sig, err := Sign([]string{testSecret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", at, body)
	// Standard Webhooks' own test vector.
	if err != nil || sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("Sign = %q, %v", sig, err)
	}
	two, _ := Sign([]string{testSecret, "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key"))}, "msg_1", at, body)
	if parts := strings.Fields(two); len(parts) != 2 || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("two secrets: %q", two)
	}
	var v struct{}
	_ = json.Unmarshal(body, &v)
}
