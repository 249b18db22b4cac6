package store

import (
	"context"
	"time"

	"github.com/potrack/potrack/rules"
)

// Fraud flags (docs/payouts.md#fraud-flags): clicks carry the paid-ad
// markers of their URL (clicks.flags, set as they are stored); customers
// carry the flags tracking decided when they were created
// (customers.flags), and their rewards stay pending until the merchant
// approves them (customers.flags_approved_at).

// RecentPaidAdClick reports, inside the write, whether the partner has a
// flagged click from since on (a partial index holds only flagged
// clicks, so the answer costs nothing when there are none).
func (t *Tx) RecentPaidAdClick(partnerID int64, since time.Time) (bool, error) {
	var n int
	err := t.queryRow(`SELECT count(*) FROM (SELECT 1 FROM clicks WHERE partner_id = ? AND flags <> '' AND created_at >= ? LIMIT 1) x`,
		partnerID, unix(since)).Scan(&n)
	return n > 0, err
}

// SetCustomerFlags stores a customer's flags.
func (t *Tx) SetCustomerFlags(customerID int64, flags string) error {
	res, err := t.exec(`UPDATE customers SET flags = ? WHERE id = ?`, flags, customerID)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// ApproveCustomerFlags records that the merchant approved a flagged
// customer, releasing its rewards to the hold's normal course. changed is
// false when it was approved already; ErrNotFound when the program has no
// such customer, or it has no flags.
func (t *Tx) ApproveCustomerFlags(programID, key string) (c *Customer, changed bool, err error) {
	wasDirty := t.dirty
	res, err := t.exec(`UPDATE customers SET flags_approved_at = ? WHERE program_id = ? AND key = ? AND flags <> '' AND flags_approved_at = 0`,
		unix(t.now), programID, key)
	if err != nil {
		return nil, false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, false, err
	}
	if n == 0 {
		t.dirty = wasDirty
	}
	if c, err = t.Customer(programID, key); err != nil {
		return nil, false, err
	}
	if c.Flags == "" {
		return nil, false, ErrNotFound
	}
	return c, n > 0, nil
}

// FlaggedCustomer is a customer with fraud flags and what its rewards
// hold.
type FlaggedCustomer struct {
	*Customer
	// Rewards sums the customer's rewards not reversed per currency
	// (held, while the flags are not approved); RewardCount counts them.
	Rewards     []rules.Money
	RewardCount int
}

// FlaggedCustomers lists a program's flagged customers, newest first,
// those not approved yet first when onlyHeld, with the number of all that
// match.
func (s *Store) FlaggedCustomers(ctx context.Context, programID string, onlyHeld bool, limit, offset int) ([]*FlaggedCustomer, int, error) {
	cond := ` WHERE c.program_id = ? AND c.flags <> ''`
	if onlyHeld {
		cond += ` AND c.flags_approved_at = 0`
	}
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM customers c`+cond, programID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.read.QueryContext(ctx, customerSelect+cond+` ORDER BY c.created_at DESC, c.id DESC LIMIT ? OFFSET ?`, programID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	var out []*FlaggedCustomer
	byID := map[int64]*FlaggedCustomer{}
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			rows.Close()
			return nil, 0, err
		}
		f := &FlaggedCustomer{Customer: c, Rewards: []rules.Money{}}
		out = append(out, f)
		byID[c.ID] = f
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	for _, f := range out {
		sums, err := s.read.QueryContext(ctx, `SELECT r.currency, count(*), sum(r.amount_minor - r.reversed_minor) FROM rewards r
			JOIN transactions t ON t.id = r.transaction_id WHERE t.customer_id = ? AND r.state <> 'reversed'
			GROUP BY r.currency ORDER BY r.currency`, f.ID)
		if err != nil {
			return nil, 0, err
		}
		for sums.Next() {
			var (
				m rules.Money
				n int
			)
			if err := sums.Scan(&m.Currency, &n, &m.Minor); err != nil {
				sums.Close()
				return nil, 0, err
			}
			f.Rewards, f.RewardCount = append(f.Rewards, m), f.RewardCount+n
		}
		sums.Close()
		if err := sums.Err(); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// FlaggedClick is a click whose landing URL carried paid-ad markers.
type FlaggedClick struct {
	ID        int64
	Partner   *Partner
	URL       string
	Flags     string
	CreatedAt time.Time
}

// FlaggedClicks lists a program's flagged clicks, newest first (only
// partnerID's when it is not 0), at most limit.
func (s *Store) FlaggedClicks(ctx context.Context, programID string, partnerID int64, limit int) ([]FlaggedClick, error) {
	q := `SELECT k.id, k.url, k.flags, k.created_at, p.id, p.program_id, p.key, p.email, p.name, p.created_at
		FROM clicks k JOIN partners p ON p.id = k.partner_id WHERE k.program_id = ? AND k.flags <> ''`
	args := []any{programID}
	if partnerID != 0 {
		q += ` AND k.partner_id = ?`
		args = append(args, partnerID)
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY k.created_at DESC, k.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FlaggedClick
	for rows.Next() {
		var (
			k      FlaggedClick
			p      Partner
			kc, pc int64
		)
		if err := rows.Scan(&k.ID, &k.URL, &k.Flags, &kc, &p.ID, &p.ProgramID, &p.Key, &p.Email, &p.Name, &pc); err != nil {
			return nil, err
		}
		k.CreatedAt, p.CreatedAt, k.Partner = fromUnix(kc), fromUnix(pc), &p
		out = append(out, k)
	}
	return out, rows.Err()
}

// PaidAdClickCounts counts each partner's flagged clicks in a program.
func (s *Store) PaidAdClickCounts(ctx context.Context, programID string) (map[int64]int, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT partner_id, count(*) FROM clicks WHERE program_id = ? AND flags <> '' GROUP BY partner_id`, programID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
