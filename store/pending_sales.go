package store

import (
	"sort"
	"time"

	"github.com/potrack/potrack/rules"
)

// A payment gateway may deliver a sale before the event that attributes
// its customer (Stripe does not promise an order). Such a sale is kept here
// for PendingSaleTTL, and recorded if the customer is created attributed
// in that time; most are sales of customers nobody referred, and expire.

// PendingSaleTTL is how long a sale waits for its customer.
const PendingSaleTTL = 7 * 24 * time.Hour

// PendingSale is a verified, rewardable sale waiting for its customer.
type PendingSale struct {
	Key         string
	CustomerKey string
	Amount      rules.Money
	Action      string
	ProductID   string
	ProductType string
	Source      string
	// Payment is the gateway's other id for the payment (a Stripe
	// PaymentIntent), under which a refund or an invoice link may be kept.
	Payment string
	// DiscountCode is the code the sale named (none known to the program,
	// or the sale would have attributed its customer).
	DiscountCode string
	At           time.Time
}

// SavePendingSale keeps a sale (once per key) and forgets the program's
// expired ones.
func (t *Tx) SavePendingSale(programID string, s PendingSale) error {
	delete(t.noPending, programID)
	if _, err := t.exec(`DELETE FROM pending_sales WHERE program_id = ? AND created_at < ?`,
		programID, unix(t.now.Add(-PendingSaleTTL))); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO pending_sales (program_id, key, customer_key, amount_minor, currency, action,
		product_id, product_type, source, payment, discount_code, occurred_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (program_id, key) DO NOTHING`,
		programID, s.Key, s.CustomerKey, s.Amount.Minor, s.Amount.Currency, s.Action, s.ProductID, s.ProductType,
		s.Source, s.Payment, s.DiscountCode, unix(s.At), unix(t.now))
	return err
}

// TakePendingSales returns and forgets the unexpired sales kept for a
// customer, oldest first.
func (t *Tx) TakePendingSales(programID, customerKey string) ([]PendingSale, error) {
	// Kept sales are rare and every new attributed customer asks. Whether
	// the program has any is read once per batch (on SQLite the batch holds
	// the write lock: no other process adds one meanwhile; on PostgreSQL a
	// batch is one serializable write, so a sale kept meanwhile by another
	// instance makes one of the two run again); then an index lookup
	// answers for the customer, and only a customer that has some pays for
	// DELETE … RETURNING.
	if t.noPending[programID] {
		return nil, nil
	}
	var any int
	if err := t.queryRow(`SELECT count(*) FROM (SELECT 1 FROM pending_sales WHERE program_id = ? LIMIT 1) AS x`, programID).Scan(&any); err != nil {
		return nil, err
	}
	if any == 0 {
		if t.noPending == nil {
			t.noPending = map[string]bool{}
		}
		t.noPending[programID] = true
		return nil, nil
	}
	err := t.queryRow(`SELECT count(*) FROM (SELECT 1 FROM pending_sales WHERE program_id = ? AND customer_key = ? LIMIT 1) AS x`,
		programID, customerKey).Scan(&any)
	if err != nil || any == 0 {
		return nil, err
	}
	rows, err := t.query(`DELETE FROM pending_sales WHERE program_id = ? AND customer_key = ?
		RETURNING key, customer_key, amount_minor, currency, action, product_id, product_type, source, payment,
		discount_code, occurred_at, created_at`,
		programID, customerKey)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PendingSale
	for rows.Next() {
		var (
			s           PendingSale
			at, created int64
		)
		if err := rows.Scan(&s.Key, &s.CustomerKey, &s.Amount.Minor, &s.Amount.Currency, &s.Action, &s.ProductID,
			&s.ProductType, &s.Source, &s.Payment, &s.DiscountCode, &at, &created); err != nil {
			return nil, err
		}
		if fromUnix(created).Before(t.now.Add(-PendingSaleTTL)) {
			continue
		}
		s.At = fromUnix(at)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// RETURNING gives no order; sales are recorded oldest first, so
	// "first N transactions" limits count them in the order they happened.
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}
