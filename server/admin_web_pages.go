package server

import (
	"errors"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// The admin pages: programs, one program's setup, partners, customers and
// transactions. Writes go through the same functions as the admin JSON API
// (createProgram, updateProgram, rotateSecret) and the REST API (tracking).

// --- programs ---

type programsData struct {
	Programs []*programView
	Name     string
	Currency string
	Error    *Error
}

func (s *Server) programsPage(c *fiber.Ctx, sess *session) error {
	return s.renderPrograms(c, sess, fiber.StatusOK, programsData{Currency: "USD"})
}

func (s *Server) renderPrograms(c *fiber.Ctx, sess *session, status int, d programsData) error {
	list, err := s.store.Programs(c.UserContext())
	if err != nil {
		return err
	}
	for _, p := range list {
		d.Programs = append(d.Programs, s.viewProgram(c, p))
	}
	return s.render(c, status, "programs", sess, &pageData{Title: "Programs", Data: d})
}

func (s *Server) createProgramForm(c *fiber.Ctx, sess *session) error {
	name, cur := strings.TrimSpace(c.FormValue("name")), strings.TrimSpace(c.FormValue("currency"))
	if cur == "" {
		cur = "USD"
	}
	p, v, err := s.createProgram(c.UserContext(), &programJSONIn{Name: &name, Currency: &cur})
	if e := formError(err); e != nil {
		return s.renderPrograms(c, sess, e.Status, programsData{Name: name, Currency: cur, Error: e})
	}
	if err != nil {
		return err
	}
	return s.renderProgram(c, sess, fiber.StatusCreated, p, programState{
		Flash: "Program created. Copy the secrets below now: they are not shown again.",
		Secrets: []shownSecret{
			{"API key", v.APIKey, "For the REST API: Authorization: Bearer <key>."},
			{"Signing secret", v.SigningSecret, "Your backend signs browser-reported sales with it when signatures are required."},
			{"Stripe webhook secret", v.WebhookSecret, "Replace it with the signing secret Stripe shows for the endpoint, or rotate it here."},
		},
	})
}

// formError returns err as an *Error when it is the merchant's to fix (a
// 4xx), for showing next to the form; nil otherwise.
func formError(err error) *Error {
	if err == nil {
		return nil
	}
	e := asError(err)
	if e.Status >= 400 && e.Status < 500 && e.Status != fiber.StatusNotFound {
		return e
	}
	return nil
}

// --- one program ---

// webProgram loads the :id program.
func (s *Server) webProgram(c *fiber.Ctx) (*store.Program, error) {
	return s.programParam(c)
}

// programState is what a program page shows beyond the stored program:
// secrets shown once, a saved notice, a form's error and the input it had.
type programState struct {
	Flash   string
	Secrets []shownSecret
	Section string // the card the error belongs to
	Error   *Error
	Origin  string         // the origin being added, when it was refused
	General *generalForm   // the settings as entered, when refused
	Script  *scriptForm    // the script's settings as entered, when refused
	Comm    commissionForm // the commission as entered, when refused
}

// FieldError is the refused form's error when it is about field (or an
// entry of it, field[i]) of the section's card: the card shows it next to
// that field.
func (st programState) FieldError(section, field string) *Error {
	if st.Error == nil || st.Section != section {
		return nil
	}
	if f := st.Error.Field; f == field || strings.HasPrefix(f, field+"[") {
		return st.Error
	}
	return nil
}

// CardError is the refused form's error of the section's card when no
// field of the card shows it.
func (st programState) CardError(section string, fields ...string) *Error {
	if st.Error == nil || st.Section != section {
		return nil
	}
	for _, f := range fields {
		if st.FieldError(section, f) != nil {
			return nil
		}
	}
	return st.Error
}

type shownSecret struct{ Label, Value, Hint string }

type programData struct {
	P          *programView
	State      programState
	Commission commissionForm
	General    generalForm
	Script     scriptForm
	ParamsText string
}

var savedMessages = map[string]string{
	"tracking":   "JS tracking settings saved. They apply to the next /collect call.",
	"origins":    "Allowed origins saved. They apply to the next /collect call.",
	"general":    "Settings saved.",
	"script":     "Script settings saved. The install snippet changed with them: paste the new one into your pages.",
	"commission": "Commission rules saved. They apply to sales recorded from now on.",
	"stripe":     "Stripe webhook secret saved. Events Stripe signs with it are accepted from now on.",
	"paddle":     "Paddle webhook secret saved. Notifications Paddle signs with it are accepted from now on.",
}

func (s *Server) programPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	return s.renderProgram(c, sess, fiber.StatusOK, p, programState{Flash: savedMessages[c.Query("saved")]})
}

func (s *Server) renderProgram(c *fiber.Ctx, sess *session, status int, p *store.Program, st programState) error {
	v := s.viewProgram(c, p)
	d := programData{P: v, State: st, Commission: commissionFormOf(p.Commission), General: generalFormOf(p), Script: scriptFormOf(p)}
	if st.General != nil {
		d.General = *st.General
	}
	if st.Script != nil {
		d.Script = *st.Script
	}
	if st.Section == "commission" {
		d.Commission = st.Comm
	}
	return s.render(c, status, "program", sess, &pageData{Title: p.Name, Program: v, Tab: "setup", Flash: st.Flash, Data: d})
}

// updateProgramForm saves one card of the program page.
func (s *Server) updateProgramForm(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	section := c.Params("section")
	in, st, err := programFormInput(c, section, p)
	if err == nil {
		_, err = s.updateProgram(c.UserContext(), p.ID, in)
	}
	if e := formError(err); e != nil {
		st.Section, st.Error = savedSection(section), e
		return s.renderProgram(c, sess, e.Status, p, st)
	}
	if err != nil {
		return err
	}
	return c.Redirect("/admin/programs/"+url.PathEscape(p.ID)+"?saved="+savedSection(section)+"#"+savedSection(section), fiber.StatusSeeOther)
}

// savedSection is the card a form section belongs to.
func savedSection(section string) string {
	switch section {
	case "origins-add", "origins-remove":
		return "origins"
	case "signature":
		return "tracking"
	case "stripe-secret":
		return "stripe"
	case "paddle-secret":
		return "paddle"
	}
	return section
}

func (s *Server) rotateSecretForm(c *fiber.Ctx, sess *session) error {
	which := store.Secret(c.FormValue("secret"))
	p, value, err := s.rotateSecret(c, c.Params("id"), which)
	if err != nil {
		return err
	}
	label := map[store.Secret]string{
		store.SecretAPIKey:        "New API key",
		store.SecretSigningSecret: "New signing secret",
		store.SecretWebhookSecret: "New Stripe webhook secret",
	}[which]
	return s.renderProgram(c, sess, fiber.StatusOK, p, programState{
		Flash:   label + " made. The old one stopped working just now; copy the new one below, it is not shown again.",
		Secrets: []shownSecret{{label, value, ""}},
	})
}

// --- partners ---

type partnerRow struct {
	*store.Partner
	Link  string
	Codes []*store.Coupon
}

type partnersData struct {
	Partners []partnerRow
	Pager    pager
	Key      string
	Name     string
	Email    string
	Error    *Error
	LinkBase string
	Coupon   couponFormData // the add-a-code form (admin_web_coupons.go)
	Page     int
}

func (s *Server) partnersPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	// "+ code" on a partner's row fills the add-a-code form with it.
	d := partnersData{Coupon: couponFormData{Partner: strings.TrimSpace(c.Query("code_for"))}}
	if c.Query("created") == "1" {
		return s.renderPartners(c, sess, fiber.StatusOK, p, d, "Partner added. Send them their referral link.")
	}
	return s.renderPartners(c, sess, fiber.StatusOK, p, d, couponSaved[c.Query("saved")])
}

func (s *Server) renderPartners(c *fiber.Ctx, sess *session, status int, p *store.Program, d partnersData, flash string) error {
	page := pageNumber(c)
	list, total, err := s.store.Partners(c.UserContext(), p.ID, webPageSize, (page-1)*webPageSize)
	if err != nil {
		return err
	}
	base := s.referralBase(c, p)
	d.LinkBase = base
	for _, pa := range list {
		d.Partners = append(d.Partners, partnerRow{Partner: pa, Link: referralLink(base, p, pa.Key)})
	}
	if err := s.partnersWithCodes(c, p, d.Partners); err != nil {
		return err
	}
	d.Page = page
	d.Pager = newPager(c, page, total, len(list))
	if done, err := pastTheEnd(c, d.Pager); done {
		return err
	}
	v := s.viewProgram(c, p)
	return s.render(c, status, "partners", sess, &pageData{Title: "Partners · " + p.Name, Program: v, Tab: "partners", Flash: flash, Data: d})
}

// referralBase is the site a referral link points at: the merchant's first
// exact allowed origin, or this server when there is none yet.
func (s *Server) referralBase(c *fiber.Ctx, p *store.Program) string {
	for _, o := range p.AllowedOrigins {
		if !strings.Contains(o, "*") {
			return o
		}
	}
	return s.publicURL(c)
}

func referralLink(base string, p *store.Program, key string) string {
	param := "aff"
	if len(p.ReferralParams) > 0 {
		param = p.ReferralParams[0]
	}
	// %20 rather than +: both mean a space in a query, but %20 survives
	// being pasted into places that do not decode +.
	return base + "/?" + url.QueryEscape(param) + "=" + strings.ReplaceAll(url.QueryEscape(key), "+", "%20")
}

func (s *Server) createPartnerForm(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	in := tracking.PartnerInput{
		Key:   strings.TrimSpace(c.FormValue("key")),
		Name:  strings.TrimSpace(c.FormValue("name")),
		Email: strings.TrimSpace(c.FormValue("email")),
	}
	err = checkText("key", in.Key, maxKeyLen, true)
	if err == nil {
		err = checkText("name", in.Name, maxNameLen, false)
	}
	if err == nil {
		err = checkEmail("email", in.Email)
	}
	if err == nil {
		err = s.store.Write(c.UserContext(), func(tx *store.Tx) error {
			_, res, err := tracking.CreatePartner(tx, p, in)
			if err == nil && res == tracking.Replayed {
				return tracking.ErrKeyConflict
			}
			return err
		})
	}
	if errors.Is(err, tracking.ErrKeyConflict) {
		err = invalid("key", "Another partner of this program already has this key. Pick another one.")
	}
	if e := formError(err); e != nil {
		d := partnersData{Key: in.Key, Name: in.Name, Email: in.Email, Error: e}
		return s.renderPartners(c, sess, e.Status, p, d, "")
	}
	if err != nil {
		return err
	}
	return c.Redirect("/admin/programs/"+url.PathEscape(p.ID)+"/partners?created=1", fiber.StatusSeeOther)
}

// --- customers ---

type customersData struct {
	Customers []*store.Customer
	Pager     pager
}

func (s *Server) customersPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	page := pageNumber(c)
	list, total, err := s.store.Customers(c.UserContext(), p.ID, webPageSize, (page-1)*webPageSize)
	if err != nil {
		return err
	}
	d := customersData{Customers: list, Pager: newPager(c, page, total, len(list))}
	if done, err := pastTheEnd(c, d.Pager); done {
		return err
	}
	return s.render(c, fiber.StatusOK, "customers", sess, &pageData{Title: "Customers · " + p.Name,
		Program: s.viewProgram(c, p), Tab: "customers", Data: d})
}

// --- transactions ---

type transactionFilter struct {
	Partner, Source, Status string
}

func (f transactionFilter) Active() bool { return f.Partner != "" || f.Source != "" || f.Status != "" }

type transactionsData struct {
	Transactions []*store.Transaction
	Pager        pager
	Filter       transactionFilter
	Partners     []*store.Partner // for the filter's suggestions
	Chart        *salesChart
}

func (s *Server) transactionsPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	f := transactionFilter{Partner: strings.TrimSpace(c.Query("partner"))}
	// Unknown values would filter everything away without saying why.
	if src := c.Query("source"); src == store.SourceAPI || src == store.SourceJS || src == store.SourceGateway {
		f.Source = src
	}
	if st := c.Query("status"); st == store.StatusOK || st == store.StatusRefunded {
		f.Status = st
	}
	page := pageNumber(c)
	list, total, err := s.store.Transactions(c.UserContext(), store.TransactionFilter{
		ProgramID: p.ID, PartnerKey: f.Partner, Source: f.Source, Status: f.Status,
		Limit: webPageSize, Offset: (page - 1) * webPageSize,
	})
	if err != nil {
		return err
	}
	pg := newPager(c, page, total, len(list))
	if done, err := pastTheEnd(c, pg); done {
		return err
	}
	partners, _, err := s.store.Partners(c.UserContext(), p.ID, 200, 0)
	if err != nil {
		return err
	}
	chart, err := s.salesChart(c, p)
	if err != nil {
		return err
	}
	d := transactionsData{Transactions: list, Pager: pg, Filter: f,
		Partners: partners, Chart: chart}
	flash := ""
	if c.Query("refunded") == "1" {
		flash = "The transaction was refunded and its partner's reward reversed."
	}
	return s.render(c, fiber.StatusOK, "transactions", sess, &pageData{Title: "Transactions · " + p.Name,
		Program: s.viewProgram(c, p), Tab: "transactions", Flash: flash, Data: d})
}

func (s *Server) refundTransaction(c *fiber.Ctx, p *store.Program, key string) (*store.Transaction, error) {
	if err := checkText("key", key, maxKeyLen, true); err != nil {
		return nil, errTransactionMissing
	}
	tr, err := s.store.Transaction(c.UserContext(), p.ID, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTransactionMissing
	}
	return tr, err
}

// refundPage asks for confirmation: a refund reverses the partner's reward
// and cannot be undone.
func (s *Server) refundPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	tr, err := s.refundTransaction(c, p, c.Query("key"))
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "refund", sess, &pageData{Title: "Refund " + tr.Key,
		Program: s.viewProgram(c, p), Tab: "transactions", Data: tr})
}

func (s *Server) refundForm(c *fiber.Ctx, _ *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	tr, err := s.refundTransaction(c, p, c.FormValue("key"))
	if err != nil {
		return err
	}
	err = s.store.Write(c.UserContext(), func(tx *store.Tx) error {
		_, err := tracking.Refund(tx, p, tr.Key, -1)
		return err
	})
	if err != nil {
		return err
	}
	return c.Redirect("/admin/programs/"+url.PathEscape(p.ID)+"/transactions?refunded=1", fiber.StatusSeeOther)
}
