package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Webhooks out (docs/webhooks.md): a program's endpoints, the events
// announced to them and one delivery per endpoint and event.
//
// The outbox: Tx.Announce writes the event and its deliveries inside the
// write that makes the change the event describes, so an event exists if
// and only if its change committed; a write rolled back (an error, a
// replayed SQLite batch, a PostgreSQL serialization failure) takes its
// events with it. The fan-out is part of the same write: the deliveries go
// to the endpoints subscribed at that moment, read inside the transaction.
//
// The delivery worker (package webhooks) claims due deliveries with a
// lease (ClaimWebhookDeliveries), sends them outside any transaction and
// records each attempt (RecordWebhookAttempt). A lease that is not
// answered (the process died mid-send) expires and the delivery is sent
// again, with the same event id: delivery is at least once, and receivers
// dedupe by webhook-id.

// Event types.
const (
	EventTransactionCreated  = "transaction.created"
	EventTransactionRefunded = "transaction.refunded"
	EventCustomerCreated     = "customer.created"
	EventPartnerCreated      = "partner.created"
	EventRewardApproved      = "reward.approved"
	EventPayoutPaid          = "payout.paid"
)

// EventTypes lists every event type an endpoint may subscribe to.
var EventTypes = []string{EventTransactionCreated, EventTransactionRefunded, EventCustomerCreated,
	EventPartnerCreated, EventRewardApproved, EventPayoutPaid}

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // due now or at NextAttemptAt
	DeliveryDelivered = "delivered" // answered 2xx
	DeliveryFailed    = "failed"    // no 2xx within the retry window
)

// WebhookEndpoint is where a program's events are sent.
type WebhookEndpoint struct {
	ID        int64
	ProgramID string
	URL       string
	Events    []string
	Enabled   bool
	// Secret signs every delivery (whsec_ and base64). After a rotation
	// the previous one, OldSecret, also signs until OldSecretUntil, so a
	// receiver has time to switch.
	Secret         string
	OldSecret      string
	OldSecretUntil time.Time
	// FailingSince is when a delivery last ran out of retries with no
	// success since; zero while the endpoint is healthy.
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Subscribed reports whether the endpoint takes events of type typ.
func (e *WebhookEndpoint) Subscribed(typ string) bool {
	for _, t := range e.Events {
		if t == typ {
			return true
		}
	}
	return false
}

const endpointColumns = `id, program_id, url, events, enabled, secret, old_secret, old_secret_until,
	failing_since, created_at, updated_at`

func scanEndpoint(row scanner) (*WebhookEndpoint, error) {
	var (
		e                                       WebhookEndpoint
		events                                  string
		oldUntil, failing, createdAt, updatedAt int64
	)
	err := row.Scan(&e.ID, &e.ProgramID, &e.URL, &events, &e.Enabled, &e.Secret, &e.OldSecret, &oldUntil,
		&failing, &createdAt, &updatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return nil, fmt.Errorf("webhook endpoint %d: events: %w", e.ID, err)
	}
	e.OldSecretUntil, e.FailingSince = fromUnixOrZero(oldUntil), fromUnixOrZero(failing)
	e.CreatedAt, e.UpdatedAt = fromUnix(createdAt), fromUnix(updatedAt)
	return &e, nil
}

// fromUnixOrZero is fromUnix, with 0 for "never" as the zero time.
func fromUnixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return fromUnix(s)
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func eventsJSON(events []string) string {
	if events == nil {
		events = []string{}
	}
	b, _ := json.Marshal(events)
	return string(b)
}

// InsertWebhookEndpoint stores a new endpoint; it receives the events
// announced from this write on.
func (t *Tx) InsertWebhookEndpoint(e *WebhookEndpoint) error {
	t.endpointsChanged()
	e.CreatedAt, e.UpdatedAt = t.now, t.now
	id, _, err := t.insert(`INSERT INTO webhook_endpoints (program_id, url, events, enabled, secret, old_secret,
		old_secret_until, failing_since, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', 0, 0, ?, ?)`,
		e.ProgramID, e.URL, eventsJSON(e.Events), e.Enabled, e.Secret, unix(e.CreatedAt), unix(e.UpdatedAt))
	e.ID = id
	return err
}

// WebhookEndpoint finds a program's endpoint inside the write.
func (t *Tx) WebhookEndpoint(programID string, id int64) (*WebhookEndpoint, error) {
	return scanEndpoint(t.queryRow(`SELECT `+endpointColumns+` FROM webhook_endpoints WHERE program_id = ? AND id = ?`, programID, id))
}

// UpdateWebhookEndpoint saves an endpoint's URL, events and switch.
func (t *Tx) UpdateWebhookEndpoint(e *WebhookEndpoint) error {
	t.endpointsChanged()
	e.UpdatedAt = t.now
	res, err := t.exec(`UPDATE webhook_endpoints SET url = ?, events = ?, enabled = ?, updated_at = ? WHERE program_id = ? AND id = ?`,
		e.URL, eventsJSON(e.Events), e.Enabled, unix(e.UpdatedAt), e.ProgramID, e.ID)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// RotateWebhookSecret makes secret the endpoint's signing secret; the one
// it replaces keeps signing too until keepOld has passed.
func (t *Tx) RotateWebhookSecret(programID string, id int64, secret string, keepOld time.Duration) error {
	res, err := t.exec(`UPDATE webhook_endpoints SET old_secret = secret, old_secret_until = ?, secret = ?, updated_at = ?
		WHERE program_id = ? AND id = ?`, unix(t.now.Add(keepOld)), secret, unix(t.now), programID, id)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// DeleteWebhookEndpoint removes an endpoint and its deliveries, sent or
// not; ErrNotFound when the program has no such endpoint. Events left
// without deliveries are pruned later (PruneWebhooks).
func (t *Tx) DeleteWebhookEndpoint(programID string, id int64) error {
	t.endpointsChanged()
	if _, err := t.exec(`DELETE FROM webhook_deliveries WHERE endpoint_id IN
		(SELECT id FROM webhook_endpoints WHERE program_id = ? AND id = ?)`, programID, id); err != nil {
		return err
	}
	res, err := t.exec(`DELETE FROM webhook_endpoints WHERE program_id = ? AND id = ?`, programID, id)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// WebhookEndpoints lists a program's endpoints, oldest first.
func (s *Store) WebhookEndpoints(ctx context.Context, programID string) ([]*WebhookEndpoint, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE program_id = ? ORDER BY id`, programID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*WebhookEndpoint{}
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// WebhookEndpoint finds a program's endpoint.
func (s *Store) WebhookEndpoint(ctx context.Context, programID string, id int64) (*WebhookEndpoint, error) {
	return scanEndpoint(s.read.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE program_id = ? AND id = ?`, programID, id))
}

// --- the outbox ---

// SetEventView sets how Announce renders an event's object as its data:
// the server makes it the REST API's view of the object. Without one the
// object is encoded as it is.
func (s *Store) SetEventView(view func(obj any) any) { s.eventView.Store(&view) }

// eventViewFunc is the hook SetEventView sets (Store.eventView).
type eventViewFunc = atomic.Pointer[func(any) any]

// eventEnvelope is an event's body: Standard Webhooks' type, timestamp
// and data.
type eventEnvelope struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// Announce records that an event of type typ happened to obj in program
// programID, inside this write: the event and one delivery per enabled
// endpoint of the program subscribed to typ, both written by this
// transaction (the fan-out is one INSERT … SELECT over the endpoints as
// the transaction sees them). It returns the event's id, "" when no
// endpoint takes typ and nothing was written.
//
// Whether any endpoint takes typ is answered from memory (webhookSubs):
// a program without endpoints costs a sale no statement. A change of an
// endpoint through this process empties that memory at once; one made by
// another instance (PostgreSQL) applies here within programCacheTTL, as
// program changes do.
func (t *Tx) Announce(programID, typ string, obj any) (string, error) {
	if ok, err := t.Subscribed(programID, typ); err != nil || !ok {
		return "", err
	}
	data := obj
	if view := t.s.eventView.Load(); view != nil {
		data = (*view)(obj)
	}
	payload, err := json.Marshal(eventEnvelope{Type: typ, Timestamp: t.now, Data: data})
	if err != nil {
		return "", fmt.Errorf("encode %s event: %w", typ, err)
	}
	id := NewEventID(t.now)
	if _, err := t.exec(`INSERT INTO webhook_events (id, program_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, programID, typ, string(payload), unix(t.now)); err != nil {
		return "", err
	}
	// An endpoint the memory knew of may be gone (another instance): the
	// event then has no delivery, and PruneWebhooks takes it later.
	if _, err := t.exec(`INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at,
		leased_until, started_at, created_at)
		SELECT CAST(?1 AS TEXT), id, 'pending', 0, CAST(?2 AS BIGINT), 0, CAST(?2 AS BIGINT), CAST(?2 AS BIGINT)
		FROM webhook_endpoints WHERE program_id = ?3 AND enabled = TRUE AND events LIKE ?4`,
		id, unix(t.now), programID, `%"`+typ+`"%`); err != nil {
		return "", err
	}
	return id, nil
}

// Subscribed reports whether any enabled endpoint of the program takes
// events of type typ (from memory, as Announce decides), for a caller
// that would read more to build the event's object.
func (t *Tx) Subscribed(programID, typ string) (bool, error) {
	subs, ok, gen := t.s.webhookSubs.get(programID)
	if !ok {
		var err error
		if subs, err = t.subscriptions(programID); err != nil {
			return false, err
		}
		t.s.webhookSubs.put(gen, programID, subs)
	}
	return subs[typ], nil
}

// subscriptions reads the event types the program's enabled endpoints
// take, inside the write.
func (t *Tx) subscriptions(programID string) (map[string]bool, error) {
	rows, err := t.query(`SELECT events FROM webhook_endpoints WHERE program_id = ? AND enabled = TRUE`, programID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	subs := map[string]bool{}
	for rows.Next() {
		var events string
		if err := rows.Scan(&events); err != nil {
			return nil, err
		}
		var list []string
		if err := json.Unmarshal([]byte(events), &list); err != nil {
			return nil, err
		}
		for _, e := range list {
			subs[e] = true
		}
	}
	return subs, rows.Err()
}

// webhookSubs remembers, per program, which event types its enabled
// endpoints take, for programCacheTTL (see Announce). A write that
// changes an endpoint empties it at once and again when its batch ends
// (committed or not: what was read inside it may never have been).
type webhookSubs struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]cachedSubs
}

type cachedSubs struct {
	types map[string]bool
	at    time.Time
}

func (c *webhookSubs) get(programID string) (map[string]bool, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[programID]; ok && time.Since(e.at) < programCacheTTL {
		return e.types, true, c.gen
	}
	return nil, false, c.gen
}

// put keeps what was read unless an endpoint changed since gen.
func (c *webhookSubs) put(gen uint64, programID string, types map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= programCacheMax {
		c.m = map[string]cachedSubs{}
	}
	c.m[programID] = cachedSubs{types, time.Now()}
}

func (c *webhookSubs) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m = nil
}

// endpointsChanged notes that this write changed an endpoint's
// subscriptions (see webhookSubs).
func (t *Tx) endpointsChanged() {
	t.webhooksChanged = true
	t.s.webhookSubs.invalidate()
}

// NewEventID makes an event id: msg_ and a ULID (48 bits of milliseconds
// then 80 random bits, in Crockford's base32), unique and sorting by time.
func NewEventID(at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16)
	rand.Read(b[6:])
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	// 128 bits as 26 base32 digits, the first carrying 3 bits.
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	out := make([]byte, 26)
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return "msg_" + string(out)
}

// --- deliveries, as the admin sees them ---

// WebhookDelivery is one event's delivery to one endpoint.
type WebhookDelivery struct {
	ID            int64
	EventID       string
	EventType     string
	EndpointID    int64
	EndpointURL   string
	Status        string
	Attempts      int
	NextAttemptAt time.Time // when pending: the next attempt
	LastAttemptAt time.Time // zero before the first attempt
	LastStatus    int       // the last answer's HTTP status; 0: none (a network error, or no attempt yet)
	LastError     string
	DeliveredAt   time.Time
	CreatedAt     time.Time
}

// DeliveryFilter selects a program's deliveries, newest first.
type DeliveryFilter struct {
	ProgramID  string
	EndpointID int64  // 0: every endpoint
	Status     string // "": any
	Limit      int
}

const deliverySelect = `SELECT d.id, d.event_id, ev.type, d.endpoint_id, e.url, d.status, d.attempts, d.next_attempt_at,
	d.last_attempt_at, d.last_status, d.last_error, d.delivered_at, d.created_at
	FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id JOIN webhook_endpoints e ON e.id = d.endpoint_id`

func scanDelivery(row scanner) (*WebhookDelivery, error) {
	var (
		d                                WebhookDelivery
		next, last, delivered, createdAt int64
	)
	err := row.Scan(&d.ID, &d.EventID, &d.EventType, &d.EndpointID, &d.EndpointURL, &d.Status, &d.Attempts, &next,
		&last, &d.LastStatus, &d.LastError, &delivered, &createdAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if d.Status == DeliveryPending {
		d.NextAttemptAt = fromUnix(next)
	}
	d.LastAttemptAt, d.DeliveredAt, d.CreatedAt = fromUnixOrZero(last), fromUnixOrZero(delivered), fromUnix(createdAt)
	return &d, nil
}

// WebhookDeliveries lists a program's most recent deliveries.
func (s *Store) WebhookDeliveries(ctx context.Context, f DeliveryFilter) ([]*WebhookDelivery, error) {
	q := deliverySelect + ` WHERE e.program_id = ?1`
	args := []any{f.ProgramID}
	if f.EndpointID != 0 {
		args = append(args, f.EndpointID)
		q += fmt.Sprintf(` AND d.endpoint_id = ?%d`, len(args))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		q += fmt.Sprintf(` AND d.status = ?%d`, len(args))
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(` ORDER BY d.id DESC LIMIT ?%d`, len(args))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*WebhookDelivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// WebhookDelivery finds one of a program's deliveries.
func (s *Store) WebhookDelivery(ctx context.Context, programID string, id int64) (*WebhookDelivery, error) {
	return scanDelivery(s.read.QueryRowContext(ctx, deliverySelect+` WHERE e.program_id = ? AND d.id = ?`, programID, id))
}

// WebhookEvent is an event as it was announced: its type and the exact
// body every delivery sends.
type WebhookEvent struct {
	ID        string
	ProgramID string
	Type      string
	Payload   []byte
	CreatedAt time.Time
}

// WebhookEvent finds one of a program's events by id.
func (s *Store) WebhookEvent(ctx context.Context, programID, id string) (*WebhookEvent, error) {
	var (
		e       WebhookEvent
		payload string
		at      int64
	)
	err := s.read.QueryRowContext(ctx, `SELECT id, program_id, type, payload, created_at FROM webhook_events
		WHERE program_id = ? AND id = ?`, programID, id).Scan(&e.ID, &e.ProgramID, &e.Type, &payload, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	e.Payload, e.CreatedAt = []byte(payload), fromUnix(at)
	return &e, err
}

// ResendWebhookDelivery sends a delivery again, with the same event id,
// as soon as the worker gets to it: a delivered or failed one becomes
// pending with a new retry window from now; a pending one is due now.
// An attempt in flight finishes first (its lease holds).
func (t *Tx) ResendWebhookDelivery(programID string, id int64) error {
	res, err := t.exec(`UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?1,
		started_at = CASE WHEN status = 'pending' THEN started_at ELSE ?1 END
		WHERE id = ?2 AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE program_id = ?3)`, unix(t.now), id, programID)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// WebhookEndpointStats counts an endpoint's deliveries by status.
type WebhookEndpointStats struct {
	Pending, Retrying, Delivered, Failed int
}

// WebhookEndpointStats counts each of a program's endpoints' deliveries
// kept (PruneWebhooks keeps 30 days), by endpoint id.
func (s *Store) WebhookEndpointStats(ctx context.Context, programID string) (map[int64]*WebhookEndpointStats, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT d.endpoint_id, d.status, d.attempts > 0, count(*)
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE e.program_id = ? GROUP BY d.endpoint_id, d.status, d.attempts > 0`, programID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]*WebhookEndpointStats{}
	for rows.Next() {
		var (
			id      int64
			status  string
			retried bool
			n       int
		)
		if err := rows.Scan(&id, &status, &retried, &n); err != nil {
			return nil, err
		}
		st := out[id]
		if st == nil {
			st = &WebhookEndpointStats{}
			out[id] = st
		}
		switch {
		case status == DeliveryPending && retried:
			st.Retrying += n
		case status == DeliveryPending:
			st.Pending += n
		case status == DeliveryDelivered:
			st.Delivered += n
		case status == DeliveryFailed:
			st.Failed += n
		}
	}
	return out, rows.Err()
}

// CountWebhookEndpoints counts a program's endpoints, inside the write.
func (t *Tx) CountWebhookEndpoints(programID string) (int, error) {
	var n int
	err := t.queryRow(`SELECT count(*) FROM webhook_endpoints WHERE program_id = ?`, programID).Scan(&n)
	return n, err
}

// --- the worker's side ---

// ClaimedDelivery is a delivery leased to one worker for one attempt.
type ClaimedDelivery struct {
	ID         int64
	Attempt    int // this attempt's number, from 1; fences the result (RecordWebhookAttempt)
	EventID    string
	EventType  string
	Payload    []byte
	EndpointID int64
	URL        string
	// Secrets sign the attempt: the endpoint's secret, then the previous
	// one while it is kept after a rotation.
	Secrets   []string
	StartedAt time.Time // the retry window's start
}

// ClaimWebhookDeliveries leases up to limit due deliveries of enabled
// endpoints until now+lease, oldest due first, and returns them. A leased
// delivery is not claimed again until its lease ends, so two workers
// (two instances on PostgreSQL) never send the same attempt at once; on
// PostgreSQL, FOR UPDATE SKIP LOCKED also lets concurrent claims pass
// each other instead of colliding on the same rows. Each claim counts as
// an attempt: one whose worker dies before answering is retried when the
// lease has expired.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*ClaimedDelivery, error) {
	lock := ""
	if s.pg != nil {
		lock = ` FOR UPDATE OF d SKIP LOCKED`
	}
	claimQuery := `UPDATE webhook_deliveries SET attempts = attempts + 1, leased_until = ?1
		WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= ?2 AND d.leased_until <= ?2 AND e.enabled = TRUE
			ORDER BY d.next_attempt_at LIMIT ?3` + lock + `)
		RETURNING id, attempts`
	var out []*ClaimedDelivery
	err := s.Write(ctx, func(tx *Tx) error {
		out = nil
		rows, err := tx.query(claimQuery, unix(now.Add(lease)), unix(now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			d := &ClaimedDelivery{}
			if err := rows.Scan(&d.ID, &d.Attempt); err != nil {
				rows.Close()
				return err
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range out {
			var (
				payload, secret, old string
				oldUntil, started    int64
			)
			err := tx.queryRow(`SELECT d.event_id, ev.type, ev.payload, d.endpoint_id, e.url, e.secret, e.old_secret,
				e.old_secret_until, d.started_at
				FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id JOIN webhook_endpoints e ON e.id = d.endpoint_id
				WHERE d.id = ?`, d.ID).Scan(&d.EventID, &d.EventType, &payload, &d.EndpointID, &d.URL, &secret, &old, &oldUntil, &started)
			if err != nil {
				return err
			}
			d.Payload, d.StartedAt = []byte(payload), fromUnix(started)
			d.Secrets = []string{secret}
			if old != "" && oldUntil > unix(now) {
				d.Secrets = append(d.Secrets, old)
			}
		}
		return nil
	})
	return out, err
}

// NextWebhookDue is when the earliest pending delivery of an enabled
// endpoint not leased at now is due; ok is false when there is none.
func (s *Store) NextWebhookDue(ctx context.Context, now time.Time) (due time.Time, ok bool, err error) {
	var at int64
	err = s.read.QueryRowContext(ctx, `SELECT d.next_attempt_at FROM webhook_deliveries d
		JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND d.leased_until <= ? AND e.enabled = TRUE ORDER BY d.next_attempt_at LIMIT 1`, unix(now)).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	return fromUnix(at), err == nil, err
}

// AttemptResult is what became of one attempt.
type AttemptResult struct {
	At     time.Time
	Status int    // the HTTP status answered; 0 when there was none
	Error  string // why it failed: the status, or the network error
	// Delivered: a 2xx. Otherwise Retry is when to try again, or zero
	// when the retry window is over and the delivery fails.
	Delivered bool
	Retry     time.Time
}

// RecordWebhookAttempt ends an attempt's lease with its result. A
// delivered one clears its endpoint's failing state; one out of retries
// fails and marks its endpoint failing. The result is dropped when the
// delivery is no longer this attempt's (its lease expired and another
// attempt was claimed, or the endpoint was deleted): recorded reports
// whether it was kept.
func (s *Store) RecordWebhookAttempt(ctx context.Context, d *ClaimedDelivery, r AttemptResult) (recorded bool, err error) {
	msg := r.Error
	if len(msg) > 300 {
		msg = msg[:300]
	}
	err = s.Write(ctx, func(tx *Tx) error {
		recorded = false
		var res sql.Result
		var err error
		switch {
		case r.Delivered:
			res, err = tx.exec(`UPDATE webhook_deliveries SET status = 'delivered', leased_until = 0, last_attempt_at = ?,
				last_status = ?, last_error = '', delivered_at = ? WHERE id = ? AND attempts = ?`,
				unix(r.At), r.Status, unix(r.At), d.ID, d.Attempt)
		case !r.Retry.IsZero():
			res, err = tx.exec(`UPDATE webhook_deliveries SET status = 'pending', leased_until = 0, next_attempt_at = ?,
				last_attempt_at = ?, last_status = ?, last_error = ? WHERE id = ? AND attempts = ?`,
				unix(r.Retry), unix(r.At), r.Status, msg, d.ID, d.Attempt)
		default:
			res, err = tx.exec(`UPDATE webhook_deliveries SET status = 'failed', leased_until = 0, last_attempt_at = ?,
				last_status = ?, last_error = ? WHERE id = ? AND attempts = ?`,
				unix(r.At), r.Status, msg, d.ID, d.Attempt)
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		recorded = true
		switch {
		case r.Delivered:
			_, err = tx.exec(`UPDATE webhook_endpoints SET failing_since = 0 WHERE id = ? AND failing_since <> 0`, d.EndpointID)
		case r.Retry.IsZero():
			_, err = tx.exec(`UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since = 0`, unix(r.At), d.EndpointID)
		}
		return err
	})
	return recorded, err
}

// PruneWebhooks deletes up to limit deliveries that ended (delivered or
// failed) before before, then up to limit events older than before that
// have no delivery left; it returns how many rows went.
func (s *Store) PruneWebhooks(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int
	err := s.Write(ctx, func(tx *Tx) error {
		n = 0
		res, err := tx.exec(`DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
			WHERE status <> 'pending' AND created_at < ? ORDER BY id LIMIT ?)`, unix(before), limit)
		if err != nil {
			return err
		}
		d, _ := res.RowsAffected()
		res, err = tx.exec(`DELETE FROM webhook_events WHERE id IN (SELECT ev.id FROM webhook_events ev
			WHERE ev.created_at < ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = ev.id)
			ORDER BY ev.created_at LIMIT ?)`, unix(before), limit)
		if err != nil {
			return err
		}
		e, _ := res.RowsAffected()
		n = int(d + e)
		return nil
	})
	return n, err
}

// IsEventType reports whether typ is one of EventTypes.
func IsEventType(typ string) bool {
	for _, t := range EventTypes {
		if t == typ {
			return true
		}
	}
	return false
}
