package server

import (
	"errors"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// Issue 14's program actions on the admin page: a new key or secret is
// made only after a confirmation page (no script needed), and shown once
// after a redirect (admin_web_once.go); programs are archived and
// restored.

func init() {
	// The pages this file and admin_web_reports.go add, parsed with the
	// layout like the others (adminPages).
	adminPages = append(adminPages, "rotate", "partner")
}

// adminPageRoutes mounts the pages of issue 14; adminWebRoutes calls it
// before its catch-all.
func (s *Server) adminPageRoutes(app *fiber.App) {
	app.Get("/admin/programs/:id/rotate", s.page(s.rotatePage))
	app.Post("/admin/programs/:id/archive", s.form(s.archiveForm))
	app.Post("/admin/programs/:id/restore", s.form(s.restoreForm))
	app.Get("/admin/programs/:id/partners/:key", s.page(s.partnerPage))
}

// rotation is what the confirmation page says about making a new secret.
type rotation struct {
	Name        string // "API key"
	Consequence string
}

var rotations = map[store.Secret]rotation{
	store.SecretAPIKey: {"API key", "The current API key stops working the moment the new one is made: " +
		"your server's REST API calls are refused (401) until it uses the new key."},
	store.SecretSigningSecret: {"signing secret", "The current signing secret stops working the moment the new one is made: " +
		"while signatures are required, browser sales your backend signed with it are refused until it signs with the new one."},
	store.SecretWebhookSecret: {"Stripe webhook secret", "The current Stripe webhook secret stops working the moment the new one is made: " +
		"Stripe's events are refused until the endpoint in Stripe signs with the new one. Stripe makes its own secrets: " +
		"usually you paste the one Stripe shows instead (Signing secret from Stripe)."},
}

type rotateData struct {
	Secret   store.Secret
	Rotation rotation
}

// rotatePage asks before making a new secret: the old one stops working
// at once, and the merchant's systems with it.
func (s *Server) rotatePage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	which := store.Secret(c.Query("secret"))
	r, ok := rotations[which]
	if !ok {
		return errNotFound.WithMessage("There is no such secret to make anew: api_key, signing_secret or webhook_secret.")
	}
	return s.render(c, fiber.StatusOK, "rotate", sess, &pageData{Title: "Make a new " + r.Name,
		Program: s.viewProgram(c, p), Tab: "setup", Data: rotateData{which, r}})
}

// archivedAt reports when p was archived, zero when it is not.
func (s *Server) archived(c *fiber.Ctx, programID string) (bool, error) {
	list, err := s.store.ArchivedPrograms(c.UserContext())
	if err != nil {
		return false, err
	}
	_, ok := list[programID]
	return ok, nil
}

func (s *Server) setArchived(c *fiber.Ctx, on bool) (*store.Program, error) {
	p, err := s.webProgram(c)
	if err != nil {
		return nil, err
	}
	err = s.store.Write(c.UserContext(), func(tx *store.Tx) error { return tx.SetProgramArchived(p.ID, on) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, errProgramNotFound
	}
	return p, err
}

// archiveForm hides a program from the home list. Nothing else changes:
// its script, REST API and gateway webhooks keep working.
func (s *Server) archiveForm(c *fiber.Ctx, _ *session) error {
	p, err := s.setArchived(c, true)
	if err != nil {
		return err
	}
	return c.Redirect("/admin?archived="+url.QueryEscape(p.ID), fiber.StatusSeeOther)
}

func (s *Server) restoreForm(c *fiber.Ctx, _ *session) error {
	p, err := s.setArchived(c, false)
	if err != nil {
		return err
	}
	return c.Redirect("/admin/programs/"+url.PathEscape(p.ID)+"?saved=restored", fiber.StatusSeeOther)
}
