package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/potrack/potrack/rules"
)

// Transaction sources and statuses.
const (
	SourceAPI     = "api"
	SourceJS      = "js"
	SourceGateway = "gateway"

	// How a customer's partner was decided (attributed_by), SPEC.md
	// "Coupon codes"; see rules.ChooseAttribution for the order.
	AttributedPartner  = rules.ByPartner  // named in the request (REST customer.partner)
	AttributedCookie   = rules.ByCookie   // the referral cookie (/collect partner.key)
	AttributedCode     = rules.ByCode     // a discount code the sale named
	AttributedMetadata = rules.ByMetadata // the payment gateway's customer metadata

	StatusOK       = "ok"
	StatusRefunded = "refunded"

	RewardOK       = "ok"
	RewardReversed = "reversed"
)

// Transaction is one sale (or other action) of a program.
type Transaction struct {
	ID            int64
	ProgramID     string
	Key           string
	Customer      *Customer // nil when stored without customer
	Amount        rules.Money
	Action        string
	ProductID     string
	ProductType   string
	Source        string
	Verified      bool
	Rewardable    bool
	Status        string
	RefundedMinor int64
	// AttributedBy is how the customer's partner was decided (the
	// customer's own AttributedBy, copied to each of its sales: an
	// existing customer keeps its partner); "" without partner, or for a
	// sale stored before this was kept. DiscountCode is the code the sale
	// named, trimmed, as given: known to the program or not.
	AttributedBy string
	DiscountCode string
	CreatedAt    time.Time
	Rewards      []*Reward
}

// Reward is what a partner earns for a transaction.
type Reward struct {
	ID            int64
	Partner       *Partner
	Amount        rules.Money
	ReversedMinor int64
	Status        string
	CreatedAt     time.Time
	// The ledger (ledger.go): Stored is the reward's ledger state as
	// stored (rules.State…), State the state it is shown in (a pending
	// reward past its hold and not held is approved before the approval
	// job moves it). Held: its customer carries a fraud flag the merchant
	// has not approved, so it stays pending. DueAt is when its hold ends.
	Stored string
	State  string
	Held   bool
	DueAt  time.Time
	// reversedBefore is ReversedMinor as read, so a refund knows what it
	// adds (SaveRefund).
	reversedBefore int64
}

// Net is the reward left after reversals.
func (r *Reward) Net() rules.Money {
	return rules.Money{Minor: r.Amount.Minor - r.ReversedMinor, Currency: r.Amount.Currency}
}

const transactionSelect = `SELECT t.id, t.program_id, t.key, t.amount_minor, t.currency, t.action,
	t.product_id, t.product_type, t.source, t.verified, t.rewardable, t.status, t.refunded_minor,
	t.created_at, t.attributed_by, t.discount_code, c.id, c.key, c.name, c.email, c.created_at,
	c.attributed_by, c.discount_code, c.flags, c.flags_approved_at
	FROM transactions t LEFT JOIN customers c ON c.id = t.customer_id`

const rewardSelect = `SELECT r.id, r.transaction_id, r.amount_minor, r.reversed_minor, r.currency, r.status,
	r.created_at, p.id, p.program_id, p.key, p.email, p.name, p.created_at,
	r.state, CASE WHEN ` + notHeld + ` THEN 0 ELSE 1 END, rt.created_at + pr.hold_days * 86400
	FROM rewards r JOIN partners p ON p.id = r.partner_id
	JOIN transactions rt ON rt.id = r.transaction_id JOIN programs pr ON pr.id = rt.program_id
	LEFT JOIN customers c ON c.id = rt.customer_id`

// InsertTransaction stores a transaction and its rewards. CreatedAt, when
// zero, is the write's time. ErrExists when the key is taken.
func (t *Tx) InsertTransaction(tr *Transaction) error {
	created, err := t.ClaimTransaction(tr)
	if err == nil && !created {
		return ErrExists
	}
	return err
}

// ClaimTransaction stores a transaction and its rewards unless its key is
// taken, and says which. The INSERT claims the key: a new sale costs no
// lookup before it, and a taken key changes nothing.
func (t *Tx) ClaimTransaction(tr *Transaction) (created bool, err error) {
	if tr.CreatedAt.IsZero() {
		tr.CreatedAt = t.now
	}
	if tr.Status == "" {
		tr.Status = StatusOK
	}
	var customerID sql.NullInt64
	if tr.Customer != nil {
		customerID = sql.NullInt64{Int64: tr.Customer.ID, Valid: true}
	}
	wasDirty := t.dirty
	tr.ID, created, err = t.insert(`INSERT INTO transactions (program_id, key, customer_id, amount_minor, currency,
		action, product_id, product_type, source, verified, rewardable, status, refunded_minor, created_at,
		attributed_by, discount_code)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (program_id, key) DO NOTHING`,
		tr.ProgramID, tr.Key, customerID, tr.Amount.Minor, tr.Amount.Currency, tr.Action,
		tr.ProductID, tr.ProductType, tr.Source, tr.Verified, tr.Rewardable, tr.Status,
		tr.RefundedMinor, unix(tr.CreatedAt), tr.AttributedBy, tr.DiscountCode)
	t.claimed(created, err, wasDirty)
	if !created || err != nil {
		return false, err
	}
	for _, r := range tr.Rewards {
		r.CreatedAt = t.now
		if r.Status == "" {
			r.Status = RewardOK
		}
		r.Stored = StatePending
		if r.State == "" {
			r.State = StatePending
		}
		id, _, err := t.insert(t.insertRewardSQL(),
			tr.ID, r.Partner.ID, r.Amount.Minor, r.ReversedMinor, r.Amount.Currency, r.Status, unix(r.CreatedAt))
		if err != nil {
			return false, err
		}
		r.ID = id
		// The ledger's first entry: the reward accrues, pending.
		if err := t.AddLedgerEntry(&LedgerEntry{ProgramID: tr.ProgramID, PartnerID: r.Partner.ID, Currency: r.Amount.Currency,
			Kind: rules.EntryAccrued, Bucket: rules.BucketPending, Minor: r.Amount.Minor - r.ReversedMinor, RewardID: id}); err != nil {
			return false, err
		}
	}
	return true, nil
}

const insertRewardSQL = `INSERT INTO rewards (transaction_id, partner_id, amount_minor, reversed_minor,
	currency, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`

// insertRewardSQLite names the new reward's id: past every id a reward
// has had. SQLite gives a new row the largest id in the table plus one,
// so a reward inserted after the newest one was removed (a replaced
// browser sale, DeleteTransaction) would take its id, and with it the
// removed reward's ledger entries, which stay. Both maxima are read off
// an index's end.
const insertRewardSQLite = `INSERT INTO rewards (id, transaction_id, partner_id, amount_minor, reversed_minor,
	currency, status, created_at) VALUES ((SELECT max(m) + 1 FROM (SELECT coalesce(max(id), 0) AS m FROM rewards
	UNION ALL SELECT coalesce(max(reward_id), 0) FROM ledger_entries) x), ?, ?, ?, ?, ?, ?, ?)`

// insertRewardSQL is the engine's reward INSERT: PostgreSQL's identity
// never gives an id twice.
func (t *Tx) insertRewardSQL() string {
	if t.s.pg != nil {
		return insertRewardSQL
	}
	return insertRewardSQLite
}

// SaveRefund writes a transaction's refund state and its rewards'
// reversals and ledger states (Stored). The ledger entries of the
// reversals are the caller's (tracking.Refund decides them).
func (t *Tx) SaveRefund(tr *Transaction) error {
	res, err := t.exec(`UPDATE transactions SET status = ?, refunded_minor = ? WHERE id = ?`,
		tr.Status, tr.RefundedMinor, tr.ID)
	if err != nil {
		return err
	}
	if err := mustAffect(res); err != nil {
		return err
	}
	for _, r := range tr.Rewards {
		if _, err := t.exec(`UPDATE rewards SET reversed_minor = ?, status = ?, state = ? WHERE id = ?`,
			r.ReversedMinor, r.Status, r.Stored, r.ID); err != nil {
			return err
		}
		r.reversedBefore = r.ReversedMinor
	}
	return nil
}

// ReversedNow is what a refund being decided adds to the reward's
// reversal: ReversedMinor less what was reversed when it was read.
func (r *Reward) ReversedNow() int64 { return r.ReversedMinor - r.reversedBefore }

// MarkVerified records that a trusted source confirmed a transaction.
func (t *Tx) MarkVerified(id int64) error {
	res, err := t.exec(`UPDATE transactions SET verified = TRUE WHERE id = ?`, id)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// DeleteTransaction removes a transaction and its rewards, for a verified
// report that replaces an unverified one with the same key. The rewards'
// ledger entries stay (the ledger is append-only) and are evened out by a
// reversal of what each reward still holds; a reward in a payout batch is
// never removed (ErrRewardBatched, and nothing changes).
func (t *Tx) DeleteTransaction(id int64) error {
	var batched int
	if err := t.queryRow(`SELECT count(*) FROM rewards WHERE transaction_id = ? AND state IN ('in_payout', 'paid')`, id).Scan(&batched); err != nil {
		return err
	}
	if batched > 0 {
		return ErrRewardBatched
	}
	if _, err := t.exec(`INSERT INTO ledger_entries (program_id, partner_id, currency, kind, bucket, amount_minor, reward_id, created_at)
		SELECT e.program_id, e.partner_id, e.currency, 'reversed', e.bucket, -sum(e.amount_minor), e.reward_id, ?
		FROM ledger_entries e JOIN rewards r ON r.id = e.reward_id WHERE r.transaction_id = ?
		GROUP BY e.program_id, e.partner_id, e.currency, e.bucket, e.reward_id HAVING sum(e.amount_minor) <> 0`, unix(t.now), id); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM rewards WHERE transaction_id = ?`, id); err != nil {
		return err
	}
	res, err := t.exec(`DELETE FROM transactions WHERE id = ?`, id)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// CountCustomerTransactions counts a customer's stored transactions.
func (t *Tx) CountCustomerTransactions(customerID int64) (int, error) {
	var n int
	err := t.queryRow(`SELECT count(*) FROM transactions WHERE customer_id = ?`, customerID).Scan(&n)
	return n, err
}

// Transaction finds a transaction of a program by key, with its rewards.
func (s *Store) Transaction(ctx context.Context, programID, key string) (*Transaction, error) {
	return transactionByKey(ctx, s.read, programID, key, s.Now())
}

// Transaction finds a transaction by key inside the write. Most keys a
// write looks up are new: a join-free lookup of the key answers those
// (SQLite re-plans a prepared join on every new binding), and only a key
// that exists pays for the full read.
func (t *Tx) Transaction(programID, key string) (*Transaction, error) {
	var id int64
	err := t.queryRow(`SELECT id FROM transactions WHERE program_id = ? AND key = ?`, programID, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	ctx, q := t.q()
	return transactionByKey(ctx, q, programID, key, t.now)
}

func transactionByKey(ctx context.Context, q querier, programID, key string, now time.Time) (*Transaction, error) {
	tr, err := scanTransaction(q.QueryRowContext(ctx, transactionSelect+` WHERE t.program_id = ? AND t.key = ?`, programID, key))
	if err != nil {
		return nil, err
	}
	if err := loadRewards(ctx, q, []*Transaction{tr}, now); err != nil {
		return nil, err
	}
	return tr, nil
}

// TransactionFilter narrows a transaction list. Empty fields match all.
type TransactionFilter struct {
	ProgramID   string
	Key         string
	CustomerKey string
	PartnerKey  string
	Source      string
	Status      string
	// From and To bound created_at to [From, To); zero leaves that side open.
	From, To time.Time
	// Verified, when set, keeps only verified (true) or unverified sales.
	Verified *bool
	Limit    int
	Offset   int
}

// where is the filter as SQL conditions on transactions t LEFT JOIN
// customers c, with their arguments (? placeholders, in order).
func (f TransactionFilter) where() (string, []any) {
	where := []string{"t.program_id = ?"}
	args := []any{f.ProgramID}
	if f.Key != "" {
		where = append(where, "t.key = ?")
		args = append(args, f.Key)
	}
	if f.CustomerKey != "" {
		where = append(where, "c.key = ?")
		args = append(args, f.CustomerKey)
	}
	if f.PartnerKey != "" {
		// The partner's sales are its customers', rewarded or not.
		where = append(where, `c.partner_id = (SELECT id FROM partners WHERE program_id = ? AND key = ?)`)
		args = append(args, f.ProgramID, f.PartnerKey)
	}
	if f.Source != "" {
		where = append(where, "t.source = ?")
		args = append(args, f.Source)
	}
	if f.Status != "" {
		where = append(where, "t.status = ?")
		args = append(args, f.Status)
	}
	if !f.From.IsZero() {
		where = append(where, "t.created_at >= ?")
		args = append(args, unix(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "t.created_at < ?")
		args = append(args, unix(f.To))
	}
	if f.Verified != nil {
		where = append(where, "t.verified = ?")
		args = append(args, *f.Verified)
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// Transactions lists a program's transactions, newest first, with the
// number of all that match.
func (s *Store) Transactions(ctx context.Context, f TransactionFilter) ([]*Transaction, int, error) {
	cond, args := f.where()
	var total int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM transactions t LEFT JOIN customers c ON c.id = t.customer_id`+cond, args...).Scan(&total)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.read.QueryContext(ctx, transactionSelect+cond+` ORDER BY t.created_at DESC, t.id DESC LIMIT ? OFFSET ?`,
		append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []*Transaction{}
	for rows.Next() {
		tr, err := scanTransaction(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, tr)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if err := loadRewards(ctx, s.read, out, s.Now()); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

func scanTransaction(row scanner) (*Transaction, error) {
	var (
		tr                 Transaction
		created            int64
		cID, cCreated      sql.NullInt64
		cKey, cName, cMail sql.NullString
		cBy, cCode, cFlags sql.NullString
		cApproved          sql.NullInt64
	)
	err := row.Scan(&tr.ID, &tr.ProgramID, &tr.Key, &tr.Amount.Minor, &tr.Amount.Currency, &tr.Action,
		&tr.ProductID, &tr.ProductType, &tr.Source, &tr.Verified, &tr.Rewardable, &tr.Status,
		&tr.RefundedMinor, &created, &tr.AttributedBy, &tr.DiscountCode, &cID, &cKey, &cName, &cMail, &cCreated,
		&cBy, &cCode, &cFlags, &cApproved)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	tr.CreatedAt = fromUnix(created)
	if cID.Valid {
		tr.Customer = &Customer{ID: cID.Int64, ProgramID: tr.ProgramID, Key: cKey.String,
			Name: cName.String, Email: cMail.String, AttributedBy: cBy.String, DiscountCode: cCode.String,
			Flags: cFlags.String, CreatedAt: fromUnix(cCreated.Int64)}
		if cApproved.Int64 != 0 {
			tr.Customer.FlagsApprovedAt = fromUnix(cApproved.Int64)
		}
	}
	tr.Rewards = []*Reward{}
	return &tr, nil
}

func loadRewards(ctx context.Context, q querier, trs []*Transaction, now time.Time) error {
	if len(trs) == 0 {
		return nil
	}
	byID := make(map[int64]*Transaction, len(trs))
	args := make([]any, 0, len(trs))
	for _, tr := range trs {
		byID[tr.ID] = tr
		args = append(args, tr.ID)
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")
	rows, err := q.QueryContext(ctx, rewardSelect+` WHERE r.transaction_id IN (`+marks+`) ORDER BY r.id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r              Reward
			p              Partner
			txID           int64
			created, pCrea int64
			held           int
			due            int64
		)
		if err := rows.Scan(&r.ID, &txID, &r.Amount.Minor, &r.ReversedMinor, &r.Amount.Currency, &r.Status,
			&created, &p.ID, &p.ProgramID, &p.Key, &p.Email, &p.Name, &pCrea, &r.Stored, &held, &due); err != nil {
			return err
		}
		r.CreatedAt, p.CreatedAt = fromUnix(created), fromUnix(pCrea)
		r.reversedBefore, r.Held, r.DueAt = r.ReversedMinor, held != 0, fromUnix(due)
		r.State = rules.Effective(r.Stored, !r.DueAt.After(now), r.Held)
		r.Partner = &p
		byID[txID].Rewards = append(byID[txID].Rewards, &r)
	}
	return rows.Err()
}
