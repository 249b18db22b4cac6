package tracking

import (
	"time"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The reward ledger's decisions (docs/payouts.md): rewards approved when
// their hold has passed, and what a refund does to a reward in each state.

// Hook points for webhooks out (issue 15, item 4): each runs inside the
// write that makes the change it is about, after the change, so an event
// recorded there commits with it or not at all. An error fails the write.

// rewardApproved runs for every reward moved from pending to approved
// (the approval job, a payout that approves the due rewards first, or the
// merchant approving a flagged customer whose hold has passed).
//
// Its event's data is the reward's transaction as GET /v1/transactions/{key}
// shows it, the reward now approved; it is read only when an endpoint
// takes reward.approved.
func rewardApproved(tx *store.Tx, p *store.Program, a *store.ApprovedReward) error {
	if ok, err := tx.Subscribed(p.ID, store.EventRewardApproved); err != nil || !ok {
		return err
	}
	tr, err := tx.Transaction(p.ID, a.TransactionKey)
	if err != nil {
		return err
	}
	return announce(tx, p, store.EventRewardApproved, tr)
}

// payoutPaid runs once per batch, when it is marked paid (not for a
// repeated marking, which changes nothing).
//
// Its event's data is the batch as the admin API shows it.
func payoutPaid(tx *store.Tx, p *store.Program, po *store.Payout) error {
	return announce(tx, p, store.EventPayoutPaid, po)
}

// ApproveDue moves the rewards found due (store.Store.DueRewards, read
// outside the write) to approved, checking each again inside the write:
// one approved meanwhile (another instance, a payout) is left as it is,
// so running this twice, or on two instances at once, approves each
// reward once. It returns the rewards it approved.
func ApproveDue(tx *store.Tx, due []store.DueReward) ([]*store.ApprovedReward, error) {
	programs := map[string]*store.Program{}
	var out []*store.ApprovedReward
	for _, d := range due {
		a, ok, err := tx.ApproveReward(d)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		p := programs[d.ProgramID]
		if p == nil {
			if p, err = tx.Program(d.ProgramID); err != nil {
				return nil, err
			}
			programs[d.ProgramID] = p
		}
		if err := rewardApproved(tx, p, a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// approveProgram approves, inside the write, a program's due rewards
// (one customer's when customerID is not 0).
func approveProgram(tx *store.Tx, p *store.Program, customerID int64) ([]*store.ApprovedReward, error) {
	due, err := tx.DueRewards(p.ID, customerID)
	if err != nil || len(due) == 0 {
		return nil, err
	}
	return ApproveDue(tx, due)
}

// newReward is a new sale's reward as it is stored and shown: pending
// until the program's hold has passed since the sale (at), shown approved
// at once when it has (a backdated sale, a hold of 0), unless its
// customer's fraud flags hold it.
func newReward(tx *store.Tx, p *store.Program, tr *store.Transaction, at time.Time, amount rules.Money) *store.Reward {
	r := &store.Reward{Partner: tr.Customer.Partner, Amount: amount, Stored: store.StatePending,
		DueAt: at.UTC().Truncate(time.Second).Add(time.Duration(p.HoldDays) * 24 * time.Hour), Held: tr.Customer.HeldByFlags()}
	r.State = rules.Effective(r.Stored, !r.DueAt.After(tx.Now()), r.Held)
	return r
}

// refundEntries decides the ledger entries of a refund Refund has just
// applied to tr's rewards (ReversedMinor grown, not saved yet), and each
// reward's new state (rules.Reversal): a reward not batched loses the
// amount in its bucket, and is reversed when nothing is left; a reward
// in a batch (paid or not) keeps its state and the partner owes the amount
// back, a clawback their next payout nets.
func refundEntries(p *store.Program, tr *store.Transaction) []*store.LedgerEntry {
	var out []*store.LedgerEntry
	for _, r := range tr.Rewards {
		d := r.ReversedNow()
		if d <= 0 {
			continue
		}
		kind, bucket, state := rules.Reversal(r.Stored, r.ReversedMinor == r.Amount.Minor)
		if state != r.Stored {
			r.Stored, r.State = state, state
		}
		out = append(out, &store.LedgerEntry{ProgramID: p.ID, PartnerID: r.Partner.ID, Currency: r.Amount.Currency,
			Kind: kind, Bucket: bucket, Minor: -d, RewardID: r.ID})
	}
	return out
}
