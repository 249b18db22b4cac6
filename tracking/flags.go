package tracking

import (
	"time"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// Fraud flags (docs/payouts.md#fraud-flags) are decided when a customer
// is created and never block anything: a flagged customer is stored and
// its sales rewarded as any other, but its rewards stay pending, past the
// hold, until the merchant approves the customer (ApproveFlags).
//
//   - self_referral: the customer's email is their partner's (trimmed,
//     without case).
//   - paid_ad: the customer was attributed by the referral cookie while
//     the partner had a click whose landing URL carried a paid-ad marker
//     (gclid, fbclid, msclkid) within the program's cookie lifetime.
//     potrack keeps no visitor identity, so it cannot tell whether that
//     click was this customer's; it flags the customers such a click may
//     have brought, and the merchant decides.

// customerFlags decides a new customer's flags that cost no lookup
// (self_referral), before it is stored.
func customerFlags(c *store.Customer) string {
	if c.Partner != nil && rules.SelfReferral(c.Email, c.Partner.Email) {
		return rules.FlagSelfReferral
	}
	return ""
}

// flagPaidAd adds paid_ad to a customer just created by the referral
// cookie when its partner had a flagged click within the program's
// cookie lifetime: one indexed look, for new cookie customers only.
func flagPaidAd(tx *store.Tx, p *store.Program, c *store.Customer) error {
	if c.Partner == nil || c.AttributedBy != rules.ByCookie {
		return nil
	}
	since := tx.Now().Add(-time.Duration(max(p.CookieDays, 1)) * 24 * time.Hour)
	recent, err := tx.RecentPaidAdClick(c.Partner.ID, since)
	if err != nil || !recent {
		return err
	}
	c.Flags = rules.JoinFlags(c.Flags, rules.FlagPaidAd)
	return tx.SetCustomerFlags(c.ID, c.Flags)
}

// ApproveFlags records the merchant's approval of a flagged customer and
// approves, in the same write, its rewards whose hold has passed. changed
// is false when it was approved already. store.ErrNotFound when the
// program has no such customer or it has no flags.
func ApproveFlags(tx *store.Tx, p *store.Program, customerKey string) (*store.Customer, bool, error) {
	c, changed, err := tx.ApproveCustomerFlags(p.ID, customerKey)
	if err != nil || !changed {
		return c, changed, err
	}
	if _, err := approveProgram(tx, p, c.ID); err != nil {
		return nil, false, err
	}
	return c, true, nil
}
