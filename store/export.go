package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/potrack/potrack/rules"
)

// Exports stream rows from one cursor to a callback, in an order an index
// gives (no sort of all rows before the first), so an export of a million
// rows holds one row at a time. The callback's row is reused: it is valid
// until the callback returns.

// exportTimeout bounds an export's statement on PostgreSQL, where reads
// otherwise stop at the session's statement_timeout (30 s): a cursor runs
// as long as the client takes to download it.
const exportTimeout = time.Hour

// stream runs query and hands its rows to each, one at a time. On
// PostgreSQL the query runs in a read-only transaction of its own with a
// statement timeout of exportTimeout.
func (s *Store) stream(ctx context.Context, query string, args []any, each func(*sql.Rows) error) error {
	var (
		rows *sql.Rows
		err  error
	)
	if s.pg == nil {
		rows, err = s.read.QueryContext(ctx, query, args...)
	} else {
		var tx *sql.Tx
		tx, err = s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err = tx.ExecContext(ctx, `SELECT set_config('statement_timeout', $1, true)`,
			strconv.FormatInt(exportTimeout.Milliseconds(), 10)); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.read.bind(query), args...)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// TransactionExport is one transaction as exported, with its rewards
// summed (potrack gives a sale at most one reward: its customer's
// partner's).
type TransactionExport struct {
	ID            int64
	Key           string
	CreatedAt     time.Time
	CustomerKey   string
	CustomerEmail string
	PartnerKey    string // the customer's partner, "" when not referred
	Amount        rules.Money
	RefundedMinor int64
	Action        string
	ProductID     string
	ProductType   string
	Source        string
	Verified      bool
	Rewardable    bool
	Status        string
	AttributedBy  string
	DiscountCode  string
	// Reward is the rewards' sum (zero without one), RewardReversedMinor
	// what refunds reversed of it; RewardStatus and RewardPartnerKey are
	// the first reward's ("" without one).
	Reward              rules.Money
	RewardReversedMinor int64
	RewardStatus        string
	RewardPartnerKey    string
}

// The transactions' index by program and date (and id, SQLite's rowid)
// gives this order; a sale's rewards follow it row by row.
const transactionExportSQL = `SELECT t.id, t.key, t.created_at, t.amount_minor, t.currency, t.refunded_minor,
	t.action, t.product_id, t.product_type, t.source, t.verified, t.rewardable, t.status, t.attributed_by, t.discount_code,
	c.key, c.email, cp.key, r.amount_minor, r.reversed_minor, r.currency, r.status, rp.key
	FROM transactions t LEFT JOIN customers c ON c.id = t.customer_id
	LEFT JOIN partners cp ON cp.id = c.partner_id
	LEFT JOIN rewards r ON r.transaction_id = t.id
	LEFT JOIN partners rp ON rp.id = r.partner_id`

// EachTransaction hands every transaction that f matches (its Limit and
// Offset ignored) to fn, oldest first, with its rewards.
func (s *Store) EachTransaction(ctx context.Context, f TransactionFilter, fn func(*TransactionExport) error) error {
	cond, args := f.where()
	var (
		cur     TransactionExport
		pending bool
		created int64
		cKey    sql.NullString
		cMail   sql.NullString
		cpKey   sql.NullString
		rAmount sql.NullInt64
		rRev    sql.NullInt64
		rCur    sql.NullString
		rStatus sql.NullString
		rpKey   sql.NullString
		row     TransactionExport
	)
	err := s.stream(ctx, transactionExportSQL+cond+` ORDER BY t.created_at, t.id`, args, func(rows *sql.Rows) error {
		if err := rows.Scan(&row.ID, &row.Key, &created, &row.Amount.Minor, &row.Amount.Currency, &row.RefundedMinor,
			&row.Action, &row.ProductID, &row.ProductType, &row.Source, &row.Verified, &row.Rewardable, &row.Status,
			&row.AttributedBy, &row.DiscountCode, &cKey, &cMail, &cpKey, &rAmount, &rRev, &rCur, &rStatus, &rpKey); err != nil {
			return err
		}
		if pending && row.ID == cur.ID {
			// Another reward of the same sale.
			cur.Reward.Minor += rAmount.Int64
			cur.RewardReversedMinor += rRev.Int64
			return nil
		}
		if pending {
			if err := fn(&cur); err != nil {
				return err
			}
		}
		row.CreatedAt = fromUnix(created)
		row.CustomerKey, row.CustomerEmail, row.PartnerKey = cKey.String, cMail.String, cpKey.String
		row.Reward = rules.Money{Minor: rAmount.Int64, Currency: row.Amount.Currency}
		if rCur.Valid {
			row.Reward.Currency = rCur.String
		}
		row.RewardReversedMinor, row.RewardStatus, row.RewardPartnerKey = rRev.Int64, rStatus.String, rpKey.String
		cur, pending = row, true
		return nil
	})
	if err == nil && pending {
		err = fn(&cur)
	}
	return err
}

// EachCustomer hands every customer that f matches (its Limit and Offset
// ignored) to fn, oldest first.
func (s *Store) EachCustomer(ctx context.Context, f CustomerFilter, fn func(*Customer) error) error {
	cond, args := f.where()
	return s.stream(ctx, customerSelect+cond+` ORDER BY c.created_at, c.id`, args, func(rows *sql.Rows) error {
		c, err := scanCustomer(rows)
		if err != nil {
			return err
		}
		return fn(c)
	})
}

// ClickFilter narrows a click export. Empty fields match all.
type ClickFilter struct {
	ProgramID  string
	PartnerKey string
	// From and To bound created_at to [From, To); zero leaves that side open.
	From, To time.Time
}

// ClickExport is one click as exported. No IP is ever stored.
type ClickExport struct {
	CreatedAt  time.Time
	PartnerKey string
	URL        string
	Referrer   string
}

// EachClick hands every click that f matches to fn, partner by partner
// (in key order), each partner's in time order: the order of the index
// by partner and date, which the clicks have instead of one by program.
func (s *Store) EachClick(ctx context.Context, f ClickFilter, fn func(*ClickExport) error) error {
	query, args := f.query()
	var (
		row     ClickExport
		created int64
	)
	return s.stream(ctx, query, args, func(rows *sql.Rows) error {
		if err := rows.Scan(&created, &row.PartnerKey, &row.URL, &row.Referrer); err != nil {
			return err
		}
		row.CreatedAt = fromUnix(created)
		return fn(&row)
	})
}

func (f ClickFilter) query() (string, []any) {
	where := []string{"p.program_id = ?"}
	args := []any{f.ProgramID}
	if f.PartnerKey != "" {
		where = append(where, "p.key = ?")
		args = append(args, f.PartnerKey)
	}
	if !f.From.IsZero() {
		where = append(where, "k.created_at >= ?")
		args = append(args, unix(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "k.created_at < ?")
		args = append(args, unix(f.To))
	}
	return `SELECT k.created_at, p.key, k.url, k.referrer FROM partners p JOIN clicks k ON k.partner_id = p.id
		WHERE ` + strings.Join(where, " AND ") + ` ORDER BY p.key, k.created_at, k.id`, args
}

// PartnerCurrencies lists the currencies of a program's sales and
// rewards in r, the program's own first, then the others in code order:
// the money columns of a partner export.
func (s *Store) PartnerCurrencies(ctx context.Context, programID string, r Range) ([]string, error) {
	var own string
	if err := s.read.QueryRowContext(ctx, `SELECT currency FROM programs WHERE id = ?`, programID).Scan(&own); err != nil {
		if err == sql.ErrNoRows {
			return nil, ErrNotFound
		}
		return nil, err
	}
	from, to := r.args()
	rows, err := s.read.QueryContext(ctx, `SELECT t.currency FROM transactions t
		WHERE t.program_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3
		UNION SELECT r.currency FROM rewards r JOIN transactions t ON t.id = r.transaction_id
		WHERE t.program_id = ?1 AND t.created_at >= ?2 AND t.created_at < ?3
		ORDER BY 1`, programID, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{own}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		if c != own {
			out = append(out, c)
		}
	}
	return out, rows.Err()
}

// exportChunk is how many partners an export reads its money for at once.
const exportChunk = 500

// EachPartnerNumbers hands every partner that q matches (its Limit and
// Offset ignored) to fn with its numbers, in q's order. The counts come
// from one cursor; the money of each chunk of exportChunk partners from
// one query, so memory holds a chunk, not the list.
func (s *Store) EachPartnerNumbers(ctx context.Context, q PartnerQuery, fn func(*PartnerNumbers) error) error {
	query, args, err := s.partnerNumbersQuery(ctx, &q)
	if err != nil {
		return err
	}
	chunk := make([]*PartnerNumbers, 0, exportChunk)
	flush := func() error {
		byID := make(map[int64]*PartnerNumbers, len(chunk))
		for _, n := range chunk {
			byID[n.Partner.ID] = n
		}
		if err := s.partnerMoney(ctx, q.ProgramID, q.Range, byID); err != nil {
			return err
		}
		for _, n := range chunk {
			if err := fn(n); err != nil {
				return err
			}
		}
		chunk = chunk[:0]
		return nil
	}
	err = s.stream(ctx, query, args, func(rows *sql.Rows) error {
		n, err := scanPartnerNumbers(rows)
		if err != nil {
			return err
		}
		chunk = append(chunk, n)
		if len(chunk) == exportChunk {
			return flush()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = flush()
	}
	return err
}
