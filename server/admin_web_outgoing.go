package server

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// The admin page's Webhooks tab: a program's endpoints with their status
// (healthy or failing), a form to add one, rotating a secret and deleting
// an endpoint (each asks first, on a page of its own, so it works without
// JavaScript), switching one on or off, and the recent deliveries with a
// resend button. Every change goes through the same functions as the
// admin API (outgoing.go).

func (s *Server) outgoingWebRoutes(app *fiber.App) {
	app.Get("/admin/programs/:id/webhooks", s.page(s.webhooksPage))
	app.Post("/admin/programs/:id/webhooks", s.form(s.createEndpointForm))
	app.Get("/admin/programs/:id/webhooks/:wid/rotate", s.page(s.confirmEndpointPage("rotate")))
	app.Post("/admin/programs/:id/webhooks/:wid/rotate", s.form(s.rotateEndpointForm))
	app.Get("/admin/programs/:id/webhooks/:wid/delete", s.page(s.confirmEndpointPage("delete")))
	app.Post("/admin/programs/:id/webhooks/:wid/delete", s.form(s.deleteEndpointForm))
	app.Post("/admin/programs/:id/webhooks/:wid/enabled", s.form(s.enableEndpointForm))
	app.Post("/admin/programs/:id/webhooks/deliveries/:did/resend", s.form(s.resendDeliveryForm))
}

// endpointFormData is the add-an-endpoint form as entered, with its error.
type endpointFormData struct {
	URL    string
	Events map[string]bool
	Error  *Error
}

type endpointRow struct {
	*store.WebhookEndpoint
	Status string // healthy, failing
	Stats  store.WebhookEndpointStats
}

type webhooksData struct {
	Endpoints  []endpointRow
	EventTypes []string
	Form       endpointFormData
	Secret     *shownSecret // a secret just made, shown once
	Deliveries []*store.WebhookDelivery
	Filter     int64 // the endpoint whose deliveries are listed; 0: all
	FilterURL  string
}

var webhookSaved = map[string]string{
	"deleted":  "Endpoint deleted. Its deliveries, sent or not, are gone with it.",
	"enabled":  "Endpoint switched on. Deliveries waiting for it are sent now.",
	"disabled": "Endpoint switched off. New events are not queued for it; deliveries already queued wait until it is on again.",
	"resent":   "Delivery queued again, with the same webhook-id: it is sent within seconds.",
}

func (s *Server) webhooksPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	all := map[string]bool{}
	for _, t := range store.EventTypes {
		all[t] = true
	}
	return s.renderWebhooks(c, sess, fiber.StatusOK, p, webhooksData{Form: endpointFormData{Events: all}}, webhookSaved[c.Query("saved")])
}

func (s *Server) renderWebhooks(c *fiber.Ctx, sess *session, status int, p *store.Program, d webhooksData, flash string) error {
	ctx := c.UserContext()
	list, err := s.store.WebhookEndpoints(ctx, p.ID)
	if err != nil {
		return err
	}
	stats, err := s.store.WebhookEndpointStats(ctx, p.ID)
	if err != nil {
		return err
	}
	for _, e := range list {
		r := endpointRow{WebhookEndpoint: e, Status: endpointStatus(e)}
		if st := stats[e.ID]; st != nil {
			r.Stats = *st
		}
		d.Endpoints = append(d.Endpoints, r)
	}
	d.EventTypes = store.EventTypes
	if n, err := strconv.ParseInt(c.Query("endpoint"), 10, 64); err == nil && n > 0 {
		for _, e := range list {
			if e.ID == n {
				d.Filter, d.FilterURL = n, e.URL
			}
		}
	}
	if d.Deliveries, err = s.store.WebhookDeliveries(ctx, store.DeliveryFilter{ProgramID: p.ID, EndpointID: d.Filter, Limit: 50}); err != nil {
		return err
	}
	return s.render(c, status, "webhooks", sess, &pageData{Title: "Webhooks · " + p.Name,
		Program: s.viewProgram(c, p), Tab: "webhooks", Flash: flash, Data: d})
}

func webhooksBack(p *store.Program, saved, anchor string) string {
	return "/admin/programs/" + url.PathEscape(p.ID) + "/webhooks?saved=" + saved + anchor
}

func (s *Server) createEndpointForm(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	f := endpointFormData{URL: strings.TrimSpace(c.FormValue("url")), Events: map[string]bool{}}
	events := []string{}
	for _, t := range store.EventTypes {
		if c.FormValue("event."+t) != "" {
			events = append(events, t)
			f.Events[t] = true
		}
	}
	e, err := s.createEndpoint(c.UserContext(), p, &endpointJSONIn{URL: &f.URL, Events: &events})
	if fe := formError(err); fe != nil {
		if fe.Field == "events" {
			fe = fe.WithMessage("Tick at least one event to send.")
		}
		f.Error = fe
		return s.renderWebhooks(c, sess, fe.Status, p, webhooksData{Form: f}, "")
	}
	if err != nil {
		return err
	}
	all := map[string]bool{}
	for _, t := range store.EventTypes {
		all[t] = true
	}
	return s.renderWebhooks(c, sess, fiber.StatusCreated, p, webhooksData{Form: endpointFormData{Events: all},
		Secret: &shownSecret{"Signing secret for " + e.URL, e.Secret,
			"Your receiver verifies every delivery with it (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature)."}},
		"Endpoint added. It receives the events recorded from now on.")
}

// webEndpoint loads the :id program and its :wid endpoint.
func (s *Server) webEndpoint(c *fiber.Ctx) (*store.Program, *store.WebhookEndpoint, error) {
	return s.endpointParam(c)
}

type confirmData struct {
	Endpoint *store.WebhookEndpoint
	Action   string // rotate, delete
}

// confirmEndpointPage asks before rotating a secret (the receiver must
// switch within a day) or deleting an endpoint (its deliveries go too).
func (s *Server) confirmEndpointPage(action string) webHandler {
	return func(c *fiber.Ctx, sess *session) error {
		p, e, err := s.webEndpoint(c)
		if err != nil {
			return err
		}
		title := "Delete this endpoint?"
		if action == "rotate" {
			title = "Rotate the signing secret?"
		}
		return s.render(c, fiber.StatusOK, "webhook_confirm", sess, &pageData{Title: title,
			Program: s.viewProgram(c, p), Tab: "webhooks", Data: confirmData{Endpoint: e, Action: action}})
	}
}

func (s *Server) rotateEndpointForm(c *fiber.Ctx, sess *session) error {
	p, e, err := s.webEndpoint(c)
	if err != nil {
		return err
	}
	if e, err = s.rotateEndpointSecret(c.UserContext(), p, e.ID); err != nil {
		return err
	}
	all := map[string]bool{}
	for _, t := range store.EventTypes {
		all[t] = true
	}
	return s.renderWebhooks(c, sess, fiber.StatusOK, p, webhooksData{Form: endpointFormData{Events: all},
		Secret: &shownSecret{"New signing secret for " + e.URL, e.Secret,
			"Put it in your receiver's configuration within 24 hours: until then deliveries carry a signature under the old secret too."}},
		"Secret rotated.")
}

func (s *Server) deleteEndpointForm(c *fiber.Ctx, _ *session) error {
	p, e, err := s.webEndpoint(c)
	if err != nil {
		return err
	}
	if err := s.deleteEndpoint(c.UserContext(), p, e.ID); err != nil {
		return err
	}
	return c.Redirect(webhooksBack(p, "deleted", ""), fiber.StatusSeeOther)
}

func (s *Server) enableEndpointForm(c *fiber.Ctx, _ *session) error {
	p, e, err := s.webEndpoint(c)
	if err != nil {
		return err
	}
	on := c.FormValue("enabled") == "true"
	if _, err := s.updateEndpoint(c.UserContext(), p, e.ID, &endpointJSONIn{Enabled: &on}); err != nil {
		return err
	}
	if on && s.webhooks != nil {
		s.webhooks.Wake()
	}
	saved := "disabled"
	if on {
		saved = "enabled"
	}
	return c.Redirect(webhooksBack(p, saved, "#endpoints"), fiber.StatusSeeOther)
}

func (s *Server) resendDeliveryForm(c *fiber.Ctx, _ *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	id, err := idParam(c, "did", errDeliveryMissing)
	if err != nil {
		return err
	}
	if err := s.resendDelivery(c.UserContext(), p, id); err != nil {
		return err
	}
	back := webhooksBack(p, "resent", "")
	if n, err := strconv.ParseInt(c.FormValue("endpoint"), 10, 64); err == nil && n > 0 {
		back += "&endpoint=" + strconv.FormatInt(n, 10)
	}
	return c.Redirect(back+"#deliveries", fiber.StatusSeeOther)
}
