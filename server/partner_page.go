package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	potrack "github.com/potrack/potrack"
	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The partner page (docs/partner-page.md): each partner may have a
// private, read-only page at /p/{token}, where the token is 32 random
// bytes in base64url. Only its SHA-256 hash is stored, and a request is
// found by that hash through a unique index: no stored secret is compared
// with what a visitor sends. The page shows one partner's own numbers and
// nothing of the program's settings or of other partners. The merchant
// makes, rotates and revokes the link in the admin page or API; the link
// is shown once, when made.

// pageTokenRe is what a token looks like: 43 base64url characters.
var pageTokenRe = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func newPageToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// partnerPageURL is the address of a partner page.
func (s *Server) partnerPageURL(c *fiber.Ctx, token string) string {
	return s.publicURL(c) + "/p/" + token
}

// makePartnerPage gives the partner a new link (a first one, or a
// rotation that ends the old one) and returns its token, known in clear
// only here.
func (s *Server) makePartnerPage(ctx context.Context, partner *store.Partner) (string, error) {
	token := newPageToken()
	err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.SetPartnerPage(partner.ID, hashSecret(token)) })
	return token, err
}

// revokePartnerPage ends the partner's link; a link already ended is what
// was asked.
func (s *Server) revokePartnerPage(ctx context.Context, partner *store.Partner) error {
	err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.RevokePartnerPage(partner.ID) })
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// partnerKeyParam loads the :key partner of p.
func (s *Server) partnerKeyParam(c *fiber.Ctx, p *store.Program) (*store.Partner, error) {
	key, err := url.PathUnescape(c.Params("key"))
	if err != nil || checkText("key", key, maxKeyLen, true) != nil {
		return nil, errPartnerMissing
	}
	partner, err := s.store.Partner(c.UserContext(), p.ID, store.PartnerRef{Key: key})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errPartnerMissing
	}
	return partner, err
}

type partnerPageView struct {
	Active    bool       `json:"active"`
	URL       string     `json:"url,omitempty"` // in the answer that made the link only
	CreatedAt *time.Time `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func viewPartnerPage(pp *store.PartnerPage) partnerPageView {
	v := partnerPageView{}
	if pp == nil {
		return v
	}
	v.Active = pp.Active()
	created := pp.CreatedAt
	v.CreatedAt = &created
	if !pp.RevokedAt.IsZero() {
		revoked := pp.RevokedAt
		v.RevokedAt = &revoked
	}
	return v
}

func (s *Server) partnerPageState(ctx context.Context, partner *store.Partner) (*store.PartnerPage, error) {
	pp, err := s.store.PartnerPage(ctx, partner.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return pp, err
}

func (s *Server) adminGetPartnerPage(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	partner, err := s.partnerKeyParam(c, p)
	if err != nil {
		return err
	}
	pp, err := s.partnerPageState(c.UserContext(), partner)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": viewPartnerPage(pp)})
}

// adminMakePartnerPage makes or rotates the link; the answer carries it,
// once.
func (s *Server) adminMakePartnerPage(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	partner, err := s.partnerKeyParam(c, p)
	if err != nil {
		return err
	}
	token, err := s.makePartnerPage(c.UserContext(), partner)
	if err != nil {
		return err
	}
	pp, err := s.partnerPageState(c.UserContext(), partner)
	if err != nil {
		return err
	}
	v := viewPartnerPage(pp)
	v.URL = s.partnerPageURL(c, token)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"data": v})
}

func (s *Server) adminRevokePartnerPage(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	partner, err := s.partnerKeyParam(c, p)
	if err != nil {
		return err
	}
	if err := s.revokePartnerPage(c.UserContext(), partner); err != nil {
		return err
	}
	pp, err := s.partnerPageState(c.UserContext(), partner)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": viewPartnerPage(pp)})
}

// --- the page itself ---

var (
	partnerPageOnce sync.Once
	partnerPageTmpl *template.Template
	partnerPageErr  error
)

func partnerPageTemplate() (*template.Template, error) {
	partnerPageOnce.Do(func() {
		partnerPageTmpl, partnerPageErr = template.New("partner_page").Funcs(templateFuncs).
			ParseFS(potrack.WebFS, "templates/partner_page.html")
	})
	return partnerPageTmpl, partnerPageErr
}

// maxPageRows bounds each list of the partner page.
const maxPageRows = 50

type pageCustomer struct {
	Email     string // masked
	CreatedAt time.Time
}

type partnerPageData struct {
	CSS, Icon string
	Program   string
	Partner   *store.Partner
	Link      string
	Codes     []string
	Totals    *store.PartnerTotals
	Balances  []store.Balance
	States    []store.RewardCount
	Rewards   []store.RewardLedger
	Customers []pageCustomer
	Payouts   []store.PartnerPayout
	HoldDays  int
}

// setPartnerPageHeaders: as an admin page's, and the token in the address
// never leaves in a Referer, nor reaches a search engine.
func setPartnerPageHeaders(c *fiber.Ctx) {
	setPageHeaders(c)
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set("X-Robots-Tag", "noindex, nofollow")
}

// partnerPublicPage is GET /p/{token}.
func (s *Server) partnerPublicPage(c *fiber.Ctx) error {
	setPartnerPageHeaders(c)
	token := c.Params("token")
	var partner *store.Partner
	err := store.ErrNotFound
	if pageTokenRe.MatchString(token) {
		partner, err = s.store.PartnerByPageToken(c.UserContext(), hashSecret(token))
	}
	if errors.Is(err, store.ErrNotFound) {
		// Wrong tokens are counted per client IP, as wrong admin tokens
		// are: past ten a minute the answer is 429.
		lc, _ := s.limits.adminGuess.take(c.UserContext(), "page:"+ipLimitKey(s.clientIP(c)))
		if lc.Reached {
			setLimitHeaders(c, lc)
			return plainPage(c, fiber.StatusTooManyRequests, "Too many tries", "Too many addresses that do not work were tried from your network. Wait a minute, then open your link again.")
		}
		return plainPage(c, fiber.StatusNotFound, "This link does not work", "This partner page does not exist, or its link was replaced or ended. Ask the program for your current link.")
	}
	if err != nil {
		return err
	}
	d, err := s.partnerPageData(c.UserContext(), c, partner)
	if err != nil {
		return err
	}
	t, err := partnerPageTemplate()
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "page", d); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(b.String())
}

// partnerPageData gathers what one partner's page shows: everything is
// read by the partner's id, so nothing of another partner can appear.
func (s *Server) partnerPageData(ctx context.Context, c *fiber.Ctx, partner *store.Partner) (*partnerPageData, error) {
	p, err := s.store.Program(ctx, partner.ProgramID)
	if err != nil {
		return nil, err
	}
	d := &partnerPageData{CSS: s.web.css.url, Icon: s.web.icon.url, Program: p.Name, Partner: partner,
		Link: s.partnerLink(c, p, partner.Key), HoldDays: p.HoldDays}
	coupons, _, err := s.store.Coupons(ctx, store.CouponFilter{ProgramID: p.ID, PartnerID: partner.ID})
	if err != nil {
		return nil, err
	}
	for _, k := range coupons {
		d.Codes = append(d.Codes, k.Code)
	}
	if d.Totals, err = s.store.PartnerTotals(ctx, partner.ID); err != nil {
		return nil, err
	}
	if d.Balances, err = s.store.Balances(ctx, p.ID, partner.ID); err != nil {
		return nil, err
	}
	if d.States, err = s.store.RewardCounts(ctx, partner.ID); err != nil {
		return nil, err
	}
	if d.Rewards, err = s.store.PartnerRewards(ctx, partner.ID, maxPageRows); err != nil {
		return nil, err
	}
	customers, err := s.store.PartnerCustomers(ctx, partner.ID, maxPageRows)
	if err != nil {
		return nil, err
	}
	for _, cu := range customers {
		d.Customers = append(d.Customers, pageCustomer{Email: rules.MaskEmail(cu.Email), CreatedAt: cu.CreatedAt})
	}
	if d.Payouts, err = s.store.PartnerPayouts(ctx, partner.ID, maxPageRows); err != nil {
		return nil, err
	}
	return d, nil
}

// plainPage answers a short page of its own (no admin layout, nothing
// about the server).
func plainPage(c *fiber.Ctx, status int, title, message string) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Status(status).SendString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>` +
		template.HTMLEscapeString(title) + `</title></head><body><h1>` + template.HTMLEscapeString(title) + `</h1><p>` +
		template.HTMLEscapeString(message) + `</p></body></html>`)
}
