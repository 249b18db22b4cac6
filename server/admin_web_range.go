package server

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// The date range of an admin page with numbers or a chart: the last 7, 30
// or 90 UTC days (days=N, today included), or a custom range of days
// (from=2026-03-01&until=2026-03-31, both included, as people say dates;
// the admin API's to= is the day after until). The same reading as the
// admin API's (dateRange), and the exports the page links take the API's
// form of it.

// rangeChoices are the page's ready-made ranges, in days.
var rangeChoices = []int{7, 30, 90}

// rangePick is the range a page shows and the picker that changes it.
type rangePick struct {
	Range store.Range
	// All is true when the page shows all time (a list without a range).
	All bool
	// Days is N for the last N days; 0 for a custom range or all time.
	Days int
	// From and Until are the range's first and last days, YYYY-MM-DD,
	// for the custom form.
	From, Until string
	Label       string
	Links       []rangeLink
	Keep        []queryPair // the page's other query values, kept by the custom form
	Error       *Error      // a range that could not be read: the default is shown
}

type rangeLink struct {
	Label, Href string
	Current     bool
}

type queryPair struct{ Name, Value string }

// rangeParams are the query parameters that make a range.
var rangeParams = map[string]bool{"days": true, "from": true, "to": true, "until": true}

// webRange reads the page's range. Without one it is the last 30 days,
// or all time when allowAll (a list, whose picker then offers "All
// time"). A range that cannot be read is shown as an error beside the
// picker, with the default range.
func webRange(c *fiber.Ctx, allowAll bool) rangePick {
	rp, err := readWebRange(c, allowAll)
	if err != nil {
		rp, _ = readWebRange(nil, allowAll)
		rp.Error = asError(err)
	}
	rp.Keep = keptQuery(c, rangeParams)
	path := c.Path()
	link := func(label string, set map[string]string, current bool) rangeLink {
		return rangeLink{Label: label, Href: pageHref(c, path, set, rangeParams), Current: current}
	}
	if allowAll {
		rp.Links = append(rp.Links, link("All time", nil, rp.All))
	}
	for _, n := range rangeChoices {
		rp.Links = append(rp.Links, link(fmt.Sprintf("%d days", n), map[string]string{"days": strconv.Itoa(n)}, rp.Days == n))
	}
	return rp
}

func readWebRange(c *fiber.Ctx, allowAll bool) (rangePick, error) {
	var days, from, to, until string
	if c != nil {
		days, from, to, until = c.Query("days"), c.Query("from"), c.Query("to"), c.Query("until")
	}
	tomorrow := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	var rp rangePick
	switch {
	case days == "" && from == "" && to == "" && until == "":
		if allowAll {
			return rangePick{All: true, Label: "All time"}, nil
		}
		rp.Days, rp.Range = defaultRangeDays, store.Range{From: tomorrow.AddDate(0, 0, -defaultRangeDays), To: tomorrow}
	case until != "":
		if days != "" || to != "" {
			return rp, invalid("until", "Give from and until, or days, not both.")
		}
		last, err := parseDay("until", until)
		if err != nil {
			return rp, err
		}
		rp.Range.To = last.AddDate(0, 0, 1)
		rp.Range.From = rp.Range.To.AddDate(0, 0, -defaultRangeDays)
		if from != "" {
			if rp.Range.From, err = parseDay("from", from); err != nil {
				return rp, err
			}
		}
		if !rp.Range.From.Before(rp.Range.To) {
			return rp, invalid("until", "The range ends before it starts: pick an until day on or after the from day.")
		}
		if rp.Range.To.Sub(rp.Range.From) > maxRangeDays*24*time.Hour {
			return rp, invalid("from", fmt.Sprintf("A range spans at most %d days (two years).", maxRangeDays))
		}
	default:
		r, err := dateRange(c, false)
		if err != nil {
			return rp, err
		}
		rp.Range = r
		if days != "" {
			rp.Days, _ = strconv.Atoi(days)
		}
	}
	rp.From = rp.Range.From.Format(time.DateOnly)
	rp.Until = rp.Range.To.Add(-time.Second).Format(time.DateOnly)
	if rp.Days > 0 {
		rp.Label = fmt.Sprintf("Last %d days", rp.Days)
	} else {
		rp.Label = formatDate(rp.Range.From) + " – " + formatDate(rp.Range.To.Add(-time.Second))
	}
	return rp, nil
}

// parseDay reads a YYYY-MM-DD day of the custom range.
func parseDay(field, v string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil || t.Year() < 2000 || t.Year() > 9000 {
		return time.Time{}, invalid(field, "Pick a day such as 2026-03-01.")
	}
	return t, nil
}

// APIQuery is the range in the admin API's words (days=N, or from and to
// with to excluded), for the exports the page links: empty for all time.
func (rp rangePick) APIQuery() url.Values {
	q := url.Values{}
	switch {
	case rp.All:
	case rp.Days > 0:
		q.Set("days", strconv.Itoa(rp.Days))
	default:
		q.Set("from", rp.Range.From.Format(time.DateOnly))
		q.Set("to", rp.Range.To.Format(time.DateOnly))
	}
	return q
}

// keptQuery is the request's query without the given parameters, the
// page number and one-time notices, in name order.
func keptQuery(c *fiber.Ctx, drop map[string]bool) []queryPair {
	var out []queryPair
	for k, v := range c.Queries() {
		if drop[k] || noticeParams[k] || k == "page" || k == "shown" || v == "" {
			continue
		}
		out = append(out, queryPair{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pageHref is path with this request's query, less drop, the page number
// and notices, and with set applied.
func pageHref(c *fiber.Ctx, path string, set map[string]string, drop map[string]bool) string {
	q := url.Values{}
	for _, kv := range keptQuery(c, drop) {
		q.Set(kv.Name, kv.Value)
	}
	for k, v := range set {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// exportURL is the page's CSV export of kind with the filters shown.
func exportURL(programID, kind string, filters url.Values) string {
	u := "/admin/programs/" + url.PathEscape(programID) + "/export/" + kind + ".csv"
	if len(filters) == 0 {
		return u
	}
	return u + "?" + filters.Encode()
}

// PageQuery is the range in the page's words (days=N, or from and
// until), for links from one page to another that keep it.
func (rp rangePick) PageQuery() url.Values {
	q := url.Values{}
	switch {
	case rp.All:
	case rp.Days > 0:
		q.Set("days", strconv.Itoa(rp.Days))
	default:
		q.Set("from", rp.From)
		q.Set("until", rp.Until)
	}
	return q
}

// rangeSuffix is "?" and PageQuery, or "" for all time.
func rangeSuffix(rp rangePick) string {
	if q := rp.PageQuery(); len(q) > 0 {
		return "?" + q.Encode()
	}
	return ""
}

// PageQueryPairs is PageQuery as hidden fields for a form that keeps the
// range.
func (rp rangePick) PageQueryPairs() []queryPair {
	var out []queryPair
	for k, vs := range rp.PageQuery() {
		out = append(out, queryPair{k, vs[0]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pageStatus is 200, or the status of the first error the page shows
// next to its range or filters (the page still shows its default list).
func pageStatus(errs ...*Error) int {
	for _, e := range errs {
		if e != nil {
			return e.Status
		}
	}
	return fiber.StatusOK
}
