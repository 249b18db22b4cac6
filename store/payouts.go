package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/potrack/potrack/rules"
)

// Payout batches (docs/payouts.md): a batch holds an item per partner and
// currency, each settling approved rewards (payout_rewards, keyed by the
// reward: a reward is in one batch at most) and netting clawbacks owed
// back (payout_clawbacks, keyed by the clawback's ledger entry). Creating
// a batch moves its rewards to in_payout; marking it paid, once, moves
// them to paid. The ledger records both.

// Payout statuses.
const (
	PayoutCreated = "created"
	PayoutPaid    = "paid"
)

var (
	// ErrRewardBatched: the reward is in a payout batch, which pays what
	// it was created with; the row cannot be removed.
	ErrRewardBatched = errors.New("the reward is in a payout batch")
	// ErrPayoutRace: a reward or clawback the batch was to settle is no
	// longer approved or open (another batch, a refund): nothing is stored.
	ErrPayoutRace = errors.New("a reward or clawback of the batch changed meanwhile")
	// ErrPaidElsewise: the batch is already marked paid with another
	// reference.
	ErrPaidElsewise = errors.New("the payout is already marked paid with another reference")
)

// Payout is a batch of payments to partners.
type Payout struct {
	ID        int64
	ProgramID string
	Status    string
	Reference string
	CreatedAt time.Time
	PaidAt    time.Time // zero until paid
	Items     []*PayoutItem
}

// Totals sums the items per currency, in order of currency.
func (p *Payout) Totals() []rules.Money {
	var out []rules.Money
	for _, it := range p.Items {
		found := false
		for i := range out {
			if out[i].Currency == it.Currency {
				out[i].Minor += it.AmountMinor
				found = true
			}
		}
		if !found {
			out = append(out, rules.Money{Minor: it.AmountMinor, Currency: it.Currency})
		}
	}
	return out
}

// Currencies lists the currencies of the items, in order.
func (p *Payout) Currencies() []string {
	var out []string
	for _, m := range p.Totals() {
		out = append(out, m.Currency)
	}
	return out
}

// PayoutItem is one partner's payment in one currency.
type PayoutItem struct {
	ID            int64
	PayoutID      int64
	Partner       *Partner
	Currency      string
	RewardsMinor  int64 // the rewards it settles
	ClawbackMinor int64 // the clawbacks it nets (positive; the item pays that much less)
	AmountMinor   int64 // what is paid: RewardsMinor - ClawbackMinor
	RewardCount   int
	// What a new batch settles (InsertPayout); not read back.
	Rewards   []PayableReward
	Clawbacks []OpenClawback
}

// Amount is what the item pays.
func (it *PayoutItem) Amount() rules.Money {
	return rules.Money{Minor: it.AmountMinor, Currency: it.Currency}
}

// PayableReward is an approved reward not in any batch.
type PayableReward struct {
	RewardID  int64
	PartnerID int64
	Currency  string
	Minor     int64 // net of reversals
}

// OpenClawback is a clawback no batch has netted yet.
type OpenClawback struct {
	EntryID   int64
	PartnerID int64
	Currency  string
	Minor     int64 // owed back, positive
}

// PayableRewards lists, inside the write, a program's approved rewards
// (only partnerID's when it is not 0), by partner, currency and id.
// Approve the due ones first (tracking.CreatePayout does).
func (t *Tx) PayableRewards(programID string, partnerID int64) ([]PayableReward, error) {
	q := `SELECT r.id, r.partner_id, r.currency, r.amount_minor - r.reversed_minor FROM rewards r
		JOIN partners p ON p.id = r.partner_id WHERE r.state = 'approved' AND p.program_id = ?`
	args := []any{programID}
	if partnerID != 0 {
		q += ` AND r.partner_id = ?`
		args = append(args, partnerID)
	}
	rows, err := t.query(q+` ORDER BY r.partner_id, r.currency, r.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PayableReward
	for rows.Next() {
		var r PayableReward
		if err := rows.Scan(&r.RewardID, &r.PartnerID, &r.Currency, &r.Minor); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// OpenClawbacks lists, inside the write, a program's clawbacks that no
// batch has netted (only partnerID's when it is not 0).
func (t *Tx) OpenClawbacks(programID string, partnerID int64) ([]OpenClawback, error) {
	q := `SELECT e.id, e.partner_id, e.currency, -e.amount_minor FROM ledger_entries e
		WHERE e.kind = 'clawback' AND e.program_id = ?
		AND NOT EXISTS (SELECT 1 FROM payout_clawbacks pc WHERE pc.entry_id = e.id)`
	args := []any{programID}
	if partnerID != 0 {
		q += ` AND e.partner_id = ?`
		args = append(args, partnerID)
	}
	rows, err := t.query(q+` ORDER BY e.partner_id, e.currency, e.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OpenClawback
	for rows.Next() {
		var c OpenClawback
		if err := rows.Scan(&c.EntryID, &c.PartnerID, &c.Currency, &c.Minor); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// InsertPayout stores a new batch with its items, the rewards and
// clawbacks each settles, the rewards' move to in_payout and the ledger
// entries (batched, netted). ErrPayoutRace when a reward is no longer
// approved or a clawback is netted already.
func (t *Tx) InsertPayout(po *Payout) error {
	po.Status, po.CreatedAt, po.PaidAt, po.Reference = PayoutCreated, t.now, time.Time{}, ""
	id, _, err := t.insert(`INSERT INTO payouts (program_id, status, reference, created_at, paid_at) VALUES (?, ?, '', ?, 0)`,
		po.ProgramID, po.Status, unix(po.CreatedAt))
	if err != nil {
		return err
	}
	po.ID = id
	for _, it := range po.Items {
		it.PayoutID = id
		if it.ID, _, err = t.insert(`INSERT INTO payout_items (payout_id, partner_id, currency, rewards_minor, clawback_minor,
			amount_minor, reward_count) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, it.Partner.ID, it.Currency, it.RewardsMinor, it.ClawbackMinor, it.AmountMinor, it.RewardCount); err != nil {
			return err
		}
		for _, r := range it.Rewards {
			res, err := t.exec(`UPDATE rewards SET state = 'in_payout' WHERE id = ? AND state = 'approved'`, r.RewardID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return errors.Join(ErrPayoutRace, err)
			}
			if _, err := t.exec(`INSERT INTO payout_rewards (reward_id, item_id, amount_minor) VALUES (?, ?, ?)`,
				r.RewardID, it.ID, r.Minor); err != nil {
				if isUnique(err) {
					return ErrPayoutRace
				}
				return err
			}
			e := LedgerEntry{ProgramID: po.ProgramID, PartnerID: it.Partner.ID, Currency: it.Currency,
				Kind: rules.EntryBatched, Minor: r.Minor, RewardID: r.RewardID, PayoutID: id}
			if err := t.moveLedger(e, rules.BucketApproved, rules.BucketInPayout); err != nil {
				return err
			}
		}
		for _, c := range it.Clawbacks {
			if _, err := t.exec(`INSERT INTO payout_clawbacks (entry_id, item_id, amount_minor) VALUES (?, ?, ?)`,
				c.EntryID, it.ID, c.Minor); err != nil {
				if isUnique(err) {
					return ErrPayoutRace
				}
				return err
			}
			e := LedgerEntry{ProgramID: po.ProgramID, PartnerID: it.Partner.ID, Currency: it.Currency,
				Kind: rules.EntryNetted, Minor: c.Minor, PayoutID: id}
			if err := t.moveLedger(e, rules.BucketInPayout, rules.BucketClawback); err != nil {
				return err
			}
		}
	}
	return nil
}

// MarkPayoutPaid marks a batch paid with the payment's reference, moves
// its rewards to paid and writes the ledger's paid entries. Marking a
// paid batch again with the same reference changes nothing (changed is
// false); with another, ErrPaidElsewise. ErrNotFound when the program has
// no such batch.
func (t *Tx) MarkPayoutPaid(programID string, id int64, reference string) (po *Payout, changed bool, err error) {
	wasDirty := t.dirty
	res, err := t.exec(`UPDATE payouts SET status = 'paid', reference = ?, paid_at = ? WHERE id = ? AND program_id = ? AND status = 'created'`,
		reference, unix(t.now), id, programID)
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
	ctx, q := t.q()
	po, err = payoutByID(ctx, q, programID, id)
	if err != nil {
		return nil, false, err
	}
	if n == 0 {
		if po.Reference != reference {
			return po, false, ErrPaidElsewise
		}
		return po, false, nil
	}
	if _, err := t.exec(`UPDATE rewards SET state = 'paid' WHERE id IN (SELECT pr.reward_id FROM payout_rewards pr
		JOIN payout_items i ON i.id = pr.item_id WHERE i.payout_id = ?)`, id); err != nil {
		return nil, false, err
	}
	for _, it := range po.Items {
		e := LedgerEntry{ProgramID: programID, PartnerID: it.Partner.ID, Currency: it.Currency,
			Kind: rules.EntryPaid, Minor: it.AmountMinor, PayoutID: id}
		if err := t.moveLedger(e, rules.BucketInPayout, rules.BucketPaid); err != nil {
			return nil, false, err
		}
	}
	return po, true, nil
}

const payoutColumns = `id, program_id, status, reference, created_at, paid_at`

func scanPayout(row scanner) (*Payout, error) {
	var (
		p             Payout
		created, paid int64
	)
	err := row.Scan(&p.ID, &p.ProgramID, &p.Status, &p.Reference, &created, &paid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p.CreatedAt = fromUnix(created)
	if paid != 0 {
		p.PaidAt = fromUnix(paid)
	}
	p.Items = []*PayoutItem{}
	return &p, nil
}

// Payout returns a program's batch with its items.
func (s *Store) Payout(ctx context.Context, programID string, id int64) (*Payout, error) {
	return payoutByID(ctx, s.read, programID, id)
}

func payoutByID(ctx context.Context, q querier, programID string, id int64) (*Payout, error) {
	po, err := scanPayout(q.QueryRowContext(ctx, `SELECT `+payoutColumns+` FROM payouts WHERE id = ? AND program_id = ?`, id, programID))
	if err != nil {
		return nil, err
	}
	return po, loadPayoutItems(ctx, q, []*Payout{po})
}

// Payouts lists a program's batches, newest first, with their items and
// the number of all batches.
func (s *Store) Payouts(ctx context.Context, programID string, limit, offset int) ([]*Payout, int, error) {
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM payouts WHERE program_id = ?`, programID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+payoutColumns+` FROM payouts WHERE program_id = ? ORDER BY id DESC LIMIT ? OFFSET ?`,
		programID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	out := []*Payout{}
	for rows.Next() {
		po, err := scanPayout(rows)
		if err != nil {
			rows.Close()
			return nil, 0, err
		}
		out = append(out, po)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return out, total, loadPayoutItems(ctx, s.read, out)
}

const payoutItemSelect = `SELECT i.id, i.payout_id, i.currency, i.rewards_minor, i.clawback_minor, i.amount_minor, i.reward_count,
	p.id, p.program_id, p.key, p.email, p.name, p.created_at
	FROM payout_items i JOIN partners p ON p.id = i.partner_id`

func scanPayoutItem(row scanner) (*PayoutItem, error) {
	var (
		it      PayoutItem
		p       Partner
		created int64
	)
	if err := row.Scan(&it.ID, &it.PayoutID, &it.Currency, &it.RewardsMinor, &it.ClawbackMinor, &it.AmountMinor, &it.RewardCount,
		&p.ID, &p.ProgramID, &p.Key, &p.Email, &p.Name, &created); err != nil {
		return nil, err
	}
	p.CreatedAt = fromUnix(created)
	it.Partner = &p
	return &it, nil
}

func loadPayoutItems(ctx context.Context, q querier, pos []*Payout) error {
	if len(pos) == 0 {
		return nil
	}
	byID := map[int64]*Payout{}
	args := make([]any, len(pos))
	for i, po := range pos {
		byID[po.ID], args[i] = po, po.ID
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")
	rows, err := q.QueryContext(ctx, payoutItemSelect+` WHERE i.payout_id IN (`+marks+`) ORDER BY i.currency, p.key, i.id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanPayoutItem(rows)
		if err != nil {
			return err
		}
		byID[it.PayoutID].Items = append(byID[it.PayoutID].Items, it)
	}
	return rows.Err()
}

// PartnerPayout is one partner's item of a batch, with the batch's state.
type PartnerPayout struct {
	Item      *PayoutItem
	Status    string
	Reference string
	CreatedAt time.Time
	PaidAt    time.Time
}

// PartnerPayouts lists a partner's payout items, newest batch first.
func (s *Store) PartnerPayouts(ctx context.Context, partnerID int64, limit int) ([]PartnerPayout, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT i.id, i.payout_id, i.currency, i.rewards_minor, i.clawback_minor, i.amount_minor,
		i.reward_count, p.id, p.program_id, p.key, p.email, p.name, p.created_at, b.status, b.reference, b.created_at, b.paid_at
		FROM payout_items i JOIN partners p ON p.id = i.partner_id JOIN payouts b ON b.id = i.payout_id
		WHERE i.partner_id = ? ORDER BY b.id DESC, i.currency LIMIT ?`, partnerID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PartnerPayout
	for rows.Next() {
		var (
			pp           PartnerPayout
			it           PayoutItem
			p            Partner
			pc, bc, paid int64
		)
		if err := rows.Scan(&it.ID, &it.PayoutID, &it.Currency, &it.RewardsMinor, &it.ClawbackMinor, &it.AmountMinor, &it.RewardCount,
			&p.ID, &p.ProgramID, &p.Key, &p.Email, &p.Name, &pc, &pp.Status, &pp.Reference, &bc, &paid); err != nil {
			return nil, err
		}
		p.CreatedAt, pp.CreatedAt = fromUnix(pc), fromUnix(bc)
		if paid != 0 {
			pp.PaidAt = fromUnix(paid)
		}
		it.Partner, pp.Item = &p, &it
		out = append(out, pp)
	}
	return out, rows.Err()
}

// PayoutRewardLine is one reward a batch item settles.
type PayoutRewardLine struct {
	ItemID         int64
	RewardID       int64
	TransactionKey string
	Amount         rules.Money // what the batch pays for it
}

// PayoutRewards lists the rewards a batch settles, by item.
func (s *Store) PayoutRewards(ctx context.Context, payoutID int64) ([]PayoutRewardLine, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT pr.item_id, pr.reward_id, t.key, pr.amount_minor, r.currency
		FROM payout_rewards pr JOIN payout_items i ON i.id = pr.item_id JOIN rewards r ON r.id = pr.reward_id
		JOIN transactions t ON t.id = r.transaction_id WHERE i.payout_id = ? ORDER BY pr.item_id, pr.reward_id`, payoutID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PayoutRewardLine
	for rows.Next() {
		var l PayoutRewardLine
		if err := rows.Scan(&l.ItemID, &l.RewardID, &l.TransactionKey, &l.Amount.Minor, &l.Amount.Currency); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
