package store

import (
	"context"
	"database/sql"
	"math"
	"sort"
	"time"

	"github.com/potrack/potrack/rules"
)

// The reward ledger (docs/payouts.md). A reward's state is a column of
// rewards (state); the money is in ledger_entries, an append-only list of
// signed amounts per partner, currency and bucket. Balances are sums of
// entries. Entries are only ever inserted: a correction is another entry.

// Ledger states, buckets and entry kinds (rules/ledger.go).
const (
	StatePending  = rules.StatePending
	StateApproved = rules.StateApproved
	StateInPayout = rules.StateInPayout
	StatePaid     = rules.StatePaid
	StateReversed = rules.StateReversed
)

// LedgerEntry is one signed amount in one bucket of a partner's ledger.
type LedgerEntry struct {
	ID        int64
	ProgramID string
	PartnerID int64
	Currency  string
	Kind      string // rules.Entry…
	Bucket    string // rules.Bucket…
	Minor     int64  // signed: money into the bucket is positive
	RewardID  int64  // 0 when the entry is about no single reward
	PayoutID  int64  // 0 when the entry is about no payout
	CreatedAt time.Time
}

const insertEntrySQL = `INSERT INTO ledger_entries (program_id, partner_id, currency, kind, bucket, amount_minor,
	reward_id, payout_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// AddLedgerEntry appends an entry, dated now, and sets its id.
func (t *Tx) AddLedgerEntry(e *LedgerEntry) error {
	e.CreatedAt = t.now
	id, _, err := t.insert(insertEntrySQL, e.ProgramID, e.PartnerID, e.Currency, e.Kind, e.Bucket, e.Minor,
		nullID(e.RewardID), nullID(e.PayoutID), unix(e.CreatedAt))
	e.ID = id
	return err
}

// moveLedger appends the pair of entries that moves minor from one
// bucket to another.
func (t *Tx) moveLedger(e LedgerEntry, from, to string) error {
	if e.Minor == 0 {
		return nil
	}
	out, in := e, e
	out.Bucket, out.Minor = from, -e.Minor
	in.Bucket = to
	if err := t.AddLedgerEntry(&out); err != nil {
		return err
	}
	return t.AddLedgerEntry(&in)
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// SetRewardState stores a reward's new ledger state.
func (t *Tx) SetRewardState(rewardID int64, state string) error {
	res, err := t.exec(`UPDATE rewards SET state = ? WHERE id = ?`, state, rewardID)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// dueCondition is SQL true for a reward r of a sale t of program pr,
// with customer c (LEFT JOINed), that is past its hold at ?now and not
// held by an unapproved fraud flag. It names its one argument, now, as ?.
const dueCondition = `t.created_at <= ? - pr.hold_days * 86400 AND ` + notHeld

// notHeld is SQL true unless the customer c is flagged and the merchant
// has not approved it.
const notHeld = `(c.id IS NULL OR c.flags = '' OR c.flags_approved_at <> 0)`

// DueReward is a pending reward past its hold, not held by a flag.
type DueReward struct {
	ID        int64
	ProgramID string
}

const dueRewardsSQL = `SELECT r.id, t.program_id FROM rewards r
	JOIN transactions t ON t.id = r.transaction_id
	JOIN programs pr ON pr.id = t.program_id
	LEFT JOIN customers c ON c.id = t.customer_id
	WHERE r.state = 'pending' AND ` + dueCondition

// DueRewards lists up to limit pending rewards past their hold, from the
// read pool: the approval job reads them outside the write, and
// ApproveRewards checks each again inside it.
func (s *Store) DueRewards(ctx context.Context, limit int) ([]DueReward, error) {
	return dueRewards(ctx, s.read, dueRewardsSQL+` ORDER BY r.id LIMIT ?`, unix(s.Now()), limit)
}

// DueRewards lists, inside the write, a program's pending rewards past
// their hold (only one customer's when customerID is not 0).
func (t *Tx) DueRewards(programID string, customerID int64) ([]DueReward, error) {
	ctx, q := t.q()
	if customerID != 0 {
		return dueRewards(ctx, q, dueRewardsSQL+` AND t.program_id = ? AND t.customer_id = ? ORDER BY r.id`, unix(t.now), programID, customerID)
	}
	return dueRewards(ctx, q, dueRewardsSQL+` AND t.program_id = ? ORDER BY r.id`, unix(t.now), programID)
}

func dueRewards(ctx context.Context, q querier, query string, args ...any) ([]DueReward, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DueReward
	for rows.Next() {
		var d DueReward
		if err := rows.Scan(&d.ID, &d.ProgramID); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ApprovedReward is a reward an approval moved from pending to approved.
type ApprovedReward struct {
	RewardID       int64
	ProgramID      string
	PartnerID      int64
	TransactionKey string
	Amount         rules.Money // what it is worth now (net of reversals)
	ApprovedAt     time.Time
}

// approveSQL moves one reward to approved when it is still pending, past
// its hold and not held: the row's own condition makes approving twice
// (two instances, a job and a payout) change nothing the second time.
const approveSQL = `UPDATE rewards SET state = 'approved' WHERE id = ? AND state = 'pending' AND EXISTS (
	SELECT 1 FROM transactions t JOIN programs pr ON pr.id = t.program_id LEFT JOIN customers c ON c.id = t.customer_id
	WHERE t.id = rewards.transaction_id AND ` + dueCondition + `)`

// ApproveReward moves a due reward to approved with its ledger entries
// (pending -> approved, what it is worth now). ok is false, and nothing
// changes, when it is no longer pending, not yet due, or held.
func (t *Tx) ApproveReward(d DueReward) (a *ApprovedReward, ok bool, err error) {
	wasDirty := t.dirty
	res, err := t.exec(approveSQL, d.ID, unix(t.now))
	if err != nil {
		return nil, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		t.dirty = wasDirty // nothing changed
		return nil, false, err
	}
	a = &ApprovedReward{RewardID: d.ID, ProgramID: d.ProgramID, ApprovedAt: t.now}
	if err := t.queryRow(`SELECT r.partner_id, r.currency, r.amount_minor - r.reversed_minor, t.key
		FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE r.id = ?`, d.ID).
		Scan(&a.PartnerID, &a.Amount.Currency, &a.Amount.Minor, &a.TransactionKey); err != nil {
		return nil, false, err
	}
	e := LedgerEntry{ProgramID: d.ProgramID, PartnerID: a.PartnerID, Currency: a.Amount.Currency,
		Kind: rules.EntryApproved, Minor: a.Amount.Minor, RewardID: d.ID}
	if err := t.moveLedger(e, rules.BucketPending, rules.BucketApproved); err != nil {
		return nil, false, err
	}
	return a, true, nil
}

// Balance is one partner's ledger in one currency, in minor units. A
// pending reward past its hold and not held counts as approved whether or
// not the approval job has moved it yet. Held is the part of Pending held
// by fraud flags the merchant has not approved. Clawback is what the
// partner owes back (positive), netted by their next payout.
type Balance struct {
	PartnerID int64
	Currency  string
	Pending   int64
	Held      int64
	Approved  int64
	InPayout  int64
	Paid      int64
	Clawback  int64
}

// balancesSQL sums a program's ledger per partner, currency and bucket,
// reading a due pending reward's entries in pending as approved and a
// held one's as held. Amounts are summed in billions and the rest (see
// joinSum) so no sum overflows.
const balancesSQL = `SELECT e.partner_id, e.currency,
	CASE WHEN e.bucket <> 'pending' OR r.id IS NULL OR r.state <> 'pending' THEN e.bucket
	     WHEN NOT ` + notHeld + ` THEN 'held'
	     WHEN t.created_at <= ? - pr.hold_days * 86400 THEN 'approved'
	     ELSE 'pending' END AS b,
	sum(e.amount_minor / 1000000000), sum(e.amount_minor % 1000000000)
	FROM ledger_entries e
	JOIN programs pr ON pr.id = e.program_id
	LEFT JOIN rewards r ON r.id = e.reward_id
	LEFT JOIN transactions t ON t.id = r.transaction_id
	LEFT JOIN customers c ON c.id = t.customer_id
	WHERE e.program_id = ?`

// Balances sums the ledger of a program's partners (only partnerID's when
// it is not 0) per partner and currency, ordered by partner id and
// currency. Partners without entries are absent.
func (s *Store) Balances(ctx context.Context, programID string, partnerID int64) ([]Balance, error) {
	q, args := balancesSQL, []any{unix(s.Now()), programID}
	if partnerID != 0 {
		q += ` AND e.partner_id = ?`
		args = append(args, partnerID)
	}
	rows, err := s.read.QueryContext(ctx, q+` GROUP BY e.partner_id, e.currency, b ORDER BY e.partner_id, e.currency`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Balance
	for rows.Next() {
		var (
			partner        int64
			cur, bucket    string
			billions, rest int64
		)
		if err := rows.Scan(&partner, &cur, &bucket, &billions, &rest); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].PartnerID != partner || out[n-1].Currency != cur {
			out = append(out, Balance{PartnerID: partner, Currency: cur})
		}
		b := &out[len(out)-1]
		v := joinSignedSum(billions, rest)
		switch bucket {
		case rules.BucketPending:
			b.Pending += v
		case "held":
			b.Pending += v
			b.Held += v
		case rules.BucketApproved:
			b.Approved += v
		case rules.BucketInPayout:
			b.InPayout += v
		case rules.BucketPaid:
			b.Paid += v
		case rules.BucketClawback:
			b.Clawback -= v
		}
	}
	return out, rows.Err()
}

// joinSignedSum is joinSum for sums that may be negative (billions and
// rest then share the sign of the amounts they came from), saturating at
// either end of int64.
func joinSignedSum(billions, rest int64) int64 {
	if billions >= 0 && rest >= 0 {
		return joinSum(billions, rest)
	}
	if billions <= 0 && rest <= 0 {
		if billions < (math.MinInt64-rest)/splitBase {
			return math.MinInt64
		}
		return billions*splitBase + rest
	}
	// Mixed signs: |rest| < 2^63 and the total is within range when the
	// amounts were, which MaxMinor bounds.
	return billions*splitBase + rest
}

// RewardLedger is one reward as the ledger sees it, for the lists that
// show rewards by state (the partner page).
type RewardLedger struct {
	RewardID       int64
	PartnerID      int64
	TransactionKey string
	SaleAt         time.Time
	Amount         rules.Money // net of reversals
	State          string      // effective: a due pending reward is approved
	Held           bool
	DueAt          time.Time
}

// PartnerRewards lists a partner's rewards, newest sale first, at most
// limit, with their effective states.
func (s *Store) PartnerRewards(ctx context.Context, partnerID int64, limit int) ([]RewardLedger, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT r.id, r.partner_id, t.key, t.created_at, r.amount_minor - r.reversed_minor,
		r.currency, r.state, CASE WHEN `+notHeld+` THEN 0 ELSE 1 END, t.created_at + pr.hold_days * 86400
		FROM rewards r JOIN transactions t ON t.id = r.transaction_id JOIN programs pr ON pr.id = t.program_id
		LEFT JOIN customers c ON c.id = t.customer_id
		WHERE r.partner_id = ? ORDER BY t.created_at DESC, r.id DESC LIMIT ?`, partnerID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := s.Now()
	var out []RewardLedger
	for rows.Next() {
		var (
			r          RewardLedger
			sale, due  int64
			held       int
			storedStat string
		)
		if err := rows.Scan(&r.RewardID, &r.PartnerID, &r.TransactionKey, &sale, &r.Amount.Minor, &r.Amount.Currency,
			&storedStat, &held, &due); err != nil {
			return nil, err
		}
		r.SaleAt, r.DueAt, r.Held = fromUnix(sale), fromUnix(due), held != 0
		r.State = rules.Effective(storedStat, !r.DueAt.After(now), r.Held)
		out = append(out, r)
	}
	return out, rows.Err()
}

// LedgerEntries lists a partner's ledger entries in order, for tests and
// audits.
func (s *Store) LedgerEntries(ctx context.Context, partnerID int64) ([]LedgerEntry, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, program_id, partner_id, currency, kind, bucket, amount_minor,
		reward_id, payout_id, created_at FROM ledger_entries WHERE partner_id = ? ORDER BY id`, partnerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LedgerEntry
	for rows.Next() {
		var (
			e              LedgerEntry
			reward, payout sql.NullInt64
			created        int64
		)
		if err := rows.Scan(&e.ID, &e.ProgramID, &e.PartnerID, &e.Currency, &e.Kind, &e.Bucket, &e.Minor,
			&reward, &payout, &created); err != nil {
			return nil, err
		}
		e.RewardID, e.PayoutID, e.CreatedAt = reward.Int64, payout.Int64, fromUnix(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RewardCount counts a partner's rewards in one state and currency, with
// what they are worth (net of reversals).
type RewardCount struct {
	State    string
	Currency string
	Count    int
	Amount   rules.Money
}

// stateOrder is the order RewardCounts lists states in.
var stateOrder = map[string]int{StatePending: 0, StateApproved: 1, StateInPayout: 2, StatePaid: 3, StateReversed: 4}

// RewardCounts counts a partner's rewards per effective state (a due
// pending reward is approved) and currency.
func (s *Store) RewardCounts(ctx context.Context, partnerID int64) ([]RewardCount, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT CASE WHEN r.state = 'pending' AND `+dueCondition+` THEN 'approved' ELSE r.state END AS st,
		r.currency, count(*), sum(r.amount_minor - r.reversed_minor)
		FROM rewards r JOIN transactions t ON t.id = r.transaction_id JOIN programs pr ON pr.id = t.program_id
		LEFT JOIN customers c ON c.id = t.customer_id
		WHERE r.partner_id = ? GROUP BY st, r.currency`, unix(s.Now()), partnerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RewardCount
	for rows.Next() {
		var rc RewardCount
		if err := rows.Scan(&rc.State, &rc.Currency, &rc.Count, &rc.Amount.Minor); err != nil {
			return nil, err
		}
		rc.Amount.Currency = rc.Currency
		out = append(out, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := stateOrder[out[i].State], stateOrder[out[j].State]; a != b {
			return a < b
		}
		return out[i].Currency < out[j].Currency
	})
	return out, nil
}
