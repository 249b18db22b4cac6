package server

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The admin page's Payouts tab (docs/payouts.md, docs/admin.md): the
// payout settings, every partner's balances, the customers fraud flags
// hold, and the payout batches; a batch is created and marked paid after a
// page that asks to confirm, and forms post, then redirect (post/
// redirect/get). A partner's payouts page (/admin/programs/{id}/partners/{key}/payouts)
// shows their balances and makes, rotates and revokes their partner page's
// link. Everything goes through the admin API's functions
// (api_payouts.go, partner_page.go).

func init() {
	adminPages = append(adminPages, "payouts", "payout", "payout_confirm", "partner_payouts")
	templateFuncs["flaglist"] = splitFlags
	templateFuncs["flaglabel"] = flagLabel
	templateFuncs["statelabel"] = stateLabel
	templateFuncs["pathkey"] = url.PathEscape
	templateFuncs["minor"] = func(minor int64, currency string) rules.Money { return rules.Money{Minor: minor, Currency: currency} }
}

func (s *Server) payoutWebRoutes(app *fiber.App) {
	app.Get("/admin/programs/:id/payouts", s.page(s.payoutsPage))
	app.Post("/admin/programs/:id/payouts", s.form(s.createPayoutForm))
	app.Get("/admin/programs/:id/payouts/new", s.page(s.newPayoutPage))
	app.Post("/admin/programs/:id/payouts/settings", s.form(s.payoutSettingsForm))
	app.Post("/admin/programs/:id/flags/approve", s.form(s.approveFlagsForm))
	app.Get("/admin/programs/:id/payouts/:payout", s.page(s.payoutPage))
	app.Get("/admin/programs/:id/payouts/:payout/export", s.page(s.payoutExport))
	app.Get("/admin/programs/:id/payouts/:payout/pay", s.page(s.payPayoutPage))
	app.Post("/admin/programs/:id/payouts/:payout/pay", s.form(s.payPayoutForm))
	app.Get("/admin/programs/:id/partners/:key/payouts", s.page(s.partnerAdminPage))
	app.Post("/admin/programs/:id/partners/:key/page", s.form(s.partnerPageForm))
}

// flagLabel names a fraud flag for people.
func flagLabel(flag string) string {
	switch flag {
	case rules.FlagSelfReferral:
		return "Self-referral"
	case rules.FlagPaidAd:
		return "Paid-ad click"
	}
	return flag
}

// stateLabel names a ledger state for people.
func stateLabel(state string) string {
	switch state {
	case store.StatePending:
		return "Pending"
	case store.StateApproved:
		return "Approved"
	case store.StateInPayout:
		return "In payout"
	case store.StatePaid:
		return "Paid"
	case store.StateReversed:
		return "Reversed"
	}
	return state
}

// balanceRow is one partner's balance in one currency, as the page shows
// it, with what a batch would pay them now.
type balanceRow struct {
	Partner                                      *store.Partner
	Pending, Held, Approved, InPayout, Paid, Owe rules.Money
	Pay                                          rules.Money
	Payable                                      bool
	Min                                          rules.Money
}

func balanceRowOf(p *store.Program, partner *store.Partner, b store.Balance) balanceRow {
	m := func(minor int64) rules.Money { return rules.Money{Minor: minor, Currency: b.Currency} }
	pay, ok := rules.Payable(rules.PayoutLine{RewardsMinor: b.Approved, ClawbackMinor: b.Clawback}, p.MinPayout[b.Currency])
	return balanceRow{Partner: partner, Pending: m(b.Pending), Held: m(b.Held), Approved: m(b.Approved), InPayout: m(b.InPayout),
		Paid: m(b.Paid), Owe: m(b.Clawback), Pay: m(pay), Payable: ok, Min: m(p.MinPayout[b.Currency])}
}

// balanceRows are the program's balances, the partners with a payable
// balance first, then by key and currency (only partnerKey's when it is
// not "").
func (s *Server) balanceRows(c *fiber.Ctx, p *store.Program, partnerKey string) ([]balanceRow, error) {
	bs, partners, err := s.programBalances(c.UserContext(), p)
	if err != nil {
		return nil, err
	}
	var rows []balanceRow
	for _, b := range bs {
		pa := partners[b.PartnerID]
		if partnerKey != "" && pa.Key != partnerKey {
			continue
		}
		rows = append(rows, balanceRowOf(p, pa, b))
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Payable != rows[j].Payable {
			return rows[i].Payable
		}
		if rows[i].Partner.Key != rows[j].Partner.Key {
			return rows[i].Partner.Key < rows[j].Partner.Key
		}
		return rows[i].Pay.Currency < rows[j].Pay.Currency
	})
	return rows, nil
}

// payoutSettings is the settings card as shown or as entered.
type payoutSettings struct {
	HoldDays, MinPayout, LandingURL string
	Error                           *Error
}

func payoutSettingsOf(p *store.Program) payoutSettings {
	codes := make([]string, 0, len(p.MinPayout))
	for c := range p.MinPayout {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, c+" "+rules.Money{Minor: p.MinPayout[c], Currency: c}.String())
	}
	return payoutSettings{HoldDays: strconv.Itoa(p.HoldDays), MinPayout: strings.Join(parts, ", "), LandingURL: p.LandingURL}
}

// parseMinPayout reads "USD 50, EUR 40.00" (or "50 USD") into minor units.
func parseMinPayout(text string) (map[string]int64, error) {
	out := map[string]int64{}
	bad := invalid("min_payout", "Write each minimum as a currency and an amount, separated by commas: USD 50.00, EUR 40.")
	for _, part := range strings.Split(text, ",") {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, bad
		}
		cur, amount := f[0], f[1]
		if _, err := strconv.ParseFloat(cur, 64); err == nil {
			cur, amount = amount, cur
		}
		code, err := rules.NormalizeCurrency(cur)
		if err != nil {
			return nil, bad
		}
		m, err := rules.ParseAmount(amount, code)
		if err != nil || m.Minor < 0 {
			return nil, invalid("min_payout", fmt.Sprintf("%s: %q is not an amount of %s.", code, amount, code))
		}
		out[code] = m.Minor
	}
	return out, nil
}

type payoutsData struct {
	Settings     payoutSettings
	Rows         []balanceRow
	AnyPayable   bool
	Flagged      []*store.FlaggedCustomer
	FlaggedTotal int
	Clicks       []store.FlaggedClick
	Payouts      []*store.Payout
	Pager        pager
}

var payoutNotices = map[string]string{
	"settings": "Payout settings saved. The hold applies to every pending reward from now on.",
	"approved": "Customer approved: its rewards are no longer held and follow the hold period like any other.",
}

func (s *Server) payoutsPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	return s.renderPayouts(c, sess, fiber.StatusOK, p, payoutSettingsOf(p), payoutNotices[c.Query("saved")])
}

func (s *Server) renderPayouts(c *fiber.Ctx, sess *session, status int, p *store.Program, settings payoutSettings, flash string) error {
	ctx := c.UserContext()
	d := payoutsData{Settings: settings}
	var err error
	if d.Rows, err = s.balanceRows(c, p, ""); err != nil {
		return err
	}
	for _, r := range d.Rows {
		d.AnyPayable = d.AnyPayable || r.Payable
	}
	if d.Flagged, d.FlaggedTotal, err = s.store.FlaggedCustomers(ctx, p.ID, true, webPageSize, 0); err != nil {
		return err
	}
	if d.Clicks, err = s.store.FlaggedClicks(ctx, p.ID, 0, 10); err != nil {
		return err
	}
	page := pageNumber(c)
	list, total, err := s.store.Payouts(ctx, p.ID, webPageSize, (page-1)*webPageSize)
	if err != nil {
		return err
	}
	d.Payouts, d.Pager = list, newPager(c, page, total, len(list))
	if done, err := pastTheEnd(c, d.Pager); done {
		return err
	}
	return s.render(c, status, "payouts", sess, &pageData{Title: "Payouts · " + p.Name, Program: s.viewProgram(c, p),
		Tab: "payouts", Flash: flash, Data: d})
}

func (s *Server) payoutSettingsForm(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	f := payoutSettings{HoldDays: strings.TrimSpace(c.FormValue("hold_days")), MinPayout: c.FormValue("min_payout"),
		LandingURL: strings.TrimSpace(c.FormValue("landing_url"))}
	in := &programJSONIn{LandingURL: &f.LandingURL}
	hold, err := strconv.Atoi(f.HoldDays)
	if err != nil {
		err = invalid("hold_days", fmt.Sprintf("The hold is a whole number of days from 0 to %d.", rules.MaxHoldDays))
	} else {
		in.HoldDays = &hold
		var m map[string]int64
		if m, err = parseMinPayout(f.MinPayout); err == nil {
			in.MinPayout = &m
			_, err = s.updateProgram(c.UserContext(), p.ID, in)
		}
	}
	if e := formError(err); e != nil {
		f.Error = e
		return s.renderPayouts(c, sess, e.Status, p, f, "")
	}
	if err != nil {
		return err
	}
	return c.Redirect(payoutsURL(p)+"?saved=settings#settings", fiber.StatusSeeOther)
}

func payoutsURL(p *store.Program) string {
	return "/admin/programs/" + url.PathEscape(p.ID) + "/payouts"
}

// partnerPayoutsURL is a partner's payouts page: balances, partner page
// link, flags.
func partnerPayoutsURL(p *store.Program, key string) string {
	return "/admin/programs/" + url.PathEscape(p.ID) + "/partners/" + url.PathEscape(key) + "/payouts"
}

// --- creating a batch ---

type newPayoutData struct {
	Partner string // "" for all
	Rows    []balanceRow
	Total   []rules.Money
	Error   *Error
}

// newPayoutPage shows what a batch would pay now and asks to confirm.
func (s *Server) newPayoutPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	return s.renderNewPayout(c, sess, fiber.StatusOK, p, strings.TrimSpace(c.Query("partner")), nil)
}

func (s *Server) renderNewPayout(c *fiber.Ctx, sess *session, status int, p *store.Program, partner string, e *Error) error {
	rows, err := s.balanceRows(c, p, partner)
	if err != nil {
		return err
	}
	d := newPayoutData{Partner: partner, Error: e}
	totals := map[string]int64{}
	for _, r := range rows {
		if r.Payable {
			d.Rows = append(d.Rows, r)
			totals[r.Pay.Currency] += r.Pay.Minor
		}
	}
	for cur, minor := range totals {
		d.Total = append(d.Total, rules.Money{Minor: minor, Currency: cur})
	}
	sort.Slice(d.Total, func(i, j int) bool { return d.Total[i].Currency < d.Total[j].Currency })
	return s.render(c, status, "payout_confirm", sess, &pageData{Title: "New payout · " + p.Name, Program: s.viewProgram(c, p),
		Tab: "payouts", Data: payoutConfirmData{New: &d}})
}

func (s *Server) createPayoutForm(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	partner := strings.TrimSpace(c.FormValue("partner"))
	po, err := s.createPayout(c.UserContext(), p, partner)
	if e := formError(err); e != nil {
		return s.renderNewPayout(c, sess, e.Status, p, partner, e)
	}
	if err != nil {
		return err
	}
	return c.Redirect(fmt.Sprintf("%s/%d?created=1", payoutsURL(p), po.ID), fiber.StatusSeeOther)
}

// --- one batch ---

type payoutData struct {
	Payout   *store.Payout
	Rewards  map[int64][]store.PayoutRewardLine
	NoEmail  int
	Error    *Error
	Ref      string
	PayPalOK []string // the currencies with a PayPal file
}

func (s *Server) webPayout(c *fiber.Ctx) (*store.Program, *store.Payout, error) {
	p, err := s.webProgram(c)
	if err != nil {
		return nil, nil, err
	}
	po, err := s.payoutParam(c, p)
	return p, po, err
}

func (s *Server) payoutPage(c *fiber.Ctx, sess *session) error {
	p, po, err := s.webPayout(c)
	if err != nil {
		return err
	}
	flash := ""
	switch {
	case c.Query("created") == "1":
		flash = "Payout batch created. Download its file, pay it, then mark it paid here with the payment's reference."
	case c.Query("paid") == "1":
		flash = "Batch marked paid. Its rewards are paid."
	}
	return s.renderPayout(c, sess, fiber.StatusOK, p, po, payoutData{}, flash)
}

func (s *Server) renderPayout(c *fiber.Ctx, sess *session, status int, p *store.Program, po *store.Payout, d payoutData, flash string) error {
	lines, err := s.store.PayoutRewards(c.UserContext(), po.ID)
	if err != nil {
		return err
	}
	d.Payout, d.Rewards = po, map[int64][]store.PayoutRewardLine{}
	for _, l := range lines {
		d.Rewards[l.ItemID] = append(d.Rewards[l.ItemID], l)
	}
	for _, it := range po.Items {
		if it.Partner.Email == "" {
			d.NoEmail++
		}
	}
	d.PayPalOK = po.Currencies()
	return s.render(c, status, "payout", sess, &pageData{Title: fmt.Sprintf("Payout %d · %s", po.ID, p.Name),
		Program: s.viewProgram(c, p), Tab: "payouts", Flash: flash, Data: d})
}

func (s *Server) payoutExport(c *fiber.Ctx, _ *session) error {
	p, po, err := s.webPayout(c)
	if err != nil {
		return err
	}
	return sendPayoutCSV(c, p, po)
}

// payoutConfirmData is the confirm page: a new batch, or marking one paid.
type payoutConfirmData struct {
	New *newPayoutData
	Pay *payoutData
}

func (s *Server) payPayoutPage(c *fiber.Ctx, sess *session) error {
	p, po, err := s.webPayout(c)
	if err != nil {
		return err
	}
	ref, err := checkReference(c.Query("reference"))
	if e := formError(err); e != nil {
		return s.renderPayout(c, sess, e.Status, p, po, payoutData{Error: e}, "")
	}
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "payout_confirm", sess, &pageData{Title: fmt.Sprintf("Mark payout %d paid", po.ID),
		Program: s.viewProgram(c, p), Tab: "payouts", Data: payoutConfirmData{Pay: &payoutData{Payout: po, Ref: ref}}})
}

func (s *Server) payPayoutForm(c *fiber.Ctx, sess *session) error {
	p, po, err := s.webPayout(c)
	if err != nil {
		return err
	}
	ref := c.FormValue("reference")
	_, _, err = s.markPayoutPaid(c.UserContext(), p, po.ID, ref)
	if e := formError(err); e != nil {
		return s.renderPayout(c, sess, e.Status, p, po, payoutData{Error: e, Ref: ref}, "")
	}
	if err != nil {
		return err
	}
	return c.Redirect(fmt.Sprintf("%s/%d?paid=1", payoutsURL(p), po.ID), fiber.StatusSeeOther)
}

// --- fraud flags ---

func (s *Server) approveFlagsForm(c *fiber.Ctx, _ *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	key := strings.TrimSpace(c.FormValue("customer"))
	// Approved already (another tab, a second click) is what was asked.
	if _, _, err := s.approveFlags(c.UserContext(), p, key); err != nil {
		return err
	}
	back := payoutsURL(p) + "?saved=approved#flags"
	if partner := strings.TrimSpace(c.FormValue("partner")); partner != "" {
		back = partnerPayoutsURL(p, partner) + "?saved=approved#flags"
	}
	return c.Redirect(back, fiber.StatusSeeOther)
}

// --- one partner ---

type partnerAdminData struct {
	Partner   *store.Partner
	Link      string
	Codes     []string
	Totals    *store.PartnerTotals
	Rows      []balanceRow
	Page      *store.PartnerPage
	ShownURL  string // the page's link, in the answer that made it only
	Rewards   []store.RewardLedger
	Flagged   []*store.FlaggedCustomer
	Clicks    []store.FlaggedClick
	Payouts   []store.PartnerPayout
	PageError *Error
}

var partnerNotices = map[string]string{
	"revoked":  "Partner page link revoked: it answers 404 from now on.",
	"approved": payoutNotices["approved"],
}

func (s *Server) partnerAdminPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	partner, err := s.partnerKeyParam(c, p)
	if err != nil {
		return err
	}
	return s.renderPartnerAdmin(c, sess, fiber.StatusOK, p, partner, "", partnerNotices[c.Query("saved")])
}

func (s *Server) renderPartnerAdmin(c *fiber.Ctx, sess *session, status int, p *store.Program, partner *store.Partner, shown, flash string) error {
	ctx := c.UserContext()
	d := partnerAdminData{Partner: partner, Link: s.partnerLink(c, p, partner.Key), ShownURL: shown}
	var err error
	if d.Totals, err = s.store.PartnerTotals(ctx, partner.ID); err != nil {
		return err
	}
	coupons, _, err := s.store.Coupons(ctx, store.CouponFilter{ProgramID: p.ID, PartnerID: partner.ID})
	if err != nil {
		return err
	}
	for _, k := range coupons {
		d.Codes = append(d.Codes, k.Code)
	}
	if d.Rows, err = s.balanceRows(c, p, partner.Key); err != nil {
		return err
	}
	if d.Page, err = s.partnerPageState(ctx, partner); err != nil {
		return err
	}
	if d.Rewards, err = s.store.PartnerRewards(ctx, partner.ID, webPageSize); err != nil {
		return err
	}
	flagged, _, err := s.store.FlaggedCustomers(ctx, p.ID, false, 200, 0)
	if err != nil {
		return err
	}
	for _, f := range flagged {
		if f.Partner != nil && f.Partner.ID == partner.ID {
			d.Flagged = append(d.Flagged, f)
		}
	}
	if d.Clicks, err = s.store.FlaggedClicks(ctx, p.ID, partner.ID, 10); err != nil {
		return err
	}
	if d.Payouts, err = s.store.PartnerPayouts(ctx, partner.ID, 10); err != nil {
		return err
	}
	title := partner.Key
	if partner.Name != "" {
		title = partner.Name
	}
	return s.render(c, status, "partner_payouts", sess, &pageData{Title: title + " · " + p.Name, Program: s.viewProgram(c, p),
		Tab: "partners", Flash: flash, Data: d})
}

// partnerPageForm makes, rotates or revokes the partner's page link. A new
// link is shown on the answer, once: only its hash is kept.
func (s *Server) partnerPageForm(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	partner, err := s.partnerKeyParam(c, p)
	if err != nil {
		return err
	}
	switch c.FormValue("action") {
	case "make", "rotate":
		token, err := s.makePartnerPage(c.UserContext(), partner)
		if err != nil {
			return err
		}
		flash := "Partner page link made. Copy it now and send it to the partner: it is not shown again."
		if c.FormValue("action") == "rotate" {
			flash = "New partner page link made; the old one stopped working just now. Copy it now: it is not shown again."
		}
		return s.renderPartnerAdmin(c, sess, fiber.StatusOK, p, partner, s.partnerPageURL(c, token), flash)
	case "revoke":
		if err := s.revokePartnerPage(c.UserContext(), partner); err != nil {
			return err
		}
		return c.Redirect(partnerPayoutsURL(p, partner.Key)+"?saved=revoked#page", fiber.StatusSeeOther)
	}
	return invalid("action", "action is make, rotate or revoke.")
}
