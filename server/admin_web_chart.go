package server

import (
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/bojanz/currency"
	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The sales chart: daily sales and rewards over the page's date range,
// drawn on the server as SVG, so it needs no script and no chart library.
// It is drawn twice, wide and narrow, and the stylesheet shows the one
// that fits: an SVG scales its text with its width, so one drawing at 960
// units shrunk to a phone's 360 px would have labels of 4 px.

const (
	chartWidth       = 960
	chartNarrowWidth = 420
	chartHeight      = 260
	chartRight       = 12
	chartTop         = 16
	chartBottom      = 28 // room for the dates
	chartTicks       = 4
)

// chartLeft is the room for the y-axis labels.
func chartLeft(width int) int {
	if width < 600 {
		return 58
	}
	return 72
}

// chartLabelEvery is how many days apart the dates under the bars are.
func chartLabelEvery(days, width int) int {
	most := 7
	if width < 600 {
		most = 4
	}
	return max(1, (days+most-1)/most)
}

type salesChart struct {
	Currency       string
	Width, Height  int
	PlotLeft       int
	PlotRight      int
	Baseline       int
	YLabelX        int // where the axis labels end
	XLabelY        int // where the dates sit
	SlotWidth      float64
	Days           []chartDay
	Grid           []chartGridLine
	Sales, Rewards rules.Money // totals over the range
	Transactions   int64
	Empty          bool
	Others         []otherCurrency // totals in currencies the chart does not draw
	Partners       []chartPartner
	Range          store.Range
	Narrow         *salesChart // the same chart drawn for a phone
}

type chartDay struct {
	Label                string // the day, under every few bars
	LabelX               float64
	SlotX                float64 // the day's whole column, for its tooltip
	SalesX, RewardsX     float64
	BarWidth             float64
	SalesY, SalesH       float64
	RewardsY, RewardsH   float64
	Title                string // tooltip text
	Sales, Rewards       rules.Money
	HasSales, HasRewards bool
}

type chartGridLine struct {
	Y     float64
	Label string
}

type otherCurrency struct {
	Sales, Rewards rules.Money
}

// chartPartner is a partner's line under the chart: its sales and rewards
// in the program's currency over the range.
type chartPartner struct {
	Key, Name      string
	Transactions   int64
	Sales, Rewards rules.Money
}

// chartPartners is how many partners the table under the chart lists.
const chartPartners = 20

func (s *Server) salesChart(c *fiber.Ctx, p *store.Program, r store.Range) (*salesChart, error) {
	n, err := s.store.ProgramNumbers(c.UserContext(), p.ID, r)
	if err != nil {
		return nil, err
	}
	top, _, err := s.store.PartnerNumbers(c.UserContext(), store.PartnerQuery{ProgramID: p.ID, Range: r,
		Sort: store.SortRevenue, Desc: true, Limit: chartPartners})
	if err != nil {
		return nil, err
	}
	ch := buildChart(p.Currency, n, chartWidth)
	ch.Narrow = buildChart(p.Currency, n, chartNarrowWidth)
	for _, pn := range top {
		if pn.Sales == 0 {
			continue
		}
		ch.Partners = append(ch.Partners, chartPartner{Key: pn.Partner.Key, Name: pn.Partner.Name, Transactions: pn.Sales,
			Sales:   rules.Money{Minor: sumIn(pn.Revenue, p.Currency), Currency: p.Currency},
			Rewards: rules.Money{Minor: sumIn(pn.Rewards, p.Currency), Currency: p.Currency}})
	}
	return ch, nil
}

// moneyIn is the amount of ms in currency, zero when absent.
func moneyIn(ms []rules.Money, currency string) rules.Money {
	return rules.Money{Minor: sumIn(ms, currency), Currency: currency}
}

// buildChart lays out the bars of n's days, width units wide. It draws the
// program's currency; totals in other currencies are listed under the
// chart instead of mixed in.
func buildChart(cur string, n *store.ProgramNumbers, width int) *salesChart {
	left := chartLeft(width)
	ch := &salesChart{Currency: cur, Width: width, Height: chartHeight, Range: n.Range,
		PlotLeft: left, PlotRight: width - chartRight, Baseline: chartHeight - chartBottom,
		YLabelX: left - 8, XLabelY: chartHeight - 8, Transactions: n.Sales,
		Sales: moneyIn(n.Revenue, cur), Rewards: moneyIn(n.Rewards, cur)}
	for _, m := range n.Revenue {
		if m.Currency != cur {
			ch.Others = append(ch.Others, otherCurrency{m, moneyIn(n.Rewards, m.Currency)})
		}
	}
	var top int64
	for _, d := range n.Days {
		top = max(top, sumIn(d.Revenue, cur), sumIn(d.Rewards, cur))
	}
	ch.Empty = n.Sales == 0
	scale := niceCeiling(top, rules.Digits(cur))

	days := max(len(n.Days), 1)
	plotW := float64(ch.PlotRight - ch.PlotLeft)
	plotH := float64(ch.Baseline - chartTop)
	slot := plotW / float64(days)
	bar := max(math.Floor(slot*0.4*10)/10, 0.3)
	ch.SlotWidth = round1(slot)
	y := func(minor int64) float64 {
		if minor <= 0 {
			return float64(ch.Baseline)
		}
		return float64(ch.Baseline) - float64(minor)/float64(scale)*plotH
	}
	for i := 0; i <= chartTicks; i++ {
		v := scale * int64(i) / chartTicks
		ch.Grid = append(ch.Grid, chartGridLine{Y: round1(y(v)), Label: axisLabel(rules.Money{Minor: v, Currency: cur})})
	}
	every := chartLabelEvery(days, width)
	for i, d := range n.Days {
		day, _ := time.Parse(time.DateOnly, d.Day)
		sales, rewards := sumIn(d.Revenue, cur), sumIn(d.Rewards, cur)
		x := float64(ch.PlotLeft) + slot*float64(i)
		cd := chartDay{
			BarWidth: bar,
			SalesX:   round1(x + slot/2 - bar),
			RewardsX: round1(x + slot/2),
			LabelX:   round1(x + slot/2),
			SlotX:    round1(x),
			Sales:    rules.Money{Minor: sales, Currency: cur},
			Rewards:  rules.Money{Minor: rewards, Currency: cur},
		}
		cd.SalesY, cd.RewardsY = round1(y(sales)), round1(y(rewards))
		cd.SalesH, cd.RewardsH = round1(float64(ch.Baseline)-cd.SalesY), round1(float64(ch.Baseline)-cd.RewardsY)
		cd.HasSales, cd.HasRewards = cd.SalesH > 0, cd.RewardsH > 0
		// Keep a sliver visible for tiny but real amounts.
		if sales > 0 && cd.SalesH < 1.5 {
			cd.SalesY, cd.SalesH = float64(ch.Baseline)-1.5, 1.5
		}
		if rewards > 0 && cd.RewardsH < 1.5 {
			cd.RewardsY, cd.RewardsH = float64(ch.Baseline)-1.5, 1.5
		}
		if i%every == 0 {
			cd.Label = day.Format("2 Jan")
		}
		cd.Title = fmt.Sprintf("%s: sales %s, rewards %s, %d transaction(s)", day.Format("Mon 2 Jan"),
			formatMoney(cd.Sales), formatMoney(cd.Rewards), d.Sales)
		ch.Days = append(ch.Days, cd)
	}
	return ch
}

// axisFormatter writes axis labels short: no cents on whole amounts, and
// at most one decimal of a thousand, million or billion.
var axisFormatter = func() *currency.Formatter {
	f := currency.NewFormatter(currency.NewLocale("en"))
	f.MinDigits, f.MaxDigits = 0, 1
	return f
}()

// axisLabel is a y-axis label such as $250, $2,500, $40K or $1.5M, short
// enough for the room left of the plot.
func axisLabel(m rules.Money) string {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(rules.Digits(m.Currency))), nil)
	major := new(big.Rat).SetFrac(big.NewInt(m.Minor), scale)
	suffix := ""
	for _, step := range []struct {
		from, unit int64
		suffix     string
	}{{1e9, 1e9, "B"}, {1e6, 1e6, "M"}, {1e4, 1e3, "K"}} {
		if major.Cmp(new(big.Rat).SetInt64(step.from)) >= 0 {
			major.Quo(major, new(big.Rat).SetInt64(step.unit))
			suffix = step.suffix
			break
		}
	}
	a, err := currency.NewAmount(major.FloatString(1), m.Currency)
	if err != nil {
		return formatMoney(m)
	}
	return axisFormatter.Format(a) + suffix
}

// addSaturating adds two non-negative sums, stopping at the largest int64:
// the store's sums saturate there too (see store.joinSum).
func addSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// niceCeiling rounds a maximum (in minor units) up to 1, 2, 2.5 or 5 times a
// power of ten of the major unit, so the axis reads $0, $25, $50, …
func niceCeiling(minor int64, digits int) int64 {
	unit := int64(1)
	for i := 0; i < digits; i++ {
		unit *= 10
	}
	if minor <= 0 {
		return 100 * unit
	}
	step := unit
	// Below one major unit the axis would show fractions of cents. The
	// bounds keep every product inside int64 for any input.
	for step <= minor/10 && step <= math.MaxInt64/100 {
		step *= 10
	}
	for _, m := range []int64{1, 2, 4, 5, 10, 20} {
		// m=4 gives quarter steps of 1 (0, 1, 2, 3, 4) over the four ticks.
		if step > math.MaxInt64/m {
			break
		}
		if step*m >= minor && (step*m)%chartTicks == 0 {
			return step * m
		}
	}
	return minor
}
