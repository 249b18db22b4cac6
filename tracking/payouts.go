package tracking

import (
	"errors"
	"sort"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// ErrNothingToPay: no partner has an approved balance, net of what it
// owes back, at or above the program's minimum payout.
var ErrNothingToPay = errors.New("no approved balance reaches the minimum payout")

// CreatePayout makes a payout batch of a program's approved balances (only
// partnerID's when it is not 0), inside the write: the due rewards are
// approved first (so the batch sees what the balances show), then each
// partner's approved rewards and open clawbacks per currency make a line,
// and a line whose net amount is positive and at least the program's
// min_payout for the currency becomes an item (rules.Payable). Lines left
// out stay for a later batch. The batch moves its rewards to in_payout and
// nets the clawbacks (store.Tx.InsertPayout).
func CreatePayout(tx *store.Tx, p *store.Program, partnerID int64) (*store.Payout, error) {
	if _, err := approveProgram(tx, p, 0); err != nil {
		return nil, err
	}
	rewards, err := tx.PayableRewards(p.ID, partnerID)
	if err != nil {
		return nil, err
	}
	claws, err := tx.OpenClawbacks(p.ID, partnerID)
	if err != nil {
		return nil, err
	}
	type key struct {
		partner  int64
		currency string
	}
	items := map[key]*store.PayoutItem{}
	item := func(k key) *store.PayoutItem {
		it := items[k]
		if it == nil {
			it = &store.PayoutItem{Partner: &store.Partner{ID: k.partner}, Currency: k.currency}
			items[k] = it
		}
		return it
	}
	for _, r := range rewards {
		it := item(key{r.PartnerID, r.Currency})
		it.Rewards = append(it.Rewards, r)
		it.RewardsMinor += r.Minor
		it.RewardCount++
	}
	for _, c := range claws {
		k := key{c.PartnerID, c.Currency}
		if items[k] == nil {
			continue // nothing to net it against: it stays owed
		}
		it := items[k]
		it.Clawbacks = append(it.Clawbacks, c)
		it.ClawbackMinor += c.Minor
	}
	po := &store.Payout{ProgramID: p.ID}
	for k, it := range items {
		amount, ok := rules.Payable(rules.PayoutLine{RewardsMinor: it.RewardsMinor, ClawbackMinor: it.ClawbackMinor}, p.MinPayout[k.currency])
		if !ok {
			continue
		}
		partner, err := tx.Partner(p.ID, store.PartnerRef{ID: k.partner})
		if err != nil {
			return nil, err
		}
		it.Partner, it.AmountMinor = partner, amount
		po.Items = append(po.Items, it)
	}
	if len(po.Items) == 0 {
		return nil, ErrNothingToPay
	}
	sort.Slice(po.Items, func(i, j int) bool {
		a, b := po.Items[i], po.Items[j]
		if a.Currency != b.Currency {
			return a.Currency < b.Currency
		}
		return a.Partner.Key < b.Partner.Key
	})
	if err := tx.InsertPayout(po); err != nil {
		return nil, err
	}
	return po, nil
}

// MarkPayoutPaid marks a batch paid with the payment's reference (the
// PayPal batch id, a bank reference). The same reference again changes
// nothing (changed false); another is store.ErrPaidElsewise.
func MarkPayoutPaid(tx *store.Tx, p *store.Program, id int64, reference string) (po *store.Payout, changed bool, err error) {
	po, changed, err = tx.MarkPayoutPaid(p.ID, id, reference)
	if err != nil || !changed {
		return po, changed, err
	}
	if err := payoutPaid(tx, p, po); err != nil {
		return nil, false, err
	}
	return po, true, nil
}
