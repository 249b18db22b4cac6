package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The admin API's numbers (issue 14, items 1, 2 and 4): the overview of
// every program, a program's numbers with a series per UTC day, partners
// with their numbers (sorted, searched, paged), one partner's page, and
// customers and transactions searched and filtered. The admin page is
// built on the same functions; the exports (export.go) take the same
// filters.

const (
	defaultRangeDays = 30
	// maxRangeDays bounds a range: two years, a leap day included.
	maxRangeDays = 731
	maxSearchLen = 255
	// partnerDetailRows is how many of a partner's customers and
	// transactions its page lists (the lists filtered by partner page on).
	partnerDetailRows = 10
)

// dateRange reads a range from days=N (the last N UTC days, today
// included) or from= and to= (each a date, 2026-03-01, meaning its UTC
// midnight, or an RFC 3339 time; to is excluded). Without either it is the
// last 30 days when optional is false, and open (zero) when true; one of
// from and to alone runs to the end of today or starts 30 days before to.
func dateRange(c *fiber.Ctx, optional bool) (store.Range, error) {
	days, from, to := c.Query("days"), c.Query("from"), c.Query("to")
	tomorrow := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	if days != "" {
		if from != "" || to != "" {
			return store.Range{}, invalid("days", "Give days, or from and to, not both.")
		}
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > maxRangeDays {
			return store.Range{}, invalid("days", fmt.Sprintf("days must be a whole number from 1 to %d.", maxRangeDays))
		}
		return store.Range{From: tomorrow.AddDate(0, 0, -n), To: tomorrow}, nil
	}
	if from == "" && to == "" {
		if optional {
			return store.Range{}, nil
		}
		return store.Range{From: tomorrow.AddDate(0, 0, -defaultRangeDays), To: tomorrow}, nil
	}
	var r store.Range
	var err error
	if to == "" {
		r.To = tomorrow
	} else if r.To, err = parseInstant("to", to); err != nil {
		return r, err
	}
	if from == "" {
		r.From = r.To.AddDate(0, 0, -defaultRangeDays)
	} else if r.From, err = parseInstant("from", from); err != nil {
		return r, err
	}
	if !r.From.Before(r.To) {
		return r, invalid("to", "to must be after from (the range is from, included, to to, excluded).")
	}
	if r.To.Sub(r.From) > maxRangeDays*24*time.Hour {
		return r, invalid("from", fmt.Sprintf("A range spans at most %d days (two years).", maxRangeDays))
	}
	return r, nil
}

// parseInstant reads a date (UTC midnight) or an RFC 3339 time, within
// the years a sale can carry.
func parseInstant(field, v string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		t, err = time.Parse(time.RFC3339, v)
	}
	if err != nil || t.Year() < 2000 || t.Year() > 9000 {
		return time.Time{}, invalid(field, field+" must be a date such as 2026-03-01 (UTC) or an RFC 3339 time such as 2026-03-01T00:00:00Z.")
	}
	return t.UTC(), nil
}

type rangeView struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func viewRange(r store.Range) *rangeView {
	if r.From.IsZero() && r.To.IsZero() {
		return nil
	}
	return &rangeView{r.From, r.To}
}

func moneyViews(ms []rules.Money) []moneyView {
	out := make([]moneyView, 0, len(ms))
	for _, m := range ms {
		out = append(out, moneyView{amountJSON(m), m.Currency})
	}
	return out
}

type dayView struct {
	Day     string      `json:"day"`
	Clicks  int64       `json:"clicks"`
	Signups int64       `json:"signups"`
	Sales   int64       `json:"sales"`
	Revenue []moneyView `json:"revenue"`
	Rewards []moneyView `json:"rewards"`
}

type numbersView struct {
	Range   *rangeView  `json:"range"`
	Clicks  int64       `json:"clicks"`
	Signups int64       `json:"signups"`
	Sales   int64       `json:"sales"`
	Revenue []moneyView `json:"revenue"`
	Rewards []moneyView `json:"rewards"`
	Days    []dayView   `json:"days"`
}

func viewNumbers(n *store.ProgramNumbers) *numbersView {
	v := &numbersView{Range: viewRange(n.Range), Clicks: n.Clicks, Signups: n.Signups, Sales: n.Sales,
		Revenue: moneyViews(n.Revenue), Rewards: moneyViews(n.Rewards), Days: make([]dayView, len(n.Days))}
	for i, d := range n.Days {
		v.Days[i] = dayView{d.Day, d.Clicks, d.Signups, d.Sales, moneyViews(d.Revenue), moneyViews(d.Rewards)}
	}
	return v
}

type programRef struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Currency string `json:"currency"`
}

type overviewView struct {
	Program programRef   `json:"program"`
	Numbers *numbersView `json:"numbers"`
}

// overview is every program's numbers over r, in the programs' order.
func (s *Server) overview(c *fiber.Ctx, r store.Range) ([]overviewView, error) {
	programs, err := s.store.Programs(c.UserContext())
	if err != nil {
		return nil, err
	}
	out := make([]overviewView, 0, len(programs))
	for _, p := range programs {
		n, err := s.store.ProgramNumbers(c.UserContext(), p.ID, r)
		if err != nil {
			return nil, err
		}
		out = append(out, overviewView{programRef{p.ID, p.Name, p.Currency}, viewNumbers(n)})
	}
	return out, nil
}

// GET /admin/api/overview?days=30 | from=&to=
func (s *Server) adminOverview(c *fiber.Ctx) error {
	r, err := dateRange(c, false)
	if err != nil {
		return err
	}
	data, err := s.overview(c, r)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": data, "range": viewRange(r)})
}

// GET /admin/api/programs/{id}/numbers?days=30 | from=&to=
func (s *Server) adminProgramNumbers(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	r, err := dateRange(c, false)
	if err != nil {
		return err
	}
	n, err := s.store.ProgramNumbers(c.UserContext(), p.ID, r)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": viewNumbers(n)})
}

// --- partners ---

type partnerNumbersView struct {
	Partner   *partnerView `json:"partner"`
	Clicks    int64        `json:"clicks"`
	Customers int64        `json:"customers"`
	Sales     int64        `json:"sales"`
	Revenue   []moneyView  `json:"revenue"`
	Rewards   []moneyView  `json:"rewards"`
	// Conversion is customers / clicks, null without clicks.
	Conversion *float64 `json:"conversion"`
}

func viewPartnerNumbers(n *store.PartnerNumbers) *partnerNumbersView {
	return &partnerNumbersView{Partner: viewPartner(&n.Partner), Clicks: n.Clicks, Customers: n.Customers, Sales: n.Sales,
		Revenue: moneyViews(n.Revenue), Rewards: moneyViews(n.Rewards), Conversion: n.Conversion}
}

// partnerQuery reads the partners list's query: the range, q (a key prefix
// or part of a name), sort (one of store.PartnerSortKeys, default
// revenue) and order (asc or desc; desc by default, asc for key and name).
func partnerQuery(c *fiber.Ctx, p *store.Program) (store.PartnerQuery, error) {
	r, err := dateRange(c, false)
	if err != nil {
		return store.PartnerQuery{ProgramID: p.ID, Sort: store.SortRevenue}, err
	}
	return partnerQueryOver(c, p, r)
}

// partnerQueryOver reads the partners list's query but its range, which
// is r (the admin page reads its own, admin_web_range.go).
func partnerQueryOver(c *fiber.Ctx, p *store.Program, r store.Range) (store.PartnerQuery, error) {
	q := store.PartnerQuery{ProgramID: p.ID, Sort: store.SortRevenue, Range: r}
	var err error
	if q.Search, err = searchQuery(c); err != nil {
		return q, err
	}
	if v := c.Query("sort"); v != "" {
		if !store.ValidPartnerSort(v) {
			return q, invalid("sort", "sort must be one of "+strings.Join(store.PartnerSortKeys(), ", ")+".")
		}
		q.Sort = v
	}
	q.Desc = q.Sort != store.SortKey && q.Sort != store.SortName
	switch c.Query("order") {
	case "":
	case "asc":
		q.Desc = false
	case "desc":
		q.Desc = true
	default:
		return q, invalid("order", "order must be asc or desc.")
	}
	return q, nil
}

func searchQuery(c *fiber.Ctx) (string, error) {
	q := strings.TrimSpace(c.Query("q"))
	if err := checkText("q", q, maxSearchLen, false); err != nil {
		return "", err
	}
	return q, nil
}

func order(desc bool) string {
	if desc {
		return "desc"
	}
	return "asc"
}

// GET /admin/api/programs/{id}/partners?days|from&to&q&sort&order&page&limit
func (s *Server) adminPartnerNumbers(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	q, err := partnerQuery(c, p)
	if err != nil {
		return err
	}
	limit, page, err := pageQuery(c)
	if err != nil {
		return err
	}
	q.Limit, q.Offset = limit, (page-1)*limit
	list, total, err := s.store.PartnerNumbers(c.UserContext(), q)
	if err != nil {
		return err
	}
	data := make([]*partnerNumbersView, len(list))
	for i, n := range list {
		data[i] = viewPartnerNumbers(n)
	}
	return c.JSON(fiber.Map{"data": data, "range": viewRange(q.Range), "sort": q.Sort, "order": order(q.Desc),
		"links": pageLinks(c, page, limit, total), "meta": pageMeta(c, page, limit, total, len(list))})
}

func pageQuery(c *fiber.Ctx) (limit, page int, err error) {
	if limit, err = intQuery(c, "limit", defaultLimit, 1, maxLimit); err != nil {
		return 0, 0, err
	}
	if page, err = intQuery(c, "page", 1, 1, 1_000_000); err != nil {
		return 0, 0, err
	}
	return limit, page, nil
}

type funnelDayView struct {
	Day       string `json:"day"`
	Clicks    int64  `json:"clicks"`
	Customers int64  `json:"customers"`
	Sales     int64  `json:"sales"`
}

type partnerDetailView struct {
	*partnerNumbersView
	Range  *rangeView      `json:"range"`
	Link   string          `json:"link"`
	Codes  []*couponView   `json:"codes"`
	Funnel []funnelDayView `json:"funnel"`
	// The latest partnerDetailRows customers and transactions, newest
	// first, of every date; the totals say how many there are (GET
	// …/customers?partner=KEY and …/transactions?partner=KEY page
	// through them).
	LatestCustomers    []*customerView    `json:"latest_customers"`
	LatestTransactions []*transactionView `json:"latest_transactions"`
	CustomersTotal     int                `json:"customers_total"`
	TransactionsTotal  int                `json:"transactions_total"`
}

// partnerParts is what a partner's page shows, as the store has it: the
// admin API's answer (partnerDetail) and the admin page's partner page
// are made from it.
type partnerParts struct {
	Partner           *store.Partner
	Numbers           *store.PartnerNumbers
	Funnel            []store.FunnelDay
	Codes             []*store.Coupon
	Customers         []*store.Customer
	CustomersTotal    int
	Transactions      []*store.Transaction
	TransactionsTotal int
	Link              string
}

// partnerDetail is one partner's page: its numbers and funnel over r, its
// referral link and codes, and its latest customers and transactions.
func (s *Server) partnerDetail(c *fiber.Ctx, p *store.Program, key string, r store.Range) (*partnerDetailView, error) {
	d, err := s.partnerParts(c, p, key, r)
	if err != nil {
		return nil, err
	}
	v := &partnerDetailView{partnerNumbersView: viewPartnerNumbers(d.Numbers), Range: viewRange(r),
		Link: d.Link, Codes: []*couponView{}, Funnel: make([]funnelDayView, len(d.Funnel)),
		LatestCustomers: make([]*customerView, len(d.Customers)), LatestTransactions: make([]*transactionView, len(d.Transactions)),
		CustomersTotal: d.CustomersTotal, TransactionsTotal: d.TransactionsTotal}
	for _, k := range d.Codes {
		v.Codes = append(v.Codes, viewCoupon(k))
	}
	for i, f := range d.Funnel {
		v.Funnel[i] = funnelDayView{f.Day, f.Clicks, f.Customers, f.Sales}
	}
	for i, cu := range d.Customers {
		v.LatestCustomers[i] = viewCustomer(cu)
	}
	for i, tr := range d.Transactions {
		v.LatestTransactions[i] = viewTransaction(tr)
	}
	return v, nil
}

func (s *Server) partnerParts(c *fiber.Ctx, p *store.Program, key string, r store.Range) (*partnerParts, error) {
	if err := checkText("key", key, maxKeyLen, true); err != nil {
		return nil, errPartnerMissing
	}
	ctx := c.UserContext()
	partner, err := s.store.Partner(ctx, p.ID, store.PartnerRef{Key: key})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errPartnerMissing
	}
	if err != nil {
		return nil, err
	}
	nums, _, err := s.store.PartnerNumbers(ctx, store.PartnerQuery{ProgramID: p.ID, Range: r, PartnerID: partner.ID, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(nums) != 1 {
		return nil, errPartnerMissing
	}
	funnel, err := s.store.PartnerFunnel(ctx, partner.ID, r)
	if err != nil {
		return nil, err
	}
	codes, err := s.store.PartnerCoupons(ctx, p.ID, []int64{partner.ID})
	if err != nil {
		return nil, err
	}
	customers, ctotal, err := s.store.SearchCustomers(ctx, store.CustomerFilter{ProgramID: p.ID, PartnerKey: partner.Key, Limit: partnerDetailRows})
	if err != nil {
		return nil, err
	}
	trs, ttotal, err := s.store.Transactions(ctx, store.TransactionFilter{ProgramID: p.ID, PartnerKey: partner.Key, Limit: partnerDetailRows})
	if err != nil {
		return nil, err
	}
	return &partnerParts{Partner: partner, Numbers: nums[0], Funnel: funnel, Codes: codes[partner.ID],
		Customers: customers, CustomersTotal: ctotal, Transactions: trs, TransactionsTotal: ttotal,
		Link: referralLink(s.referralBase(c, p), p, partner.Key)}, nil
}

// GET /admin/api/programs/{id}/partners/{key}?days|from&to
func (s *Server) adminPartnerDetail(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	r, err := dateRange(c, false)
	if err != nil {
		return err
	}
	key, err := keyParam(c)
	if err != nil {
		return errPartnerMissing
	}
	v, err := s.partnerDetail(c, p, key, r)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": v})
}

// --- customers and transactions ---

// customerFilterQuery reads q (a key prefix or part of an email), partner (a
// key) and the range (optional: all time without one).
func customerFilterQuery(c *fiber.Ctx, p *store.Program) (store.CustomerFilter, error) {
	f, err := customerFilterOver(c, p, store.Range{})
	if err != nil {
		return f, err
	}
	r, err := dateRange(c, true)
	f.From, f.To = r.From, r.To
	return f, err
}

// customerFilterOver reads the customers list's filters but its range,
// which is r.
func customerFilterOver(c *fiber.Ctx, p *store.Program, r store.Range) (store.CustomerFilter, error) {
	f := store.CustomerFilter{ProgramID: p.ID, From: r.From, To: r.To}
	var err error
	if f.Search, err = searchQuery(c); err != nil {
		return f, err
	}
	f.PartnerKey, err = keyQuery(c, "partner")
	return f, err
}

func keyQuery(c *fiber.Ctx, name string) (string, error) {
	v := strings.TrimSpace(c.Query(name))
	if err := checkText(name, v, maxKeyLen, false); err != nil {
		return "", err
	}
	return v, nil
}

// GET /admin/api/programs/{id}/customers?q&partner&days|from&to&page&limit
func (s *Server) adminCustomers(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	f, err := customerFilterQuery(c, p)
	if err != nil {
		return err
	}
	limit, page, err := pageQuery(c)
	if err != nil {
		return err
	}
	f.Limit, f.Offset = limit, (page-1)*limit
	list, total, err := s.store.SearchCustomers(c.UserContext(), f)
	if err != nil {
		return err
	}
	data := make([]*customerView, len(list))
	for i, cu := range list {
		data[i] = viewCustomer(cu)
	}
	return c.JSON(fiber.Map{"data": data, "links": pageLinks(c, page, limit, total), "meta": pageMeta(c, page, limit, total, len(list))})
}

// transactionSources are the source filter's values, with the names the
// admin page shows as aliases.
var transactionSources = map[string]string{
	store.SourceAPI: store.SourceAPI, "rest": store.SourceAPI,
	store.SourceJS: store.SourceJS, "browser": store.SourceJS,
	store.SourceGateway: store.SourceGateway,
}

// transactionFilterQuery reads key, customer, partner, source (api or rest, js
// or browser, gateway), status (ok, refunded), verified (true, false) and
// the range (optional).
func transactionFilterQuery(c *fiber.Ctx, p *store.Program) (store.TransactionFilter, error) {
	f, err := transactionFilterOver(c, p, store.Range{})
	if err != nil {
		return f, err
	}
	r, err := dateRange(c, true)
	f.From, f.To = r.From, r.To
	return f, err
}

// transactionFilterOver reads the transactions list's filters but its
// range, which is r.
func transactionFilterOver(c *fiber.Ctx, p *store.Program, r store.Range) (store.TransactionFilter, error) {
	f := store.TransactionFilter{ProgramID: p.ID, From: r.From, To: r.To}
	var err error
	for name, dst := range map[string]*string{"key": &f.Key, "customer": &f.CustomerKey, "partner": &f.PartnerKey} {
		if *dst, err = keyQuery(c, name); err != nil {
			return f, err
		}
	}
	if v := c.Query("source"); v != "" {
		src, ok := transactionSources[v]
		if !ok {
			return f, invalid("source", "source must be api (or rest), js (or browser) or gateway.")
		}
		f.Source = src
	}
	switch v := c.Query("status"); v {
	case "", store.StatusOK, store.StatusRefunded:
		f.Status = v
	default:
		return f, invalid("status", "status must be ok or refunded.")
	}
	switch c.Query("verified") {
	case "":
	case "true":
		yes := true
		f.Verified = &yes
	case "false":
		no := false
		f.Verified = &no
	default:
		return f, invalid("verified", "verified must be true or false.")
	}
	return f, nil
}

// GET /admin/api/programs/{id}/transactions?key&customer&partner&source&status&verified&days|from&to&page&limit
func (s *Server) adminTransactions(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	f, err := transactionFilterQuery(c, p)
	if err != nil {
		return err
	}
	limit, page, err := pageQuery(c)
	if err != nil {
		return err
	}
	f.Limit, f.Offset = limit, (page-1)*limit
	list, total, err := s.store.Transactions(c.UserContext(), f)
	if err != nil {
		return err
	}
	data := make([]*transactionView, len(list))
	for i, tr := range list {
		data[i] = viewTransaction(tr)
	}
	return c.JSON(fiber.Map{"data": data, "links": pageLinks(c, page, limit, total), "meta": pageMeta(c, page, limit, total, len(list))})
}

// reportAPIRoutes mounts the numbers, refusals and exports on the admin
// API's group (bearer token).
func (s *Server) reportAPIRoutes(adm fiber.Router) {
	adm.Get("/overview", s.adminOverview)
	adm.Get("/programs/:id/numbers", s.adminProgramNumbers)
	adm.Get("/programs/:id/partners", s.adminPartnerNumbers)
	adm.Get("/programs/:id/partners/:key", s.adminPartnerDetail)
	adm.Get("/programs/:id/customers", s.adminCustomers)
	adm.Get("/programs/:id/transactions", s.adminTransactions)
	adm.Get("/programs/:id/refusals", s.adminRefusals)
	adm.Get("/programs/:id/export/:file", s.adminExport)
}
