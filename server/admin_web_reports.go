package server

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The admin page's numbers (issue 14): the home's overview of every
// program with a trend line, the partners list with each partner's
// numbers (sortable), and a partner's page with its funnel over time. All
// of it reads the store functions the admin API answers with
// (store/reports.go, server/reports.go), over the page's date range
// (admin_web_range.go).

// --- the overview ---

type overviewRow struct {
	*programView
	ArchivedAt             time.Time
	Clicks, Signups, Sales int64
	Revenue, Rewards       []rules.Money // the program's currency first
	Spark                  *sparkline
}

// mainFirst lists ms with currency first, zero when absent.
func mainFirst(ms []rules.Money, currency string) []rules.Money {
	out := []rules.Money{moneyIn(ms, currency)}
	for _, m := range ms {
		if m.Currency != currency {
			out = append(out, m)
		}
	}
	return out
}

// sparkline is a program's trend: revenue (in its currency) and clicks
// per day, each scaled to its own highest day.
type sparkline struct {
	Width, Height   int
	Revenue, Clicks string // polyline points
	Title           string
}

const sparkWidth, sparkHeight = 200, 40

func newSparkline(n *store.ProgramNumbers, currency string) *sparkline {
	rev := make([]int64, len(n.Days))
	clicks := make([]int64, len(n.Days))
	for i, d := range n.Days {
		rev[i], clicks[i] = sumIn(d.Revenue, currency), d.Clicks
	}
	return &sparkline{Width: sparkWidth, Height: sparkHeight,
		Revenue: sparkPoints(rev), Clicks: sparkPoints(clicks),
		Title: fmt.Sprintf("Revenue (%s) and clicks per day, %s to %s", currency,
			formatDate(n.Range.From), formatDate(n.Range.To.Add(-time.Second)))}
}

func sparkPoints(vs []int64) string {
	var top int64
	for _, v := range vs {
		top = max(top, v)
	}
	var b strings.Builder
	n := max(len(vs)-1, 1)
	for i, v := range vs {
		x := 1 + float64(i)*float64(sparkWidth-2)/float64(n)
		y := float64(sparkHeight) - 2
		if top > 0 {
			y -= float64(v) / float64(top) * float64(sparkHeight-4)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x, y)
	}
	return b.String()
}

// overviewRows is every program's numbers over r: the archived ones when
// archived is true, the others otherwise.
func (s *Server) overviewRows(c *fiber.Ctx, r store.Range, archived bool) (rows []overviewRow, hidden int, err error) {
	ctx := c.UserContext()
	list, err := s.store.Programs(ctx)
	if err != nil {
		return nil, 0, err
	}
	gone, err := s.store.ArchivedPrograms(ctx)
	if err != nil {
		return nil, 0, err
	}
	for _, p := range list {
		at, isArchived := gone[p.ID]
		if isArchived != archived {
			hidden++
			continue
		}
		n, err := s.store.ProgramNumbers(ctx, p.ID, r)
		if err != nil {
			return nil, 0, err
		}
		rows = append(rows, overviewRow{programView: s.viewProgram(c, p), ArchivedAt: at,
			Clicks: n.Clicks, Signups: n.Signups, Sales: n.Sales,
			Revenue: mainFirst(n.Revenue, p.Currency), Rewards: mainFirst(n.Rewards, p.Currency),
			Spark: newSparkline(n, p.Currency)})
	}
	return rows, hidden, nil
}

// --- partners with their numbers ---

// partnerColumns are the partners table's sortable columns: the label,
// the sort key and whether it is a number (sorted high to low first).
var partnerColumns = []struct {
	Label, Sort string
	Num         bool
}{
	{"Partner", store.SortName, false},
	{"Clicks", store.SortClicks, true},
	{"Customers", store.SortCustomers, true},
	{"Sales", store.SortSales, true},
	{"Revenue", store.SortRevenue, true},
	{"Rewards", store.SortRewards, true},
	{"Conversion", store.SortConversion, true},
}

// sortHeader is a column head that sorts the table by its column.
type sortHeader struct {
	Label, Href string
	Num         bool
	Current     bool
	Desc        bool   // the current order
	ARIA        string // aria-sort
}

func sortHeaders(c *fiber.Ctx, q store.PartnerQuery) []sortHeader {
	out := make([]sortHeader, 0, len(partnerColumns))
	for _, col := range partnerColumns {
		h := sortHeader{Label: col.Label, Num: col.Num, Current: q.Sort == col.Sort}
		// A first click sorts numbers high to low and names A to Z; a
		// click on the current column turns its order round.
		desc := col.Num
		if h.Current {
			h.Desc, desc = q.Desc, !q.Desc
			h.ARIA = "ascending"
			if q.Desc {
				h.ARIA = "descending"
			}
		}
		h.Href = pageHref(c, c.Path(), map[string]string{"sort": col.Sort, "order": order(desc)}, nil) + "#partners"
		out = append(out, h)
	}
	return out
}

// percent shows a conversion rate: "12.5 %", or "—" without clicks.
func percent(f *float64) string {
	if f == nil || math.IsNaN(*f) {
		return "—"
	}
	v := *f * 100
	if v == math.Trunc(v) || v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " %"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " %"
}

// moneys shows amounts in several currencies: "$120.00 + €30.00".
func moneys(ms []rules.Money) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, formatMoney(m))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, " + ")
}

// --- one partner ---

type adminPartnerData struct {
	*partnerParts
	Range        rangePick
	AffLink      string
	Funnel       *lineChart
	Narrow       *lineChart // the funnel drawn for a phone
	Conv         string     // customers ÷ clicks
	Revenue      []rules.Money
	Rewards      []rules.Money
	Table        txTable
	CustomersURL string // the customers list filtered by the partner
	SalesURL     string // the transactions list filtered by the partner
	ExportTx     string
	ExportCl     string
}

// partnerPage is GET /admin/programs/:id/partners/:key: the partner's
// numbers and funnel over the range, its links and codes, and its latest
// customers and transactions.
func (s *Server) partnerPage(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	key, err := keyParam(c)
	if err != nil {
		return errPartnerMissing
	}
	rp := webRange(c, false)
	parts, err := s.partnerParts(c, p, key, rp.Range)
	if err != nil {
		return err
	}
	pk := url.Values{"partner": {parts.Partner.Key}}
	base := "/admin/programs/" + url.PathEscape(p.ID)
	exportQ := rp.APIQuery()
	exportQ.Set("partner", parts.Partner.Key)
	d := adminPartnerData{partnerParts: parts, Range: rp, AffLink: s.affLink(c, p, parts.Partner.Key),
		Funnel: funnelChart(parts.Funnel, chartWidth), Narrow: funnelChart(parts.Funnel, chartNarrowWidth),
		Conv: percent(parts.Numbers.Conversion), Revenue: mainFirst(parts.Numbers.Revenue, p.Currency),
		Rewards:      mainFirst(parts.Numbers.Rewards, p.Currency),
		Table:        txTable{ProgramID: p.ID, ID: "partner-transactions", Rows: parts.Transactions},
		CustomersURL: base + "/customers?" + pk.Encode(), SalesURL: base + "/transactions?" + pk.Encode(),
		ExportTx: exportURL(p.ID, "transactions", exportQ), ExportCl: exportURL(p.ID, "clicks", exportQ)}
	title := parts.Partner.Name
	if title == "" {
		title = parts.Partner.Key
	}
	return s.render(c, pageStatus(rp.Error), "partner", sess, &pageData{Title: title + " · " + p.Name,
		Program: s.viewProgram(c, p), Tab: "partners", Data: d})
}

// affLink is a partner's referral link on this server (aff.go); "" while
// the program has no landing page to send the visitor to.
func (s *Server) affLink(c *fiber.Ctx, p *store.Program, key string) string {
	if landingPage(p) == "" {
		return ""
	}
	return s.publicURL(c) + "/aff/" + url.PathEscape(key) + "?program=" + url.QueryEscape(p.ID)
}

// txTable is a transactions table (parts.html): the rows and the
// program their refund links go to.
type txTable struct {
	ProgramID string
	ID        string
	Rows      []*store.Transaction
}

// --- a line chart: the partner's funnel ---

type lineChart struct {
	Class, Title  string
	Width, Height int
	PlotLeft      int
	PlotRight     int
	Baseline      int
	YLabelX       int
	XLabelY       int
	SlotWidth     float64
	Grid          []chartGridLine
	Labels        []lineLabel
	Series        []lineSeries
	Days          []lineDay
}

type lineLabel struct {
	X     float64
	Label string
}

type lineSeries struct{ Class, Label, Points string }

type lineDay struct {
	X     float64
	Title string
}

// funnelChart draws a partner's clicks, customers and sales per day.
func funnelChart(days []store.FunnelDay, width int) *lineChart {
	series := []struct {
		class, label string
		value        func(store.FunnelDay) int64
	}{
		{"clicks", "Clicks", func(d store.FunnelDay) int64 { return d.Clicks }},
		{"customers", "Customers", func(d store.FunnelDay) int64 { return d.Customers }},
		{"sales", "Sales", func(d store.FunnelDay) int64 { return d.Sales }},
	}
	left := chartLeft(width) - 24
	ch := &lineChart{Class: "funnel", Width: width, Height: chartHeight, PlotLeft: left, PlotRight: width - chartRight,
		Baseline: chartHeight - chartBottom, YLabelX: left - 8, XLabelY: chartHeight - 8,
		Title: "Clicks, customers and sales per day"}
	if width < 600 {
		ch.Class += " narrow"
	} else {
		ch.Class += " wide"
	}
	var top int64
	for _, d := range days {
		top = max(top, d.Clicks, d.Customers, d.Sales)
	}
	// Counts: an axis of whole numbers in four equal steps.
	scale := max((top+chartTicks-1)/chartTicks*chartTicks, chartTicks)
	if top > 40 {
		scale = niceCeiling(top, 0)
	}
	n := max(len(days), 1)
	plotW := float64(ch.PlotRight - ch.PlotLeft)
	plotH := float64(ch.Baseline - chartTop)
	slot := plotW / float64(n)
	ch.SlotWidth = round1(slot)
	y := func(v int64) float64 { return round1(float64(ch.Baseline) - float64(v)/float64(scale)*plotH) }
	for i := 0; i <= chartTicks; i++ {
		v := scale * int64(i) / chartTicks
		ch.Grid = append(ch.Grid, chartGridLine{Y: y(v), Label: strconv.FormatInt(v, 10)})
	}
	every := chartLabelEvery(n, width)
	for i, d := range days {
		x := float64(ch.PlotLeft) + slot*float64(i)
		day, _ := time.Parse(time.DateOnly, d.Day)
		if i%every == 0 {
			ch.Labels = append(ch.Labels, lineLabel{round1(x + slot/2), day.Format("2 Jan")})
		}
		ch.Days = append(ch.Days, lineDay{round1(x), fmt.Sprintf("%s: %d clicks, %d customers, %d sales",
			day.Format("Mon 2 Jan"), d.Clicks, d.Customers, d.Sales)})
	}
	for _, sr := range series {
		var b strings.Builder
		for i, d := range days {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", round1(float64(ch.PlotLeft)+slot*float64(i)+slot/2), y(sr.value(d)))
		}
		ch.Series = append(ch.Series, lineSeries{sr.class, sr.label, b.String()})
	}
	return ch
}
