package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/potrack/potrack/rules"
)

// The admin's numbers (issue 14): a program's clicks, sign-ups, sales,
// revenue and rewards over a date range with a series per UTC day; each
// partner's over the same range, sorted and paged; one partner's funnel;
// customers found by key or email. Sales are net of refunds and rewards
// net of reversals (what is owed), both dated by the sale, as on the
// admin page's chart (stats.go). Amounts are summed in two parts that
// cannot overflow (joinSum). Days are UTC, numbered as created_at / 86400
// on both engines, so no query needs a date function.

const secondsPerDay = 86400

// Range is the half-open interval [From, To) of created_at.
type Range struct {
	From, To time.Time
}

func (r Range) args() (int64, int64) { return unix(r.From), unix(r.To) }

// days lists every UTC day the range touches, as YYYY-MM-DD.
func (r Range) days() []string {
	var out []string
	first, last := unix(r.From)/secondsPerDay, (unix(r.To)-1)/secondsPerDay
	for d := first; d <= last; d++ {
		out = append(out, dayString(d))
	}
	return out
}

func dayString(day int64) string { return fromUnix(day * secondsPerDay).Format(time.DateOnly) }

// DayNumbers is one UTC day of a program or partner.
type DayNumbers struct {
	Day     string // YYYY-MM-DD
	Clicks  int64
	Signups int64         // customers created (of the partner, for a partner)
	Sales   int64         // transactions, refunded ones included
	Revenue []rules.Money // net of refunds, per currency
	Rewards []rules.Money // owed (net of reversals), per currency
}

// ProgramNumbers sums a program's results over a range.
type ProgramNumbers struct {
	ProgramID string
	Range     Range
	Clicks    int64
	Signups   int64
	Sales     int64
	// Revenue is the sales net of refunds, per currency; Rewards what is
	// owed to partners (net of reversals), per currency. Both list the
	// currencies seen, in code order; empty without sales.
	Revenue []rules.Money
	Rewards []rules.Money
	// Days has every UTC day of the range, in order, zeros included: the
	// trend line.
	Days []DayNumbers
}

// seriesSQL counts a program's clicks and sign-ups per day, and sums its
// sales and rewards per day and currency: rows of (kind, day, currency,
// sales, revenue billions and rest, rewards billions and rest). Clicks are
// found through the program's partners (the index is by partner and
// date, so a click costs no index by program); sign-ups through the index
// by program and date; sales and rewards as the admin page's chart finds
// them (salesAndRewards).
const seriesSQL = `
SELECT 'c', k.created_at / 86400, '', count(*), 0, 0, 0, 0
	FROM clicks k WHERE k.partner_id IN (SELECT id FROM partners WHERE program_id = ?1)
	AND k.created_at >= ?2 AND k.created_at < ?3
	GROUP BY 2
UNION ALL
SELECT 'u', created_at / 86400, '', count(*), 0, 0, 0, 0
	FROM customers WHERE program_id = ?1 AND created_at >= ?2 AND created_at < ?3
	GROUP BY 2
UNION ALL
SELECT 's', x.at / 86400, x.currency, sum(x.n), sum(x.sales / 1000000000), sum(x.sales % 1000000000),
	sum(x.rewards / 1000000000), sum(x.rewards % 1000000000)
	FROM (` + salesAndRewards + `) x
	GROUP BY 2, 3`

// ProgramNumbers sums a program's clicks, sign-ups, sales, revenue and
// rewards over r, with the same per UTC day.
func (s *Store) ProgramNumbers(ctx context.Context, programID string, r Range) (*ProgramNumbers, error) {
	from, to := r.args()
	rows, err := s.read.QueryContext(ctx, seriesSQL, programID, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	days := r.days()
	byDay := make(map[string]*DayNumbers, len(days))
	out := &ProgramNumbers{ProgramID: programID, Range: r, Days: make([]DayNumbers, len(days))}
	for i, d := range days {
		out.Days[i] = DayNumbers{Day: d, Revenue: []rules.Money{}, Rewards: []rules.Money{}}
		byDay[d] = &out.Days[i]
	}
	revenue, rewards := map[string]int64{}, map[string]int64{}
	for rows.Next() {
		var (
			kind, currency   string
			day, n           int64
			salesB, salesR   int64
			rewardB, rewardR int64
		)
		if err := rows.Scan(&kind, &day, &currency, &n, &salesB, &salesR, &rewardB, &rewardR); err != nil {
			return nil, err
		}
		d := byDay[dayString(day)]
		if d == nil {
			continue // outside the range's days: cannot happen
		}
		switch kind {
		case "c":
			d.Clicks += n
			out.Clicks += n
		case "u":
			d.Signups += n
			out.Signups += n
		case "s":
			d.Sales += n
			out.Sales += n
			sales, reward := joinSum(salesB, salesR), joinSum(rewardB, rewardR)
			d.Revenue = append(d.Revenue, rules.Money{Minor: sales, Currency: currency})
			d.Rewards = append(d.Rewards, rules.Money{Minor: reward, Currency: currency})
			revenue[currency] = addSat(revenue[currency], sales)
			rewards[currency] = addSat(rewards[currency], reward)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out.Days {
		sortMoney(out.Days[i].Revenue)
		sortMoney(out.Days[i].Rewards)
	}
	out.Revenue, out.Rewards = moneyList(revenue), moneyList(rewards)
	return out, nil
}

// addSat adds two non-negative sums, saturating as joinSum does.
func addSat(a, b int64) int64 {
	if a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

func moneyList(m map[string]int64) []rules.Money {
	out := make([]rules.Money, 0, len(m))
	for c, v := range m {
		out = append(out, rules.Money{Minor: v, Currency: c})
	}
	sortMoney(out)
	return out
}

func sortMoney(ms []rules.Money) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].Currency < ms[j].Currency })
}

// Partner sort keys, for PartnerQuery.Sort.
const (
	SortClicks     = "clicks"
	SortCustomers  = "customers"
	SortSales      = "sales"
	SortRevenue    = "revenue"
	SortRewards    = "rewards"
	SortConversion = "conversion"
	SortKey        = "key"
	SortName       = "name"
	SortCreated    = "created"
)

// partnerSorts maps each sort key to the SQL it orders by: the only
// text of a sort that reaches SQL is one of these constants. Revenue and
// rewards order by the amount in the program's currency; conversion
// puts partners without clicks last either way.
var partnerSorts = map[string]string{
	SortClicks:     "coalesce(ck.n, 0)",
	SortCustomers:  "coalesce(cu.n, 0)",
	SortSales:      "coalesce(sa.n, 0)",
	SortRevenue:    "coalesce(sa.main, 0)",
	SortRewards:    "coalesce(rw.main, 0)",
	SortConversion: "CASE WHEN coalesce(ck.n, 0) = 0 THEN NULL ELSE coalesce(cu.n, 0) * 1.0 / ck.n END",
	SortKey:        "p.key",
	SortName:       "lower(p.name)",
	SortCreated:    "p.id",
}

// PartnerSortKeys lists the sort keys PartnerNumbers takes, for messages.
func PartnerSortKeys() []string {
	keys := make([]string, 0, len(partnerSorts))
	for k := range partnerSorts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ValidPartnerSort reports whether key is a sort key PartnerNumbers takes.
func ValidPartnerSort(key string) bool { _, ok := partnerSorts[key]; return ok }

// PartnerQuery asks for partners with their numbers.
type PartnerQuery struct {
	ProgramID string
	Range     Range
	// Search keeps partners whose key starts with it or whose name
	// contains it, ignoring case (ASCII); wildcards in it are literal.
	Search string
	// PartnerID, when set, keeps that partner only.
	PartnerID int64
	Sort      string // a PartnerSortKeys key; "" is SortRevenue
	Desc      bool
	Limit     int // 0: 50
	Offset    int
}

// PartnerNumbers is a partner's results over a range.
type PartnerNumbers struct {
	Partner   Partner
	Clicks    int64
	Customers int64 // referred customers created in the range
	Sales     int64 // their transactions in the range, rewarded or not
	Revenue   []rules.Money
	Rewards   []rules.Money // owed: net of reversals
	// Conversion is Customers / Clicks; nil without clicks.
	Conversion *float64
}

// partnerNumbersSQL counts each partner's clicks, customers and sales in
// [?2, ?3), and sums its revenue and rewards in the program's currency (?4)
// for ordering; the amounts per currency come from partnerMoneySQL.
// total() is a float and cannot overflow; it only orders.
const partnerNumbersSQL = `WITH
ck AS (SELECT k.partner_id AS pid, count(*) AS n FROM clicks k
	WHERE k.partner_id IN (SELECT id FROM partners WHERE program_id = ?1) AND k.created_at >= ?2 AND k.created_at < ?3
	GROUP BY k.partner_id),
cu AS (SELECT partner_id AS pid, count(*) AS n FROM customers
	WHERE program_id = ?1 AND created_at >= ?2 AND created_at < ?3 AND partner_id IS NOT NULL GROUP BY partner_id),
sa AS (SELECT c.partner_id AS pid, count(*) AS n,
	total(CASE WHEN t.currency = ?4 THEN t.amount_minor - t.refunded_minor ELSE 0 END) AS main
	FROM transactions t JOIN customers c ON c.id = t.customer_id
	WHERE t.program_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3 AND c.partner_id IS NOT NULL
	GROUP BY c.partner_id),
rw AS (SELECT r.partner_id AS pid, total(CASE WHEN r.currency = ?4 THEN r.amount_minor - r.reversed_minor ELSE 0 END) AS main
	FROM rewards r JOIN transactions t ON t.id = r.transaction_id
	WHERE t.program_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3
	GROUP BY r.partner_id)
SELECT p.id, p.program_id, p.key, p.email, p.name, p.created_at, coalesce(ck.n, 0), coalesce(cu.n, 0), coalesce(sa.n, 0)
FROM partners p LEFT JOIN ck ON ck.pid = p.id LEFT JOIN cu ON cu.pid = p.id
	LEFT JOIN sa ON sa.pid = p.id LEFT JOIN rw ON rw.pid = p.id`

// partnerSearch is the condition of PartnerQuery.Search on partners p.
const partnerSearch = `(lower(p.key) LIKE ?5 ESCAPE '\' OR lower(p.name) LIKE ?6 ESCAPE '\')`

// likeEscape makes s literal inside a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// PartnerNumbers lists a program's partners with their numbers over the
// query's range, sorted (ties by partner id) and paged, with the number
// of partners that match.
func (s *Store) PartnerNumbers(ctx context.Context, q PartnerQuery) ([]*PartnerNumbers, int, error) {
	query, args, err := s.partnerNumbersQuery(ctx, &q)
	if err != nil {
		return nil, 0, err
	}
	countCond, countArgs := ` WHERE p.program_id = ?`, []any{q.ProgramID}
	if q.Search != "" {
		countCond += ` AND (lower(p.key) LIKE ? ESCAPE '\' OR lower(p.name) LIKE ? ESCAPE '\')`
		countArgs = append(countArgs, args[4], args[5])
	}
	if q.PartnerID != 0 {
		countCond += ` AND p.id = ?`
		countArgs = append(countArgs, q.PartnerID)
	}
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM partners p`+countCond, countArgs...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	args = append(args, q.Limit, max(q.Offset, 0))
	query += fmt.Sprintf(` LIMIT ?%d OFFSET ?%d`, len(args)-1, len(args))
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []*PartnerNumbers{}
	byID := map[int64]*PartnerNumbers{}
	for rows.Next() {
		n, err := scanPartnerNumbers(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, n)
		byID[n.Partner.ID] = n
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if err := s.partnerMoney(ctx, q.ProgramID, q.Range, byID); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// partnerNumbersQuery is q's query, sorted, without LIMIT, and its
// arguments: ?1–?4 always, ?5 and ?6 with a search, then the partner's id.
// The only text of q that reaches the SQL is one of partnerSorts' values.
func (s *Store) partnerNumbersQuery(ctx context.Context, q *PartnerQuery) (string, []any, error) {
	if q.Sort == "" {
		q.Sort = SortRevenue
	}
	order, ok := partnerSorts[q.Sort]
	if !ok {
		return "", nil, fmt.Errorf("unknown partner sort %q", q.Sort)
	}
	var currency string
	if err := s.read.QueryRowContext(ctx, `SELECT currency FROM programs WHERE id = ?`, q.ProgramID).Scan(&currency); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, ErrNotFound
		}
		return "", nil, err
	}
	from, to := q.Range.args()
	args := []any{q.ProgramID, from, to, currency}
	cond := ` WHERE p.program_id = ?1`
	if q.Search != "" {
		needle := likeEscape(strings.ToLower(q.Search))
		cond += ` AND ` + partnerSearch
		args = append(args, needle+"%", "%"+needle+"%")
	}
	if q.PartnerID != 0 {
		args = append(args, q.PartnerID)
		cond += ` AND p.id = ?` + strconv.Itoa(len(args))
	}
	dir := " ASC"
	if q.Desc {
		dir = " DESC"
	}
	orderBy := ` ORDER BY ` + order + dir + `, p.id` + dir
	if q.Sort == SortConversion {
		orderBy = ` ORDER BY (` + order + `) IS NULL, ` + order + dir + `, p.id` + dir
	}
	query := partnerNumbersSQL + cond + orderBy
	if s.pg != nil {
		query = strings.ReplaceAll(query, "total(", "sum(")
	}
	return query, args, nil
}

func scanPartnerNumbers(rows *sql.Rows) (*PartnerNumbers, error) {
	var (
		n       PartnerNumbers
		created int64
	)
	p := &n.Partner
	if err := rows.Scan(&p.ID, &p.ProgramID, &p.Key, &p.Email, &p.Name, &created, &n.Clicks, &n.Customers, &n.Sales); err != nil {
		return nil, err
	}
	p.CreatedAt = fromUnix(created)
	if n.Clicks > 0 {
		c := float64(n.Customers) / float64(n.Clicks)
		n.Conversion = &c
	}
	n.Revenue, n.Rewards = []rules.Money{}, []rules.Money{}
	return &n, nil
}

// partnerMoney fills the partners' revenue and rewards per currency.
func (s *Store) partnerMoney(ctx context.Context, programID string, r Range, byID map[int64]*PartnerNumbers) error {
	if len(byID) == 0 {
		return nil
	}
	from, to := r.args()
	args := []any{programID, from, to}
	marks := make([]string, 0, len(byID))
	for id := range byID {
		args = append(args, id)
		marks = append(marks, "?"+strconv.Itoa(len(args)))
	}
	in := strings.Join(marks, ", ")
	rows, err := s.read.QueryContext(ctx, `
SELECT 's', c.partner_id, t.currency, sum((t.amount_minor - t.refunded_minor) / 1000000000), sum((t.amount_minor - t.refunded_minor) % 1000000000)
	FROM transactions t JOIN customers c ON c.id = t.customer_id
	WHERE t.program_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3 AND c.partner_id IN (`+in+`)
	GROUP BY c.partner_id, t.currency
UNION ALL
SELECT 'r', r.partner_id, r.currency, sum((r.amount_minor - r.reversed_minor) / 1000000000), sum((r.amount_minor - r.reversed_minor) % 1000000000)
	FROM rewards r JOIN transactions t ON t.id = r.transaction_id
	WHERE t.program_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3 AND r.partner_id IN (`+in+`)
	GROUP BY r.partner_id, r.currency`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind, currency string
			id             int64
			billions, rest int64
		)
		if err := rows.Scan(&kind, &id, &currency, &billions, &rest); err != nil {
			return err
		}
		n := byID[id]
		m := rules.Money{Minor: joinSum(billions, rest), Currency: currency}
		if kind == "s" {
			n.Revenue = append(n.Revenue, m)
		} else {
			n.Rewards = append(n.Rewards, m)
		}
	}
	for _, n := range byID {
		sortMoney(n.Revenue)
		sortMoney(n.Rewards)
	}
	return rows.Err()
}

// FunnelDay is one UTC day of a partner's funnel.
type FunnelDay struct {
	Day       string // YYYY-MM-DD
	Clicks    int64
	Customers int64
	Sales     int64
}

const partnerFunnelSQL = `
SELECT 'c', created_at / 86400, count(*) FROM clicks
	WHERE partner_id = ?1 AND created_at >= ?2 AND created_at < ?3 GROUP BY 2
UNION ALL
SELECT 'u', created_at / 86400, count(*) FROM customers
	WHERE partner_id = ?1 AND created_at >= ?2 AND created_at < ?3 GROUP BY 2
UNION ALL
SELECT 's', t.created_at / 86400, count(*) FROM transactions t JOIN customers c ON c.id = t.customer_id
	WHERE c.partner_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3 GROUP BY 2`

// PartnerFunnel counts a partner's clicks, new customers and their sales
// per UTC day of r, every day listed.
func (s *Store) PartnerFunnel(ctx context.Context, partnerID int64, r Range) ([]FunnelDay, error) {
	from, to := r.args()
	rows, err := s.read.QueryContext(ctx, partnerFunnelSQL, partnerID, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	days := r.days()
	out := make([]FunnelDay, len(days))
	byDay := make(map[string]*FunnelDay, len(days))
	for i, d := range days {
		out[i].Day = d
		byDay[d] = &out[i]
	}
	for rows.Next() {
		var (
			kind   string
			day, n int64
		)
		if err := rows.Scan(&kind, &day, &n); err != nil {
			return nil, err
		}
		d := byDay[dayString(day)]
		if d == nil {
			continue
		}
		switch kind {
		case "c":
			d.Clicks += n
		case "u":
			d.Customers += n
		case "s":
			d.Sales += n
		}
	}
	return out, rows.Err()
}

// CustomerFilter narrows a customer list. Empty fields match all.
type CustomerFilter struct {
	ProgramID string
	// Search keeps customers whose key starts with it or whose email
	// contains it, ignoring case (ASCII); wildcards in it are literal.
	Search     string
	PartnerKey string
	// From and To bound created_at to [From, To); zero leaves that side open.
	From, To time.Time
	Limit    int // 0: 50
	Offset   int
}

func (f CustomerFilter) where() (string, []any) {
	where := []string{"c.program_id = ?"}
	args := []any{f.ProgramID}
	if f.Search != "" {
		needle := likeEscape(strings.ToLower(f.Search))
		where = append(where, `(lower(c.key) LIKE ? ESCAPE '\' OR lower(c.email) LIKE ? ESCAPE '\')`)
		args = append(args, needle+"%", "%"+needle+"%")
	}
	if f.PartnerKey != "" {
		where = append(where, `c.partner_id = (SELECT id FROM partners WHERE program_id = ? AND key = ?)`)
		args = append(args, f.ProgramID, f.PartnerKey)
	}
	if !f.From.IsZero() {
		where = append(where, "c.created_at >= ?")
		args = append(args, unix(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "c.created_at < ?")
		args = append(args, unix(f.To))
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// SearchCustomers lists a program's customers that match, newest first,
// with the number of all that match.
func (s *Store) SearchCustomers(ctx context.Context, f CustomerFilter) ([]*Customer, int, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	cond, args := f.where()
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM customers c`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.read.QueryContext(ctx, customerSelect+cond+` ORDER BY c.created_at DESC, c.id DESC LIMIT ? OFFSET ?`,
		append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []*Customer{}
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, total, rows.Err()
}
