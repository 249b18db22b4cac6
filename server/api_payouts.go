package server

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// Payouts in the admin API (docs/payouts.md): balances per partner and
// currency from the ledger, payout batches (create, list, show, export as
// CSV, mark paid), and fraud flags (list, approve). The admin page
// (admin_web_payouts.go) is built on the same functions.

// defaultHoldDays is a new program's hold: a usual refund window.
const defaultHoldDays = 30

const maxLandingURLLen = 2048

var (
	errNothingToPay = &Error{http.StatusUnprocessableEntity, "nothing_to_pay",
		"No partner has an approved balance, net of clawbacks, at or above the program's minimum payout.", ""}
	errPayoutMissing = &Error{http.StatusNotFound, "payout_not_found", "No payout batch of this program has this id.", ""}
	errPaidElsewise  = &Error{http.StatusConflict, "payout_paid",
		"This batch is already marked paid with another reference; a batch is paid once.", "reference"}
	errPayoutRace = &Error{http.StatusConflict, "payout_changed",
		"A reward or clawback of the batch changed while it was made (another batch, a refund); nothing was stored. Try again.", ""}
	errNoFlags = &Error{http.StatusNotFound, "customer_not_flagged", "No customer of this program with fraud flags has this key.", ""}
)

// payoutError maps the ledger's errors onto answers.
func payoutError(err error) error {
	switch {
	case errors.Is(err, tracking.ErrNothingToPay):
		return errNothingToPay
	case errors.Is(err, store.ErrPaidElsewise):
		return errPaidElsewise
	case errors.Is(err, store.ErrPayoutRace):
		return errPayoutRace
	case errors.Is(err, store.ErrNotFound):
		return errPayoutMissing
	}
	return err
}

// applyPayouts validates and applies the payout settings of a program
// change.
func (in *programJSONIn) applyPayouts(p *store.Program) error {
	if in.HoldDays != nil {
		if err := rules.CheckHoldDays(*in.HoldDays); err != nil {
			return err
		}
		p.HoldDays = *in.HoldDays
	}
	if in.MinPayout != nil {
		m, err := rules.CheckMinPayout(*in.MinPayout)
		if err != nil {
			return err
		}
		p.MinPayout = m
	}
	if in.LandingURL != nil {
		u, err := normalizeLandingURL(*in.LandingURL)
		if err != nil {
			return err
		}
		p.LandingURL = u
	}
	return nil
}

// normalizeLandingURL checks a landing URL: empty (use the first allowed
// origin), or an absolute http(s) URL without user info or fragment.
func normalizeLandingURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	bad := invalid("landing_url", "landing_url is an absolute address such as https://shop.example/welcome, without a #fragment, or empty.")
	if len(s) > maxLandingURLLen {
		return "", bad
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return "", bad
	}
	return u.String(), nil
}

func minPayoutOf(p *store.Program) map[string]int64 {
	if p.MinPayout == nil {
		return map[string]int64{}
	}
	return p.MinPayout
}

// partnerLink is a partner's referral link on a partner page: the
// program's landing URL with the first referral parameter added, or the
// first exact allowed origin (this server when there is none).
func (s *Server) partnerLink(c *fiber.Ctx, p *store.Program, key string) string {
	param := "aff"
	if len(p.ReferralParams) > 0 {
		param = p.ReferralParams[0]
	}
	if p.LandingURL != "" {
		if u, err := url.Parse(p.LandingURL); err == nil {
			q := u.Query()
			q.Set(param, key)
			u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
			return u.String()
		}
	}
	return referralLink(s.referralBase(c, p), p, key)
}

// --- views ---

type balanceView struct {
	Currency string      `json:"currency"`
	Pending  json.Number `json:"pending"`
	Held     json.Number `json:"held"`
	Approved json.Number `json:"approved"`
	InPayout json.Number `json:"in_payout"`
	Paid     json.Number `json:"paid"`
	Clawback json.Number `json:"clawback"`
}

func viewBalance(b store.Balance) balanceView {
	m := func(minor int64) json.Number { return amountJSON(rules.Money{Minor: minor, Currency: b.Currency}) }
	return balanceView{Currency: b.Currency, Pending: m(b.Pending), Held: m(b.Held), Approved: m(b.Approved),
		InPayout: m(b.InPayout), Paid: m(b.Paid), Clawback: m(b.Clawback)}
}

func viewBalances(bs []store.Balance) []balanceView {
	out := []balanceView{}
	for _, b := range bs {
		out = append(out, viewBalance(b))
	}
	return out
}

type partnerBalanceView struct {
	Partner *partnerView `json:"partner"`
	balanceView
}

type payoutItemView struct {
	Partner     *partnerView      `json:"partner"`
	Currency    string            `json:"currency"`
	Amount      json.Number       `json:"amount"`
	Rewards     json.Number       `json:"rewards_amount"`
	Clawback    json.Number       `json:"clawback_amount"`
	RewardCount int               `json:"reward_count"`
	RewardList  []payoutRewardRef `json:"rewards,omitempty"`
}

type payoutRewardRef struct {
	TransactionKey string      `json:"transaction_key"`
	Amount         json.Number `json:"amount"`
}

type payoutView struct {
	ID        int64            `json:"id"`
	Status    string           `json:"status"`
	Reference *string          `json:"reference"`
	CreatedAt time.Time        `json:"created_at"`
	PaidAt    *time.Time       `json:"paid_at"`
	Totals    []moneyView      `json:"totals"`
	Items     []payoutItemView `json:"items"`
}

func viewPayout(po *store.Payout, rewards []store.PayoutRewardLine) *payoutView {
	v := &payoutView{ID: po.ID, Status: po.Status, Reference: orNull(po.Reference), CreatedAt: po.CreatedAt,
		Totals: []moneyView{}, Items: []payoutItemView{}}
	if !po.PaidAt.IsZero() {
		t := po.PaidAt
		v.PaidAt = &t
	}
	for _, m := range po.Totals() {
		v.Totals = append(v.Totals, moneyView{amountJSON(m), m.Currency})
	}
	for _, it := range po.Items {
		m := func(minor int64) json.Number { return amountJSON(rules.Money{Minor: minor, Currency: it.Currency}) }
		iv := payoutItemView{Partner: viewPartner(it.Partner), Currency: it.Currency, Amount: m(it.AmountMinor),
			Rewards: m(it.RewardsMinor), Clawback: m(it.ClawbackMinor), RewardCount: it.RewardCount}
		for _, r := range rewards {
			if r.ItemID == it.ID {
				iv.RewardList = append(iv.RewardList, payoutRewardRef{TransactionKey: r.TransactionKey, Amount: amountJSON(r.Amount)})
			}
		}
		v.Items = append(v.Items, iv)
	}
	return v
}

// --- shared by the API and the page ---

// programBalances is every partner's balance of a program, with its
// partner.
func (s *Server) programBalances(ctx context.Context, p *store.Program) ([]store.Balance, map[int64]*store.Partner, error) {
	bs, err := s.store.Balances(ctx, p.ID, 0)
	if err != nil {
		return nil, nil, err
	}
	partners := map[int64]*store.Partner{}
	for _, b := range bs {
		if partners[b.PartnerID] != nil {
			continue
		}
		pa, err := s.store.Partner(ctx, p.ID, store.PartnerRef{ID: b.PartnerID})
		if err != nil {
			return nil, nil, err
		}
		partners[b.PartnerID] = pa
	}
	return bs, partners, nil
}

// createPayout makes a batch of a program's approved balances (one
// partner's when partnerKey is not "").
func (s *Server) createPayout(ctx context.Context, p *store.Program, partnerKey string) (*store.Payout, error) {
	var partnerID int64
	if partnerKey != "" {
		pa, err := s.store.Partner(ctx, p.ID, store.PartnerRef{Key: partnerKey})
		if errors.Is(err, store.ErrNotFound) {
			return nil, errPartnerMissing.WithField("partner")
		}
		if err != nil {
			return nil, err
		}
		partnerID = pa.ID
	}
	var po *store.Payout
	err := s.store.Write(ctx, func(tx *store.Tx) (err error) {
		po, err = tracking.CreatePayout(tx, p, partnerID)
		return err
	})
	if err != nil {
		return nil, payoutError(err)
	}
	return po, nil
}

// maxReferenceLen bounds a payment reference.
const maxReferenceLen = 200

func checkReference(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if err := checkText("reference", ref, maxReferenceLen, true); err != nil {
		return "", invalid("reference", fmt.Sprintf("reference is the payment's reference (a PayPal batch id, a bank reference): 1 to %d characters.", maxReferenceLen))
	}
	return ref, nil
}

// markPayoutPaid marks a batch paid; changed is false when it was paid
// with this reference already.
func (s *Server) markPayoutPaid(ctx context.Context, p *store.Program, id int64, ref string) (*store.Payout, bool, error) {
	ref, err := checkReference(ref)
	if err != nil {
		return nil, false, err
	}
	var (
		po      *store.Payout
		changed bool
	)
	err = s.store.Write(ctx, func(tx *store.Tx) (err error) {
		po, changed, err = tracking.MarkPayoutPaid(tx, p, id, ref)
		return err
	})
	if err != nil {
		return nil, false, payoutError(err)
	}
	return po, changed, nil
}

// approveFlags approves a flagged customer's rewards.
func (s *Server) approveFlags(ctx context.Context, p *store.Program, key string) (*store.Customer, bool, error) {
	if checkText("key", key, maxKeyLen, true) != nil {
		return nil, false, errNoFlags
	}
	var (
		c       *store.Customer
		changed bool
	)
	err := s.store.Write(ctx, func(tx *store.Tx) (err error) {
		c, changed, err = tracking.ApproveFlags(tx, p, key)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, errNoFlags
	}
	return c, changed, err
}

// --- CSV exports ---

// Export formats of a batch.
const (
	csvGeneric = "generic"
	csvPayPal  = "paypal"
)

// payoutCSV writes a batch as CSV. generic: a header row, then partner
// key, name, email, amount, currency, reward count and batch id per item.
// paypal: PayPal Payouts' upload layout, one currency per file (PayPal's
// rule) and no header: recipient (the partner's email), amount, currency,
// customer ID (the partner key when PayPal takes it: at most 30 characters
// without spaces; else "partner-" and its id), note to the recipient and
// the wallet, PAYPAL. Cells that a spreadsheet would read as a formula get
// a leading '.
func payoutCSV(po *store.Payout, format, currency string) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	write := func(cells ...string) {
		for i, c := range cells {
			cells[i] = csvGuard(c)
		}
		w.Write(cells)
	}
	switch format {
	case csvGeneric:
		w.Write([]string{"partner_key", "partner_name", "partner_email", "amount", "currency", "reward_count", "batch_id"})
		for _, it := range po.Items {
			if currency != "" && it.Currency != currency {
				continue
			}
			write(it.Partner.Key, it.Partner.Name, it.Partner.Email, it.Amount().String(), it.Currency,
				strconv.Itoa(it.RewardCount), strconv.FormatInt(po.ID, 10))
		}
	case csvPayPal:
		if currency == "" {
			if cs := po.Currencies(); len(cs) == 1 {
				currency = cs[0]
			} else {
				return nil, invalid("currency", "PayPal takes one currency per file, and this batch has "+strings.Join(cs, ", ")+
					": add currency=XXX for each.")
			}
		}
		note := fmt.Sprintf("Affiliate payout %d", po.ID)
		for _, it := range po.Items {
			if it.Currency != currency {
				continue
			}
			write(it.Partner.Email, it.Amount().String(), it.Currency, paypalCustomerID(it.Partner), note, "PAYPAL")
		}
	default:
		return nil, invalid("format", "format is generic or paypal.")
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

var paypalIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,30}$`)

// paypalCustomerID is PayPal's optional customer ID for a partner: at most
// 30 characters, no spaces.
func paypalCustomerID(p *store.Partner) string {
	if paypalIDRe.MatchString(p.Key) {
		return p.Key
	}
	return "partner-" + strconv.FormatInt(p.ID, 10)
}

// csvGuard keeps a cell from being read as a formula (OWASP, CSV
// injection): one starting with = + - @, a tab or a carriage return gets a
// leading '.
func csvGuard(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// sendPayoutCSV answers a batch's CSV as a download.
func sendPayoutCSV(c *fiber.Ctx, p *store.Program, po *store.Payout) error {
	format := c.Query("format", csvGeneric)
	currency := ""
	if q := c.Query("currency"); q != "" {
		cur, err := rules.NormalizeCurrency(q)
		if err != nil {
			return invalid("currency", "currency must be an ISO 4217 code such as USD.")
		}
		currency = cur
	}
	body, err := payoutCSV(po, format, currency)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("potrack-%s-payout-%d-%s", p.ID, po.ID, format)
	if currency != "" {
		name += "-" + currency
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`.csv"`)
	c.Set("X-Content-Type-Options", "nosniff")
	return c.Send(body)
}

// --- admin API handlers ---

func (s *Server) payoutRoutes(adm fiber.Router) {
	adm.Get("/programs/:id/payouts/balances", s.adminBalances)
	adm.Get("/programs/:id/payouts", s.adminListPayouts)
	adm.Post("/programs/:id/payouts", s.adminCreatePayout)
	adm.Get("/programs/:id/payouts/:payout", s.adminGetPayout)
	adm.Get("/programs/:id/payouts/:payout/export", s.adminExportPayout)
	adm.Post("/programs/:id/payouts/:payout/paid", s.adminMarkPayoutPaid)
	adm.Get("/programs/:id/flags", s.adminListFlags)
	adm.Post("/programs/:id/flags/:key/approve", s.adminApproveFlags)
	adm.Get("/programs/:id/partners/:key/page", s.adminGetPartnerPage)
	adm.Post("/programs/:id/partners/:key/page", s.adminMakePartnerPage)
	adm.Delete("/programs/:id/partners/:key/page", s.adminRevokePartnerPage)
}

func (s *Server) adminBalances(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	bs, partners, err := s.programBalances(c.UserContext(), p)
	if err != nil {
		return err
	}
	out := []partnerBalanceView{}
	for _, b := range bs {
		out = append(out, partnerBalanceView{Partner: viewPartner(partners[b.PartnerID]), balanceView: viewBalance(b)})
	}
	return c.JSON(fiber.Map{"data": out})
}

func (s *Server) adminListPayouts(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	limit, err := intQuery(c, "limit", defaultLimit, 1, maxLimit)
	if err != nil {
		return err
	}
	page, err := intQuery(c, "page", 1, 1, 1_000_000)
	if err != nil {
		return err
	}
	list, total, err := s.store.Payouts(c.UserContext(), p.ID, limit, (page-1)*limit)
	if err != nil {
		return err
	}
	out := make([]*payoutView, len(list))
	for i, po := range list {
		out[i] = viewPayout(po, nil)
	}
	return c.JSON(fiber.Map{"data": out, "meta": pageMeta(c, page, limit, total, len(list))})
}

func (s *Server) adminCreatePayout(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	var in struct {
		Partner *string `json:"partner"`
	}
	if len(bytes.TrimSpace(c.Request().Body())) > 0 {
		if err := decodeStrictJSON(c, &in); err != nil {
			return err
		}
	}
	key := ""
	if in.Partner != nil {
		key = strings.TrimSpace(*in.Partner)
		if err := checkText("partner", key, maxKeyLen, true); err != nil {
			return err
		}
	}
	po, err := s.createPayout(c.UserContext(), p, key)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"data": viewPayout(po, nil)})
}

// payoutParam loads the :payout batch of the :id program.
func (s *Server) payoutParam(c *fiber.Ctx, p *store.Program) (*store.Payout, error) {
	id, err := strconv.ParseInt(c.Params("payout"), 10, 64)
	if err != nil || id < 1 {
		return nil, errPayoutMissing
	}
	po, err := s.store.Payout(c.UserContext(), p.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errPayoutMissing
	}
	return po, err
}

func (s *Server) adminGetPayout(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	po, err := s.payoutParam(c, p)
	if err != nil {
		return err
	}
	rewards, err := s.store.PayoutRewards(c.UserContext(), po.ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": viewPayout(po, rewards)})
}

func (s *Server) adminExportPayout(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	po, err := s.payoutParam(c, p)
	if err != nil {
		return err
	}
	return sendPayoutCSV(c, p, po)
}

func (s *Server) adminMarkPayoutPaid(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	po, err := s.payoutParam(c, p)
	if err != nil {
		return err
	}
	var in struct {
		Reference string `json:"reference"`
	}
	if err := decodeStrictJSON(c, &in); err != nil {
		return err
	}
	po, changed, err := s.markPayoutPaid(c.UserContext(), p, po.ID, in.Reference)
	if err != nil {
		return err
	}
	if !changed {
		c.Set("Idempotent-Replayed", "true")
	}
	return c.JSON(fiber.Map{"data": viewPayout(po, nil)})
}

type flaggedCustomerView struct {
	*customerView
	Rewards     []moneyView `json:"rewards"`
	RewardCount int         `json:"reward_count"`
	Held        bool        `json:"held"`
}

type flaggedClickView struct {
	Partner   *partnerView `json:"partner"`
	URL       string       `json:"url"`
	Flags     []string     `json:"flags"`
	CreatedAt time.Time    `json:"created_at"`
}

func (s *Server) adminListFlags(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	limit, err := intQuery(c, "limit", defaultLimit, 1, maxLimit)
	if err != nil {
		return err
	}
	page, err := intQuery(c, "page", 1, 1, 1_000_000)
	if err != nil {
		return err
	}
	held := c.Query("held") == "true"
	list, total, err := s.store.FlaggedCustomers(c.UserContext(), p.ID, held, limit, (page-1)*limit)
	if err != nil {
		return err
	}
	customers := []flaggedCustomerView{}
	for _, f := range list {
		v := flaggedCustomerView{customerView: viewCustomer(f.Customer), Rewards: []moneyView{}, RewardCount: f.RewardCount, Held: f.HeldByFlags()}
		for _, m := range f.Rewards {
			v.Rewards = append(v.Rewards, moneyView{amountJSON(m), m.Currency})
		}
		customers = append(customers, v)
	}
	clicks, err := s.store.FlaggedClicks(c.UserContext(), p.ID, 0, 50)
	if err != nil {
		return err
	}
	clickViews := []flaggedClickView{}
	for _, k := range clicks {
		clickViews = append(clickViews, flaggedClickView{Partner: viewPartner(k.Partner), URL: k.URL, Flags: splitFlags(k.Flags), CreatedAt: k.CreatedAt})
	}
	return c.JSON(fiber.Map{"data": fiber.Map{"customers": customers, "clicks": clickViews},
		"meta": pageMeta(c, page, limit, total, len(list))})
}

func (s *Server) adminApproveFlags(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	key, err := url.PathUnescape(c.Params("key"))
	if err != nil {
		return errNoFlags
	}
	cu, changed, err := s.approveFlags(c.UserContext(), p, key)
	if err != nil {
		return err
	}
	if !changed {
		c.Set("Idempotent-Replayed", "true")
	}
	return c.JSON(fiber.Map{"data": viewCustomer(cu)})
}

// splitFlags is a stored flag list as JSON's array.
func splitFlags(flags string) []string {
	if flags == "" {
		return []string{}
	}
	return strings.Split(flags, ",")
}
