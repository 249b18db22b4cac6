package server

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bojanz/currency"
	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
)

// How the admin page shows money, dates and lists.

var moneyFormatter = currency.NewFormatter(currency.NewLocale("en"))

// formatMoney writes an amount the way a merchant reads it: "$1,234.50",
// "¥1,000", "CHF 12.00".
func formatMoney(m rules.Money) string {
	a, err := currency.NewAmountFromInt64(m.Minor, m.Currency)
	if err != nil {
		return m.String() + " " + m.Currency
	}
	return moneyFormatter.Format(a)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 Jan 2006, 15:04") + " UTC"
}

func formatDate(t time.Time) string { return t.UTC().Format("2 Jan 2006") }

// formatClock is the time of day of t, for a table's second line.
func formatClock(t time.Time) string { return t.UTC().Format("15:04") + " UTC" }

var templateFuncs = template.FuncMap{
	"money":    formatMoney,
	"datetime": formatTime,
	"date":     formatDate,
	"join":     strings.Join,
	"add":      func(a, b int) int { return a + b },
	"errtext":  errorText,
	// Issue 14's pages (admin_web_reports.go).
	"clock":       formatClock,
	"moneys":      moneys,
	"percent":     percent,
	"rangesuffix": rangeSuffix,
	"hasquery":    func(s string) bool { return strings.Contains(s, "?") },
	"pathescape":  url.PathEscape,
	// Coupon codes (admin_web_coupons.go).
	"attribution": attributionText,
	"unusedcode":  unusedCode,
}

// errorText is a refused form's message, prefixed with the part of the
// form it is about when the field alone would not say.
func errorText(e *Error) string {
	msg := upperFirst(e.Message)
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	if label := fieldLabel(e.Field); label != "" {
		return label + ": " + msg
	}
	return msg
}

// webPageSize is how many rows a list page shows.
const webPageSize = 25

// pager is the position in a paginated list and the links around it.
type pager struct {
	Page, Last, Total, From, To int
	Prev, Next                  string
}

// pageNumber reads ?page=, falling back to the first page on nonsense.
func pageNumber(c *fiber.Ctx) int {
	n, err := strconv.Atoi(c.Query("page"))
	if err != nil || n < 1 || n > 1_000_000 {
		return 1
	}
	return n
}

// noticeParams are query flags that show a one-time notice after a form
// (code_for: the partner a "+ code" link fills the add-a-code form with).
var noticeParams = map[string]bool{"created": true, "refunded": true, "saved": true, "code_for": true}

func newPager(c *fiber.Ctx, page, total, shown int) pager {
	p := pager{Page: page, Total: total, Last: max(1, (total+webPageSize-1)/webPageSize)}
	if shown > 0 {
		p.From = (page-1)*webPageSize + 1
		p.To = p.From + shown - 1
	}
	if page > 1 {
		p.Prev = pageLink(c, min(page-1, p.Last))
	}
	if page < p.Last {
		p.Next = pageLink(c, page+1)
	}
	return p
}

// pageLink is this list's address on page n, with its filters.
func pageLink(c *fiber.Ctx, n int) string {
	q := url.Values{}
	for k, v := range c.Queries() {
		// Keep the filters, not one-time notices such as ?created=1.
		if !noticeParams[k] {
			q.Set(k, v)
		}
	}
	q.Set("page", strconv.Itoa(n))
	return c.Path() + "?" + q.Encode()
}

// pastTheEnd sends a request for a page after the last one to the last
// page, rather than showing an empty list that says there is nothing yet.
func pastTheEnd(c *fiber.Ctx, p pager) (bool, error) {
	if p.Page <= p.Last {
		return false, nil
	}
	return true, c.Redirect(pageLink(c, p.Last), fiber.StatusSeeOther)
}
