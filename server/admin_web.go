package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	potrack "github.com/potrack/potrack"
)

// The admin web page: server-rendered HTML from web/templates, one
// stylesheet and a few lines of script for copy buttons. Every page works
// without JavaScript. Sessions and CSRF tokens are in admin_web_session.go,
// the handlers in admin_web_pages.go.

// adminWeb is what the admin page keeps between requests.
type adminWeb struct {
	pages map[string]*template.Template
	css   staticAsset
	js    staticAsset
	icon  staticAsset // favicon.svg, linked from every page
	png   staticAsset // the same icon as PNG, served at /favicon.ico
	demo  templates   // the demo shop's pages
}

type templates = map[string]*template.Template

// staticAsset is a file served with its content hash as ETag and in its URL.
type staticAsset struct {
	body        []byte
	contentType string
	etag        string
	url         string
}

// adminPages are the page templates; each is parsed with the layout.
var adminPages = []string{"login", "programs", "program", "partners", "customers", "transactions", "refund", "error", "home", "webhooks", "webhook_confirm"}

func newAdminWeb(web fs.FS) (*adminWeb, error) {
	w := &adminWeb{pages: templates{}, demo: templates{}}
	for _, name := range adminPages {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(web, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("admin template %s: %w", name, err)
		}
		w.pages[name] = t
	}
	for _, name := range demoPages {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(web, "demo/layout.html", "demo/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("demo template %s: %w", name, err)
		}
		w.demo[name] = t
	}
	var err error
	if w.css, err = loadStatic(web, "static/admin.css", "text/css; charset=utf-8"); err != nil {
		return nil, err
	}
	if w.js, err = loadStatic(web, "static/admin.js", "application/javascript; charset=utf-8"); err != nil {
		return nil, err
	}
	if w.icon, err = loadStatic(web, "static/favicon.svg", "image/svg+xml"); err != nil {
		return nil, err
	}
	if w.png, err = loadStatic(web, "static/favicon.png", "image/png"); err != nil {
		return nil, err
	}
	return w, nil
}

func loadStatic(web fs.FS, name, contentType string) (staticAsset, error) {
	b, err := fs.ReadFile(web, name)
	if err != nil {
		return staticAsset{}, err
	}
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:8])
	return staticAsset{body: b, contentType: contentType, etag: `"` + hash + `"`,
		url: "/admin/" + name + "?v=" + hash}, nil
}

// handler serves the asset. Its URL carries the content hash, so it can be
// cached for ever; a changed file gets a new URL.
func (a staticAsset) handler(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, a.contentType)
	c.Set(fiber.HeaderETag, a.etag)
	c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	c.Set("X-Content-Type-Options", "nosniff")
	if strings.Contains(c.Get(fiber.HeaderIfNoneMatch), a.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	return c.Send(a.body)
}

// adminWebRoutes mounts the admin web page under /admin. The JSON API under
// /admin/api is separate and takes the bearer token instead.
func (s *Server) adminWebRoutes(app *fiber.App) {
	w, err := newAdminWeb(potrack.WebFS)
	if err != nil {
		// The templates are embedded in the binary: a broken one is a
		// build defect that every test run catches.
		panic(err)
	}
	s.web = w

	app.Get("/admin/static/admin.css", w.css.handler)
	app.Get("/admin/static/admin.js", w.js.handler)
	app.Get("/admin/static/favicon.svg", w.icon.handler)
	// Browsers ask for /favicon.ico on their own; its URL has no hash, so
	// it is cached for a day, not for ever.
	app.Get("/favicon.ico", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, w.png.contentType)
		c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
		return c.Send(w.png.body)
	})

	app.Get("/admin/login", s.loginPage)
	app.Post("/admin/login", s.login)
	app.Post("/admin/logout", s.logout)

	app.Get("/admin", s.page(s.programsPage))
	app.Post("/admin/programs", s.form(s.createProgramForm))
	app.Get("/admin/programs/:id", s.page(s.programPage))
	app.Post("/admin/programs/:id/settings/:section", s.form(s.updateProgramForm))
	app.Post("/admin/programs/:id/rotate", s.form(s.rotateSecretForm))
	app.Get("/admin/programs/:id/partners", s.page(s.partnersPage))
	app.Post("/admin/programs/:id/partners", s.form(s.createPartnerForm))
	app.Post("/admin/programs/:id/coupons", s.form(s.createCouponForm))
	app.Post("/admin/programs/:id/coupons/delete", s.form(s.deleteCouponForm))
	app.Get("/admin/programs/:id/customers", s.page(s.customersPage))
	app.Get("/admin/programs/:id/transactions", s.page(s.transactionsPage))
	app.Get("/admin/programs/:id/refund", s.page(s.refundPage))
	app.Post("/admin/programs/:id/refund", s.form(s.refundForm))
	s.payoutWebRoutes(app) // the Payouts tab and a partner's page (admin_web_payouts.go)
	s.outgoingWebRoutes(app)

	s.adminPageRoutes(app) // issue 14's pages (admin_web_program.go)

	// Anything else under /admin is a page that does not exist; the JSON
	// API keeps its own JSON answers.
	app.Use("/admin", func(c *fiber.Ctx) error {
		if strings.HasPrefix(c.Path(), "/admin/api") {
			return c.Next()
		}
		setPageHeaders(c)
		return s.errorPage(c, errNotFound.WithMessage("There is no admin page at this address."))
	})
}

// webHandler is an admin page handler for a signed-in merchant.
type webHandler func(c *fiber.Ctx, sess *session) error

// page wraps a GET handler: without a session it sends the browser to the
// sign-in page, and errors become an HTML page, not JSON.
func (s *Server) page(h webHandler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		setPageHeaders(c)
		sess, err := s.currentSession(c)
		if err != nil {
			return s.errorPage(c, err)
		}
		if sess == nil {
			next := c.OriginalURL()
			return c.Redirect("/admin/login?next="+url.QueryEscape(next), fiber.StatusSeeOther)
		}
		if err := h(c, sess); err != nil {
			return s.errorPage(c, err)
		}
		return nil
	}
}

// form wraps a POST handler: it needs a same-site request, a session and
// the session's CSRF token, or it answers 403.
func (s *Server) form(h webHandler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		sess, err := s.formSession(c)
		if err == nil && sess == nil {
			err = errForbidden.WithMessage("Your session has ended. Sign in again and repeat the change.")
		}
		if err == nil {
			err = h(c, sess)
		}
		if err != nil {
			return s.errorPage(c, err)
		}
		return nil
	}
}

// formSession checks a posted form: it must come from this site and, when
// the browser has a session, carry that session's CSRF token. The session
// is nil when there is none.
func (s *Server) formSession(c *fiber.Ctx) (*session, error) {
	setPageHeaders(c)
	if !s.sameOrigin(c) {
		return nil, errForbidden.WithMessage("This form was sent from another site. Open the admin page and try again.")
	}
	sess, err := s.currentSession(c)
	if err != nil || sess == nil {
		return nil, err
	}
	if !sess.validCSRF(c.FormValue("csrf")) {
		return nil, errForbidden.WithMessage("The form was out of date or incomplete. Reload the page and try again.")
	}
	return sess, nil
}

// setPageHeaders keeps admin pages out of caches and frames, and lets them
// run only our own script and stylesheet.
func setPageHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "same-origin")
}

// pageData is what every admin template gets; Data holds the page's own.
type pageData struct {
	Title    string
	CSS, JS  string
	Icon     string
	CSRF     string
	SignedIn bool
	Program  *programView // the program whose tabs are shown
	Tab      string
	Flash    string
	Data     any
}

func (s *Server) render(c *fiber.Ctx, status int, name string, sess *session, d *pageData) error {
	t, ok := s.web.pages[name]
	if !ok {
		return fmt.Errorf("no admin template %q", name)
	}
	d.CSS, d.JS, d.Icon = s.web.css.url, s.web.js.url, s.web.icon.url
	if sess != nil {
		d.SignedIn, d.CSRF = true, sess.csrf
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		return err
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(b.String())
}

// errorPage shows an error as a page a merchant can act on.
func (s *Server) errorPage(c *fiber.Ctx, err error) error {
	e := asError(err)
	if e.Status >= 500 {
		slog.Error("admin page failed", "method", c.Method(), "path", c.Path(), "err", err)
		s.store.NoteReadError(err)
	}
	sess, _ := s.currentSession(c)
	title := "Something went wrong"
	switch {
	case e.Status == fiber.StatusForbidden:
		title = "Not allowed"
	case e.Status == fiber.StatusNotFound:
		title = "Not found"
	case e.Status < 500:
		title = "That did not work"
	}
	rerr := s.render(c, e.Status, "error", sess, &pageData{Title: title, Data: e})
	if rerr != nil {
		// The error page itself failed: fall back to the JSON error body.
		return errors.Join(err, rerr)
	}
	return nil
}
