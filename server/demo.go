package server

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// The demo: `potrack serve --demo` on a new database creates a program with
// JS tracking on for the server's own origin, a partner, and a small shop
// under /demo/ that uses the real loader and po() calls. A newcomer follows
// the partner's link, buys, and sees the sale in the admin page.

const (
	demoProgramSetting = "demo_program_id"
	demoPartnerKey     = "demo-partner"
	demoProductPrice   = "49.00"
	demoCurrency       = "USD"
)

var demoPages = []string{"landing", "product", "thanks"}

// seedDemo fills a database that has no programs yet. On later starts it
// finds the demo program again, for the banner and the shop pages. The
// check and the seeding are one write, so of several instances starting
// together on one database (PostgreSQL) one seeds and the others find its
// demo.
func (s *Server) seedDemo(ctx context.Context) error {
	id, err := s.store.Setting(ctx, demoProgramSetting)
	if errors.Is(err, store.ErrNotFound) {
		id, err = s.seedDemoOnce(ctx)
	}
	if err != nil || id == "" {
		return err
	}
	p, err := s.store.Program(ctx, id)
	if err != nil {
		return nil // the demo program is gone; leave the database be
	}
	s.demoProgramID = id
	// A later start may listen on another port: keep the demo shop's
	// own origins allowed, or its sales would be refused.
	origins := p.AllowedOrigins
	for _, o := range s.ownOrigins() {
		if !contains(origins, o) {
			origins = append(origins, o)
		}
	}
	if len(origins) == len(p.AllowedOrigins) {
		return nil
	}
	_, err = s.updateProgram(ctx, id, &programJSONIn{AllowedOrigins: &origins})
	return err
}

// seedDemoOnce seeds the demo into a database without programs and
// returns the demo program's id: its own, or the one another instance
// seeded first; "" when the database holds other programs.
func (s *Server) seedDemoOnce(ctx context.Context) (string, error) {
	name, on := "Demo shop", true
	origins := s.ownOrigins()
	p, sec, err := makeProgram(&programJSONIn{Name: &name, JSTracking: &on, AllowedOrigins: &origins})
	if err != nil {
		return "", err
	}
	var id string
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		id = ""
		seeded, err := tx.Setting(demoProgramSetting)
		if err == nil {
			id = seeded
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if any, err := tx.AnyProgram(); err != nil || any {
			return err
		}
		if err := tx.InsertProgram(p, hashSecret(sec.APIKey)); err != nil {
			return err
		}
		if _, _, err := tracking.CreatePartner(tx, p, tracking.PartnerInput{Key: demoPartnerKey, Name: "Demo Partner", Email: "partner@example.com"}); err != nil {
			return err
		}
		id = p.ID
		return tx.SetSetting(demoProgramSetting, p.ID)
	})
	return id, err
}

// ownOrigins are the origins a browser on this machine reaches the server
// at: the public URL's, or localhost and 127.0.0.1 on the listening port.
func (s *Server) ownOrigins() []string {
	var out []string
	if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Host != "" {
		if o, err := normalizeOrigin(u.Scheme + "://" + u.Host); err == nil {
			out = append(out, o)
		}
	}
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil || port == "" {
		port = "8080"
	}
	candidates := []string{"http://localhost:" + port, "http://127.0.0.1:" + port}
	if host != "" && host != "0.0.0.0" && host != "::" {
		candidates = append(candidates, "http://"+net.JoinHostPort(host, port))
	}
	for _, c := range candidates {
		if o, err := normalizeOrigin(c); err == nil && !contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// baseURL is where the banner sends people: the public URL, or this
// machine's port.
func (s *Server) baseURL() string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	_, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil || port == "" {
		port = "8080"
	}
	return "http://localhost:" + port
}

// Banner is the start-up text: where the admin page is, the admin token
// when it is known in clear, and the demo's referral link.
func (s *Server) Banner() string {
	base := s.baseURL()
	var b strings.Builder
	fmt.Fprintf(&b, "\npotrack is running.\n\n  Admin page:      %s/admin\n", base)
	switch {
	case s.GeneratedAdminToken != "":
		fmt.Fprintf(&b, "  Admin token:     %s\n                   (generated now and stored hashed: it is not shown again)\n", s.GeneratedAdminToken)
	case s.cfg.AdminToken != "" && s.cfg.Demo:
		// A local demo: whoever started it needs the token to sign in.
		fmt.Fprintf(&b, "  Admin token:     %s\n", s.cfg.AdminToken)
	case s.cfg.AdminToken != "":
		// A chosen token is the operator's secret: keep it out of logs.
		b.WriteString("  Admin token:     the one set by --admin-token / POTRACK_ADMIN_TOKEN\n")
	default:
		b.WriteString("  Admin token:     the one printed on the first start, or the last one set with POTRACK_ADMIN_TOKEN\n")
	}
	if s.demoProgramID != "" {
		fmt.Fprintf(&b, "\n  Demo: open the partner's referral link, buy something, then see the sale in the admin page:\n\n"+
			"  Start page:      %s/\n  Referral link:   %s/demo/?aff=%s\n", base, base, demoPartnerKey)
	}
	b.WriteString("\n")
	return b.String()
}

// home is the first page a newcomer opens, http://localhost:8080/: with the
// demo, a page that links the demo shop and the admin page; otherwise the
// admin page itself.
func (s *Server) home(c *fiber.Ctx) error {
	if s.demoProgramID == "" {
		return c.Redirect("/admin", fiber.StatusFound)
	}
	setPageHeaders(c)
	sess, _ := s.currentSession(c)
	data := struct{ ReferralLink string }{"/demo/?aff=" + url.QueryEscape(demoPartnerKey)}
	return s.render(c, fiber.StatusOK, "home", sess, &pageData{Title: "Welcome", Data: data})
}

// demoRoutes mounts the demo shop under /demo.
func (s *Server) demoRoutes(app *fiber.App) {
	// Fiber routes are not strict: this is /demo and /demo/.
	app.Get("/demo/", s.demoPage("landing"))
	app.Get("/demo/product", s.demoPage("product"))
	app.Get("/demo/thanks", s.demoPage("thanks"))
}

var demoOrderRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

type demoData struct {
	Loader   template.HTML // the real loader snippet, as a merchant pastes it
	Partner  string        // the referral cookie's partner, when set
	Order    string
	Customer string
	Amount   string
	Currency string
	Price    string
	AdminURL string
}

func (s *Server) demoPage(name string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if s.demoProgramID == "" {
			return errNotFound.WithMessage("The demo shop exists only in a database seeded with --demo.")
		}
		p, err := s.store.Program(c.UserContext(), s.demoProgramID)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound.WithMessage("The demo program was deleted.")
		}
		if err != nil {
			return err
		}
		v := s.viewProgram(c, p)
		d := demoData{
			// The loader is our own code, with both values JSON-encoded
			// by snippet.Loader.
			Loader:   template.HTML(v.Snippet),
			Partner:  c.Cookies("partnero_partner"),
			Amount:   demoProductPrice,
			Currency: demoCurrency,
			Price:    "$" + demoProductPrice,
			AdminURL: "/admin/programs/" + url.PathEscape(p.ID) + "/transactions",
		}
		switch name {
		case "product":
			d.Order = "demo_" + randomToken(6)
		case "thanks":
			d.Order = c.Query("order")
			if !demoOrderRe.MatchString(d.Order) {
				return c.Redirect("/demo/product", fiber.StatusSeeOther)
			}
			d.Customer = "cust_" + d.Order
		}
		var b strings.Builder
		if err := s.web.demo[name].ExecuteTemplate(&b, "layout", d); err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.SendString(b.String())
	}
}
