package server

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// The admin pages: programs, one program's setup, partners, customers and
// transactions. Writes go through the same functions as the admin JSON API
// (createProgram, updateProgram, rotateSecret) and the REST API (tracking).

// --- programs ---

type programsData struct {
	Programs []overviewRow // with their numbers over Range (admin_web_reports.go)
	Range    rangePick
	// Archived: the page lists the archived programs; Hidden is how many
	// programs the other list has.
	Archived bool
	Hidden   int
	Name     string
	Currency string
	Error    *Error
}

func (s *Server) programsPage(c *fiber.Ctx, sess *session) error {
	flash := ""
	if id := c.Query("archived"); id != "" {
		if p, err := s.store.Program(c.UserContext(), id); err == nil {
			flash = "Program " + p.Name + " archived. Its script, API key and webhooks keep working; restore it from Archived programs."
		}
	}
	return s.renderPrograms(c, sess, fiber.StatusOK, programsData{Currency: "USD"}, flash)
}

func (s *Server) renderPrograms(c *fiber.Ctx, sess *session, status int, d programsData, flash ...string) error {
	d.Range = webRange(c, false)
	d.Archived = c.Query("show") == "archived"
	var err error
	if d.Programs, d.Hidden, err = s.overviewRows(c, d.Range.Range, d.Archived); err != nil {
		return err
	}
	if status == fiber.StatusOK {
		status = pageStatus(d.Range.Error)
	}
	title := "Programs"
	if d.Archived {
		title = "Archived programs"
	}
	return s.render(c, status, "programs", sess, &pageData{Title: title, Flash: strings.Join(flash, ""), Data: d})
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
	// Post/redirect/get: reloading the page that shows the secrets makes
	// no second program (admin_web_once.go).
	return s.showOnce(c, sess, p.ID, &shownOnce{
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
	Notice  string // a note that is not a success (secrets already shown)
	Section string // the card the error belongs to
	Error   *Error
	Origin  string         // the origin being added, when it was refused
	General *generalForm   // the settings as entered, when refused
	Script  *scriptForm    // the script's settings as entered, when refused
	Comm    commissionForm // the commission as entered, when refused
	Landing *string        // the landing page as entered, when refused
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
	Archived   bool
	Refusals   *refusalsView // what /collect refused in the last 24 h (refusals.go)
	// Where referral links lead now (the landing page, else the first
	// exact origin; "" for nowhere), the landing page's field as shown,
	// and what a partner's links look like.
	Landing, LandingField string
	ExampleLink, AffLink  string
}

var savedMessages = map[string]string{
	"tracking":   "JS tracking settings saved. They apply to the next /collect call.",
	"origins":    "Allowed origins saved. They apply to the next /collect call.",
	"general":    "Settings saved.",
	"script":     "Script settings saved. The install snippet changed with them: paste the new one into your pages.",
	"commission": "Commission rules saved. They apply to sales recorded from now on.",
	"stripe":     "Stripe webhook secret saved. Events Stripe signs with it are accepted from now on.",
	"paddle":     "Paddle webhook secret saved. Notifications Paddle signs with it are accepted from now on.",
	"restored":   "Program restored: it is on the programs list again.",
	"landing":    "Landing page saved. Partners' referral links point to it from now on.",
}

func (s *Server) programPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	st := programState{Flash: savedMessages[c.Query("saved")]}
	if id := c.Query("shown"); id != "" {
		v, err := s.takeShown(c, sess, id)
		if err != nil {
			return err
		}
		if v != nil {
			st.Flash, st.Secrets = v.Flash, v.Secrets
		} else {
			st.Notice = shownAgain
		}
	}
	return s.renderProgram(c, sess, fiber.StatusOK, p, st)
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
	d.Landing, d.LandingField = landingPage(p), p.LandingURL
	if st.Landing != nil {
		d.LandingField = *st.Landing
	}
	d.ExampleLink, d.AffLink = referralLink(d.Landing, p, "PARTNER_KEY"), s.affLink(c, p, "PARTNER_KEY")
	var err error
	if d.Archived, err = s.archived(c, p.ID); err != nil {
		return err
	}
	if d.Refusals, err = s.programRefusals(c, p, defaultRefusalHours); err != nil {
		return err
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
	label := "New " + rotations[which].Name
	return s.showOnce(c, sess, p.ID, &shownOnce{
		Flash:   label + " made. The old one stopped working just now; copy the new one below, it is not shown again.",
		Secrets: []shownSecret{{label, value, ""}},
	})
}

// --- partners ---

type partnerRow struct {
	*store.Partner
	Link  string
	Codes []*store.Coupon
	// The partner's numbers over the page's range (admin_web_reports.go).
	Numbers          *store.PartnerNumbers
	Revenue, Rewards []rules.Money
	Conversion       string
	Page             string // the partner's own page
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
	// The list's range, search and sort (issue 14), and its exports.
	Range       rangePick
	Search      string
	Sort        []sortHeader
	FilterError *Error
	ExportCSV   string
	ExportClick string
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
	d.Range = webRange(c, false)
	q, err := partnerQueryOver(c, p, d.Range.Range)
	if err != nil {
		// A sort or search the list cannot take: say so, list them all.
		d.FilterError = asError(err)
		q = store.PartnerQuery{ProgramID: p.ID, Range: d.Range.Range, Sort: store.SortRevenue, Desc: true}
	}
	d.Search, d.Sort = q.Search, sortHeaders(c, q)
	q.Limit, q.Offset = webPageSize, (page-1)*webPageSize
	list, total, err := s.store.PartnerNumbers(c.UserContext(), q)
	if err != nil {
		return err
	}
	exportQ := d.Range.APIQuery()
	if q.Search != "" {
		exportQ.Set("q", q.Search)
	}
	clicksQ := d.Range.APIQuery()
	exportQ.Set("sort", q.Sort)
	exportQ.Set("order", order(q.Desc))
	d.ExportCSV, d.ExportClick = exportURL(p.ID, "partners", exportQ), exportURL(p.ID, "clicks", clicksQ)
	base := s.referralBase(c, p)
	d.LinkBase = base
	for _, n := range list {
		pa := &n.Partner
		d.Partners = append(d.Partners, partnerRow{Partner: pa, Link: referralLink(base, p, pa.Key),
			Numbers: n, Revenue: mainFirst(n.Revenue, p.Currency), Rewards: mainFirst(n.Rewards, p.Currency),
			Conversion: percent(n.Conversion),
			Page:       "/admin/programs/" + url.PathEscape(p.ID) + "/partners/" + url.PathEscape(pa.Key) + rangeSuffix(d.Range)})
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
	if status == fiber.StatusOK {
		status = pageStatus(d.Range.Error, d.FilterError)
	}
	return s.render(c, status, "partners", sess, &pageData{Title: "Partners · " + p.Name, Program: v, Tab: "partners", Flash: flash, Data: d})
}

// referralBase is the page a referral link points at: the program's
// landing_url, else its first exact allowed origin, else "" (no link yet:
// potrack's own root is no page for a visitor). It takes c for callers
// that once fell back to this server.
func (s *Server) referralBase(_ *fiber.Ctx, p *store.Program) string {
	return landingPage(p)
}

// landingPage is where p's referral links, and /aff/KEY, lead (aff.go).
func landingPage(p *store.Program) string {
	if p.LandingURL != "" {
		return p.LandingURL
	}
	for _, o := range p.AllowedOrigins {
		if !strings.Contains(o, "*") {
			return o + "/"
		}
	}
	return ""
}

// referralLink is base (a landing page or an origin) with the program's
// first referral parameter set to key; "" without a base.
func referralLink(base string, p *store.Program, key string) string {
	if base == "" {
		return ""
	}
	param := "aff"
	if len(p.ReferralParams) > 0 {
		param = p.ReferralParams[0]
	}
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	if u.Path == "" {
		u.Path = "/"
	}
	q := u.Query()
	q.Set(param, key)
	// %20 rather than +: both mean a space in a query, but %20 survives
	// being pasted into places that do not decode +. Encode writes a
	// literal + as %2B, so every + it writes is a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
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
	// The list's range (all time by default), search and partner filter
	// (issue 14), and its export.
	Range       rangePick
	Search      string
	Partner     string
	FilterError *Error
	Export      string
}

// Filtered reports whether the list is narrowed by anything.
func (d customersData) Filtered() bool { return d.Search != "" || d.Partner != "" || !d.Range.All }

func (s *Server) customersPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	d := customersData{Range: webRange(c, true)}
	f, err := customerFilterOver(c, p, d.Range.Range)
	if err != nil {
		d.FilterError = asError(err)
		f = store.CustomerFilter{ProgramID: p.ID, From: d.Range.Range.From, To: d.Range.Range.To}
	}
	d.Search, d.Partner = f.Search, f.PartnerKey
	page := pageNumber(c)
	f.Limit, f.Offset = webPageSize, (page-1)*webPageSize
	list, total, err := s.store.SearchCustomers(c.UserContext(), f)
	if err != nil {
		return err
	}
	d.Customers, d.Pager = list, newPager(c, page, total, len(list))
	if done, err := pastTheEnd(c, d.Pager); done {
		return err
	}
	q := d.Range.APIQuery()
	for k, v := range map[string]string{"q": f.Search, "partner": f.PartnerKey} {
		if v != "" {
			q.Set(k, v)
		}
	}
	d.Export = exportURL(p.ID, "customers", q)
	return s.render(c, pageStatus(d.Range.Error, d.FilterError), "customers", sess, &pageData{Title: "Customers · " + p.Name,
		Program: s.viewProgram(c, p), Tab: "customers", Data: d})
}

// --- transactions ---

// transactionFilter is the list's filters as the form shows them.
type transactionFilter struct {
	Partner, Source, Status, Verified string
}

func (f transactionFilter) Active() bool {
	return f.Partner != "" || f.Source != "" || f.Status != "" || f.Verified != ""
}

type transactionsData struct {
	Transactions []*store.Transaction
	Table        txTable
	Pager        pager
	Filter       transactionFilter
	FilterError  *Error
	Partners     []*store.Partner // for the filter's suggestions
	Chart        *salesChart
	Range        rangePick
	Export       string
}

// transactionsPage shows the chart, the totals per partner and the list,
// all over the page's range (the last 30 days unless picked), the list
// filtered as the admin API's (transactionFilterOver).
func (s *Server) transactionsPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	d := transactionsData{Range: webRange(c, false)}
	f, err := transactionFilterOver(c, p, d.Range.Range)
	if err != nil {
		// A filter the list cannot take is shown, and not applied.
		d.FilterError = asError(err)
		f = store.TransactionFilter{ProgramID: p.ID, From: d.Range.Range.From, To: d.Range.Range.To}
	}
	d.Filter = transactionFilter{Partner: f.PartnerKey, Source: f.Source, Status: f.Status}
	if f.Verified != nil {
		d.Filter.Verified = strconv.FormatBool(*f.Verified)
	}
	page := pageNumber(c)
	f.Limit, f.Offset = webPageSize, (page-1)*webPageSize
	list, total, err := s.store.Transactions(c.UserContext(), f)
	if err != nil {
		return err
	}
	d.Pager = newPager(c, page, total, len(list))
	if done, err := pastTheEnd(c, d.Pager); done {
		return err
	}
	d.Transactions, d.Table = list, txTable{ProgramID: p.ID, ID: "transactions", Rows: list}
	if d.Partners, _, err = s.store.Partners(c.UserContext(), p.ID, 200, 0); err != nil {
		return err
	}
	if d.Chart, err = s.salesChart(c, p, d.Range.Range); err != nil {
		return err
	}
	q := d.Range.APIQuery()
	for k, v := range map[string]string{"partner": f.PartnerKey, "source": f.Source, "status": f.Status, "verified": d.Filter.Verified} {
		if v != "" {
			q.Set(k, v)
		}
	}
	d.Export = exportURL(p.ID, "transactions", q)
	flash := ""
	if c.Query("refunded") == "1" {
		flash = "The transaction was refunded and its partner's reward reversed."
	}
	return s.render(c, pageStatus(d.Range.Error, d.FilterError), "transactions", sess, &pageData{Title: "Transactions · " + p.Name,
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
