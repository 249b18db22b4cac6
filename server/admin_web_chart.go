package server

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"time"

	"github.com/bojanz/currency"
	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The sales chart: daily sales and rewards of the last 30 days, drawn on the
// server as SVG, so it needs no script and no chart library.

const (
	chartDays   = 30
	chartWidth  = 960
	chartHeight = 260
	chartLeft   = 72 // room for the y-axis labels
	chartRight  = 12
	chartTop    = 16
	chartBottom = 28 // room for the dates
	chartTicks  = 4
)

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
	Sales, Rewards rules.Money // totals over the window
	Transactions   int
	Empty          bool
	Others         []otherCurrency // totals in currencies the chart does not draw
	Partners       []store.PartnerSales
	Since          time.Time
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

func (s *Server) salesChart(c *fiber.Ctx, p *store.Program) (*salesChart, error) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	since := today.AddDate(0, 0, -(chartDays - 1))
	daily, err := s.store.DailyTotals(c.UserContext(), p.ID, since)
	if err != nil {
		return nil, err
	}
	partners, err := s.store.PartnerSalesSince(c.UserContext(), p.ID, since, 20)
	if err != nil {
		return nil, err
	}
	ch := buildChart(p.Currency, since, daily)
	ch.Partners = partners
	return ch, nil
}

// buildChart lays out the bars. It draws the program's currency; totals in
// other currencies are listed under the chart instead of mixed in.
func buildChart(cur string, since time.Time, daily []store.DailyTotal) *salesChart {
	ch := &salesChart{Currency: cur, Width: chartWidth, Height: chartHeight, Since: since,
		PlotLeft: chartLeft, PlotRight: chartWidth - chartRight, Baseline: chartHeight - chartBottom,
		YLabelX: chartLeft - 8, XLabelY: chartHeight - 8,
		Sales: rules.Money{Currency: cur}, Rewards: rules.Money{Currency: cur}}
	byDay := map[string]store.DailyTotal{}
	others := map[string]*otherCurrency{}
	for _, d := range daily {
		if d.Currency == cur {
			byDay[d.Day] = d
			ch.Sales.Minor = addSaturating(ch.Sales.Minor, d.SalesMinor)
			ch.Rewards.Minor = addSaturating(ch.Rewards.Minor, d.RewardsMinor)
			ch.Transactions += d.Transactions
			continue
		}
		o := others[d.Currency]
		if o == nil {
			o = &otherCurrency{rules.Money{Currency: d.Currency}, rules.Money{Currency: d.Currency}}
			others[d.Currency] = o
		}
		o.Sales.Minor = addSaturating(o.Sales.Minor, d.SalesMinor)
		o.Rewards.Minor = addSaturating(o.Rewards.Minor, d.RewardsMinor)
		ch.Transactions += d.Transactions
	}
	for _, o := range others {
		ch.Others = append(ch.Others, *o)
	}
	sort.Slice(ch.Others, func(i, j int) bool { return ch.Others[i].Sales.Currency < ch.Others[j].Sales.Currency })

	var top int64
	for _, d := range byDay {
		top = max(top, d.SalesMinor, d.RewardsMinor)
	}
	ch.Empty = top == 0 && len(byDay) == 0
	scale := niceCeiling(top, rules.Digits(cur))

	plotW := float64(ch.PlotRight - ch.PlotLeft)
	plotH := float64(ch.Baseline - chartTop)
	slot := plotW / chartDays
	bar := math.Floor(slot*0.4*10) / 10
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
	for i := 0; i < chartDays; i++ {
		day := since.AddDate(0, 0, i)
		d := byDay[day.Format("2006-01-02")]
		left := float64(ch.PlotLeft) + slot*float64(i)
		cd := chartDay{
			BarWidth: bar,
			SalesX:   round1(left + slot/2 - bar),
			RewardsX: round1(left + slot/2),
			LabelX:   round1(left + slot/2),
			SlotX:    round1(left),
			Sales:    rules.Money{Minor: d.SalesMinor, Currency: cur},
			Rewards:  rules.Money{Minor: d.RewardsMinor, Currency: cur},
		}
		cd.SalesY, cd.RewardsY = round1(y(d.SalesMinor)), round1(y(d.RewardsMinor))
		cd.SalesH, cd.RewardsH = round1(float64(ch.Baseline)-cd.SalesY), round1(float64(ch.Baseline)-cd.RewardsY)
		cd.HasSales, cd.HasRewards = cd.SalesH > 0, cd.RewardsH > 0
		// Keep a sliver visible for tiny but real amounts.
		if d.SalesMinor > 0 && cd.SalesH < 1.5 {
			cd.SalesY, cd.SalesH = float64(ch.Baseline)-1.5, 1.5
		}
		if d.RewardsMinor > 0 && cd.RewardsH < 1.5 {
			cd.RewardsY, cd.RewardsH = float64(ch.Baseline)-1.5, 1.5
		}
		if i%5 == 0 || i == chartDays-1 {
			cd.Label = day.Format("2 Jan")
		}
		cd.Title = fmt.Sprintf("%s: sales %s, rewards %s, %d transaction(s)", day.Format("Mon 2 Jan"),
			formatMoney(cd.Sales), formatMoney(cd.Rewards), d.Transactions)
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
