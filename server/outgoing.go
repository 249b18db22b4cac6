package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/webhooks"
)

// Webhooks out (docs/webhooks.md): a program's endpoints, over the admin
// API here and on the admin page (admin_web_outgoing.go). The events are
// written by tracking inside the writes they describe; the worker
// (package webhooks, started by Serve) sends them.

// eventView renders an event's object as the REST API shows it: the
// data of every webhook payload (store.Tx.Announce).
func eventView(obj any) any {
	switch o := obj.(type) {
	case *store.Partner:
		return viewPartner(o)
	case *store.Customer:
		return viewCustomer(o)
	case *store.Transaction:
		return viewTransaction(o)
	case *store.Payout:
		// As GET /admin/api/programs/{id}/payouts/{payout} shows it,
		// without each item's list of rewards.
		return viewPayout(o, nil)
	}
	return obj
}

// newWebhookWorker makes the worker Serve runs, counting its attempts in
// potrack_webhook_attempts_total by result.
func (s *Server) newWebhookWorker(st *store.Store, o webhooks.Options) *webhooks.Worker {
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "potrack_webhook_attempts_total",
		Help: "Webhook deliveries attempted, by result: delivered, retry, failed (out of retries), stale (answer after the lease).",
	}, []string{"result"})
	s.metrics.registry.MustRegister(attempts)
	next := o.OnAttempt
	o.OnAttempt = func(result string) {
		attempts.WithLabelValues(result).Inc()
		if next != nil {
			next(result)
		}
	}
	return webhooks.New(st, o)
}

// endpointSecretGrace is how long the secret a rotation replaced still
// signs deliveries beside the new one, so a receiver can switch without
// refusing any.
const endpointSecretGrace = 24 * time.Hour

// maxEndpoints bounds a program's endpoints: each event is written once
// per subscribed endpoint, inside the write that records the sale.
const maxEndpoints = 10

// newEndpointSecret is a Standard Webhooks secret: whsec_ and the base64
// of 32 random bytes, the HMAC key.
func newEndpointSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

var (
	errEndpointMissing  = &Error{fiber.StatusNotFound, "webhook_not_found", "This program has no webhook endpoint with this id.", ""}
	errDeliveryMissing  = &Error{fiber.StatusNotFound, "delivery_not_found", "This program has no webhook delivery with this id.", ""}
	errTooManyEndpoints = &Error{fiber.StatusUnprocessableEntity, "too_many_webhooks",
		"A program has at most " + strconv.Itoa(maxEndpoints) + " webhook endpoints; delete one first.", ""}
)

// checkEndpointURL validates an endpoint's URL: absolute https, or http to
// this machine only (localhost, 127.0.0.1, [::1]). Payloads carry
// customers' names and emails: the signature proves they come from
// potrack but hides nothing, so over plain http anyone on the way could
// read them. Loopback traffic never leaves the machine, which is what a
// receiver beside potrack, or a developer's test, needs.
func checkEndpointURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if err := checkText("url", raw, 2048, true); err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", invalid("url", "url must be an absolute URL such as https://example.com/webhooks/potrack.")
	}
	if u.Fragment != "" {
		return "", invalid("url", "url must not have a #fragment.")
	}
	host := strings.ToLower(u.Hostname())
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if host != "localhost" && !isLoopbackIP(host) {
			return "", invalid("url", "url must use https (http is allowed for localhost and 127.0.0.1 only): payloads carry customers' names and emails.")
		}
	default:
		return "", invalid("url", "url must start with https:// (or http:// for localhost).")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", invalid("url", "url has an invalid port.")
		}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkEvents validates a subscription: a non-empty subset of
// store.EventTypes, kept in their order, duplicates dropped.
func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, invalid("events", "events lists the event types to send: "+strings.Join(store.EventTypes, ", ")+".")
	}
	want := map[string]bool{}
	for i, e := range events {
		if !store.IsEventType(e) {
			return nil, invalid("events["+strconv.Itoa(i)+"]", "Unknown event type "+strconv.Quote(e)+"; one of "+strings.Join(store.EventTypes, ", ")+".")
		}
		want[e] = true
	}
	var out []string
	for _, e := range store.EventTypes {
		if want[e] {
			out = append(out, e)
		}
	}
	return out, nil
}

// endpointJSONIn is an endpoint as the admin API takes it; on PATCH every
// field is optional.
type endpointJSONIn struct {
	URL     *string   `json:"url"`
	Events  *[]string `json:"events"`
	Enabled *bool     `json:"enabled"`
}

func (in *endpointJSONIn) apply(e *store.WebhookEndpoint) error {
	if in.URL != nil {
		u, err := checkEndpointURL(*in.URL)
		if err != nil {
			return err
		}
		e.URL = u
	}
	if in.Events != nil {
		ev, err := checkEvents(*in.Events)
		if err != nil {
			return err
		}
		e.Events = ev
	}
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
	}
	return nil
}

type endpointView struct {
	ID           int64      `json:"id"`
	URL          string     `json:"url"`
	Events       []string   `json:"events"`
	Enabled      bool       `json:"enabled"`
	Status       string     `json:"status"` // healthy, failing
	FailingSince *time.Time `json:"failing_since"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	// Secret is shown once: in the answer to the creation and to a
	// rotation.
	Secret string `json:"secret,omitempty"`
}

func endpointStatus(e *store.WebhookEndpoint) string {
	if e.FailingSince.IsZero() {
		return "healthy"
	}
	return "failing"
}

func viewEndpoint(e *store.WebhookEndpoint) *endpointView {
	v := &endpointView{ID: e.ID, URL: e.URL, Events: e.Events, Enabled: e.Enabled, Status: endpointStatus(e),
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
	if !e.FailingSince.IsZero() {
		t := e.FailingSince
		v.FailingSince = &t
	}
	return v
}

type deliveryView struct {
	ID            int64      `json:"id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	EndpointID    int64      `json:"endpoint_id"`
	Status        string     `json:"status"` // pending, delivered, failed
	Attempts      int        `json:"attempts"`
	LastStatus    *int       `json:"last_status"` // the last answer's HTTP status; null without one
	LastError     *string    `json:"last_error"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"` // pending only
	DeliveredAt   *time.Time `json:"delivered_at"`
	CreatedAt     time.Time  `json:"created_at"`
}

func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func viewDelivery(d *store.WebhookDelivery) *deliveryView {
	v := &deliveryView{ID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID,
		Status: d.Status, Attempts: d.Attempts, LastError: orNull(d.LastError),
		LastAttemptAt: timeOrNull(d.LastAttemptAt), NextAttemptAt: timeOrNull(d.NextAttemptAt),
		DeliveredAt: timeOrNull(d.DeliveredAt), CreatedAt: d.CreatedAt}
	if d.LastStatus != 0 {
		st := d.LastStatus
		v.LastStatus = &st
	}
	return v
}

// --- operations shared by the admin API and the admin page ---

// createEndpoint stores a new endpoint of p; its secret is in the
// returned endpoint, to be shown once.
func (s *Server) createEndpoint(ctx context.Context, p *store.Program, in *endpointJSONIn) (*store.WebhookEndpoint, error) {
	if in.URL == nil {
		return nil, invalid("url", "url is required.")
	}
	if in.Events == nil {
		all := append([]string(nil), store.EventTypes...)
		in.Events = &all
	}
	e := &store.WebhookEndpoint{ProgramID: p.ID, Enabled: true, Secret: newEndpointSecret()}
	if err := in.apply(e); err != nil {
		return nil, err
	}
	err := s.store.Write(ctx, func(tx *store.Tx) error {
		n, err := tx.CountWebhookEndpoints(p.ID)
		if err != nil {
			return err
		}
		if n >= maxEndpoints {
			return errTooManyEndpoints
		}
		return tx.InsertWebhookEndpoint(e)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Server) updateEndpoint(ctx context.Context, p *store.Program, id int64, in *endpointJSONIn) (*store.WebhookEndpoint, error) {
	var e *store.WebhookEndpoint
	err := s.store.Write(ctx, func(tx *store.Tx) (err error) {
		if e, err = tx.WebhookEndpoint(p.ID, id); err != nil {
			return err
		}
		if err := in.apply(e); err != nil {
			return err
		}
		return tx.UpdateWebhookEndpoint(e)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errEndpointMissing
	}
	return e, err
}

// rotateEndpointSecret gives the endpoint a new secret, returned once; the
// old one signs beside it for endpointSecretGrace.
func (s *Server) rotateEndpointSecret(ctx context.Context, p *store.Program, id int64) (*store.WebhookEndpoint, error) {
	secret := newEndpointSecret()
	var e *store.WebhookEndpoint
	err := s.store.Write(ctx, func(tx *store.Tx) (err error) {
		if err := tx.RotateWebhookSecret(p.ID, id, secret, endpointSecretGrace); err != nil {
			return err
		}
		e, err = tx.WebhookEndpoint(p.ID, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errEndpointMissing
	}
	return e, err
}

func (s *Server) deleteEndpoint(ctx context.Context, p *store.Program, id int64) error {
	err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.DeleteWebhookEndpoint(p.ID, id) })
	if errors.Is(err, store.ErrNotFound) {
		return errEndpointMissing
	}
	return err
}

// resendDelivery sends a delivery again with its event id.
func (s *Server) resendDelivery(ctx context.Context, p *store.Program, id int64) error {
	err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.ResendWebhookDelivery(p.ID, id) })
	if errors.Is(err, store.ErrNotFound) {
		return errDeliveryMissing
	}
	if err == nil && s.webhooks != nil {
		s.webhooks.Wake()
	}
	return err
}

// idParam reads a positive integer path parameter.
func idParam(c *fiber.Ctx, name string, missing *Error) (int64, error) {
	id, err := strconv.ParseInt(c.Params(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, missing
	}
	return id, nil
}

// --- the admin API ---

func (s *Server) outgoingRoutes(adm fiber.Router) {
	adm.Get("/programs/:id/webhooks", s.adminListEndpoints)
	adm.Post("/programs/:id/webhooks", s.adminCreateEndpoint)
	adm.Get("/programs/:id/webhooks/:wid", s.adminGetEndpoint)
	adm.Patch("/programs/:id/webhooks/:wid", s.adminPatchEndpoint)
	adm.Delete("/programs/:id/webhooks/:wid", s.adminDeleteEndpoint)
	adm.Post("/programs/:id/webhooks/:wid/rotate", s.adminRotateEndpoint)
	adm.Get("/programs/:id/webhooks/:wid/deliveries", s.adminListDeliveries)
	adm.Post("/programs/:id/webhooks/:wid/deliveries/:did/resend", s.adminResendDelivery)
}

func (s *Server) adminListEndpoints(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	list, err := s.store.WebhookEndpoints(c.UserContext(), p.ID)
	if err != nil {
		return err
	}
	out := make([]*endpointView, len(list))
	for i, e := range list {
		out[i] = viewEndpoint(e)
	}
	return c.JSON(fiber.Map{"data": out})
}

func (s *Server) adminCreateEndpoint(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	var in endpointJSONIn
	if err := decodeStrictJSON(c, &in); err != nil {
		return err
	}
	e, err := s.createEndpoint(c.UserContext(), p, &in)
	if err != nil {
		return err
	}
	v := viewEndpoint(e)
	v.Secret = e.Secret
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"data": v})
}

// endpointParam loads the :id program and its :wid endpoint.
func (s *Server) endpointParam(c *fiber.Ctx) (*store.Program, *store.WebhookEndpoint, error) {
	p, err := s.programParam(c)
	if err != nil {
		return nil, nil, err
	}
	id, err := idParam(c, "wid", errEndpointMissing)
	if err != nil {
		return nil, nil, err
	}
	e, err := s.store.WebhookEndpoint(c.UserContext(), p.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errEndpointMissing
	}
	return p, e, err
}

func (s *Server) adminGetEndpoint(c *fiber.Ctx) error {
	_, e, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": viewEndpoint(e)})
}

func (s *Server) adminPatchEndpoint(c *fiber.Ctx) error {
	p, e, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	var in endpointJSONIn
	if err := decodeStrictJSON(c, &in); err != nil {
		return err
	}
	if e, err = s.updateEndpoint(c.UserContext(), p, e.ID, &in); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": viewEndpoint(e)})
}

func (s *Server) adminDeleteEndpoint(c *fiber.Ctx) error {
	p, e, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	if err := s.deleteEndpoint(c.UserContext(), p, e.ID); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) adminRotateEndpoint(c *fiber.Ctx) error {
	p, e, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	if e, err = s.rotateEndpointSecret(c.UserContext(), p, e.ID); err != nil {
		return err
	}
	v := viewEndpoint(e)
	v.Secret = e.Secret
	return c.JSON(fiber.Map{"data": v})
}

func (s *Server) adminListDeliveries(c *fiber.Ctx) error {
	p, e, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	f := store.DeliveryFilter{ProgramID: p.ID, EndpointID: e.ID, Limit: 50}
	if st := c.Query("status"); st != "" {
		if st != store.DeliveryPending && st != store.DeliveryDelivered && st != store.DeliveryFailed {
			return invalid("status", "status is pending, delivered or failed.")
		}
		f.Status = st
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			return invalid("limit", "limit is 1 to 200.")
		}
		f.Limit = n
	}
	list, err := s.store.WebhookDeliveries(c.UserContext(), f)
	if err != nil {
		return err
	}
	out := make([]*deliveryView, len(list))
	for i, d := range list {
		out[i] = viewDelivery(d)
	}
	return c.JSON(fiber.Map{"data": out})
}

func (s *Server) adminResendDelivery(c *fiber.Ctx) error {
	p, e, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	id, err := idParam(c, "did", errDeliveryMissing)
	if err != nil {
		return err
	}
	d, err := s.store.WebhookDelivery(c.UserContext(), p.ID, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.EndpointID != e.ID) {
		return errDeliveryMissing
	}
	if err != nil {
		return err
	}
	if err := s.resendDelivery(c.UserContext(), p, id); err != nil {
		return err
	}
	if d, err = s.store.WebhookDelivery(c.UserContext(), p.ID, id); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"data": viewDelivery(d)})
}
