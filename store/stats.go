package store

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/potrack/potrack/rules"
)

// The read queries behind the admin page's chart and partner totals. Sales
// are net of refunds and rewards net of reversals, so a refund shows as a
// drop on the day of the sale it undoes.

// DailyTotal is one day's sales and rewards in one currency.
type DailyTotal struct {
	Day          string // YYYY-MM-DD, UTC
	Currency     string
	Transactions int
	SalesMinor   int64
	RewardsMinor int64
}

// PartnerSales is one partner's results in one currency.
type PartnerSales struct {
	PartnerID    int64
	Key          string
	Name         string
	Currency     string
	Transactions int
	Sales        rules.Money
	Rewards      rules.Money
}

// salesAndRewards is every sale of a program in [?2, ?3), as rows that
// sum up: a sale row per transaction and a reward row per reward. Both are
// dated by the transaction, so a reward is on the same day as its sale.
// The admin's numbers (reports.go) sum the same rows.
const salesAndRewards = `
	SELECT t.created_at AS at, c.partner_id AS partner_id, t.currency AS currency,
		1 AS n, t.amount_minor - t.refunded_minor AS sales, 0 AS rewards
	FROM transactions t LEFT JOIN customers c ON c.id = t.customer_id
	WHERE t.program_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3
	UNION ALL
	SELECT t.created_at, r.partner_id, r.currency, 0, 0, r.amount_minor - r.reversed_minor
	FROM rewards r JOIN transactions t ON t.id = r.transaction_id
	WHERE t.program_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3`

const dailyTotalsSQL = `SELECT strftime('%Y-%m-%d', at, 'unixepoch'), currency, sum(n),
	sum(sales / 1000000000), sum(sales % 1000000000), sum(rewards / 1000000000), sum(rewards % 1000000000)
	FROM (` + salesAndRewards + `) x GROUP BY 1, 2 ORDER BY 1, 2`

// total() is a float and cannot overflow; it only orders the rows.
const partnerSalesSQL = `SELECT p.id, p.key, p.name, x.currency, sum(x.n),
	sum(x.sales / 1000000000), sum(x.sales % 1000000000), sum(x.rewards / 1000000000), sum(x.rewards % 1000000000)
	FROM (` + salesAndRewards + `) x JOIN partners p ON p.id = x.partner_id
	GROUP BY p.id, x.currency ORDER BY total(x.rewards) DESC, total(x.sales) DESC, p.key
	LIMIT ?4`

// PostgreSQL spells a day differently, and its sum() of integers is exact
// (numeric), so it orders by that.
var (
	dailyTotalsPG = strings.Replace(dailyTotalsSQL, `strftime('%Y-%m-%d', at, 'unixepoch')`,
		`to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')`, 1)
	partnerSalesPG = strings.ReplaceAll(partnerSalesSQL, "total(", "sum(")
)

// Sums of amounts can pass int64, where SQLite's sum() fails with "integer
// overflow": a day of many maximum sales (forged browser sales, say) would
// break the admin page. So the queries sum the billions and the rest of
// each non-negative amount apart, which cannot overflow, and joinSum puts
// them together, saturating at the largest int64.
const splitBase = 1_000_000_000

func joinSum(billions, rest int64) int64 {
	if billions > (math.MaxInt64-rest)/splitBase {
		return math.MaxInt64
	}
	return billions*splitBase + rest
}

// DailyTotals sums a program's transactions and rewards per UTC day and
// currency, for days from since on. Days without transactions are absent.
func (s *Store) DailyTotals(ctx context.Context, programID string, since time.Time) ([]DailyTotal, error) {
	q := dailyTotalsSQL
	if s.pg != nil {
		q = dailyTotalsPG
	}
	rows, err := s.read.QueryContext(ctx, q, programID, unix(since), int64(math.MaxInt64))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []DailyTotal{}
	for rows.Next() {
		var (
			d                          DailyTotal
			salesB, salesR, rewB, rewR int64
		)
		if err := rows.Scan(&d.Day, &d.Currency, &d.Transactions, &salesB, &salesR, &rewB, &rewR); err != nil {
			return nil, err
		}
		d.SalesMinor, d.RewardsMinor = joinSum(salesB, salesR), joinSum(rewB, rewR)
		out = append(out, d)
	}
	return out, rows.Err()
}

// PartnerSalesSince sums, per partner and currency, the sales of the
// customers each partner referred and the rewards it earned, from since on;
// the limit partners with the highest rewards come first.
func (s *Store) PartnerSalesSince(ctx context.Context, programID string, since time.Time, limit int) ([]PartnerSales, error) {
	q := partnerSalesSQL
	if s.pg != nil {
		q = partnerSalesPG
	}
	rows, err := s.read.QueryContext(ctx, q, programID, unix(since), int64(math.MaxInt64), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []PartnerSales{}
	for rows.Next() {
		var (
			p                          PartnerSales
			salesB, salesR, rewB, rewR int64
		)
		if err := rows.Scan(&p.PartnerID, &p.Key, &p.Name, &p.Currency, &p.Transactions, &salesB, &salesR, &rewB, &rewR); err != nil {
			return nil, err
		}
		p.Sales.Minor, p.Rewards.Minor = joinSum(salesB, salesR), joinSum(rewB, rewR)
		p.Sales.Currency, p.Rewards.Currency = p.Currency, p.Currency
		out = append(out, p)
	}
	return out, rows.Err()
}
