package rules

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The reward ledger's vocabulary and its transitions (docs/payouts.md).
// A reward has one ledger state; the money it is worth sits in the bucket
// of that state, as the sum of its ledger entries there. Every change is
// an entry (or a pair of entries, for money moving between buckets), so a
// balance is a sum and never a total kept up to date.

// Ledger states of a reward.
const (
	StatePending  = "pending"   // within the program's hold period, or held by a fraud flag
	StateApproved = "approved"  // past the hold: payable
	StateInPayout = "in_payout" // in a payout batch not yet marked paid
	StatePaid     = "paid"      // in a batch marked paid
	StateReversed = "reversed"  // refunded in full before it was batched
)

// Ledger buckets. Each state's money is in the bucket of the same name;
// clawback holds (as a negative amount) what partners owe back for
// refunds of rewards already batched or paid, until a payout nets it.
const (
	BucketPending  = StatePending
	BucketApproved = StateApproved
	BucketInPayout = StateInPayout
	BucketPaid     = StatePaid
	BucketClawback = "clawback"
)

// Ledger entry kinds.
const (
	EntryAccrued  = "accrued"  // a new reward: +amount in pending
	EntryApproved = "approved" // the hold passed: pending -> approved (a pair)
	EntryReversed = "reversed" // a refund of a reward not batched: -amount in its bucket
	EntryBatched  = "batched"  // a payout batch took the reward: approved -> in_payout (a pair)
	EntryClawback = "clawback" // a refund of a batched or paid reward: -amount in clawback
	EntryNetted   = "netted"   // a batch settled a clawback: clawback -> in_payout (a pair, the item pays less)
	EntryPaid     = "paid"     // the batch was marked paid: in_payout -> paid (a pair per item)
)

// Reversal says what a refund that reverses part of a reward does to it
// in the ledger, given the reward's stored state and whether the reward is
// now reversed in full: the entry's kind and bucket, and the reward's new
// state. A reward not yet batched loses the amount where it is (and is
// reversed when nothing is left); one already batched or paid keeps its
// state, since the batch pays what it was created with, and the partner
// owes the amount back: a clawback, netted by the partner's next payout.
func Reversal(state string, full bool) (kind, bucket, newState string) {
	switch state {
	case StateInPayout, StatePaid:
		return EntryClawback, BucketClawback, state
	case StateApproved:
		if full {
			return EntryReversed, BucketApproved, StateReversed
		}
		return EntryReversed, BucketApproved, state
	}
	if full {
		return EntryReversed, BucketPending, StateReversed
	}
	return EntryReversed, BucketPending, StatePending
}

// Due reports whether a reward of a sale made at sale is past a hold of
// holdDays at now.
func Due(sale time.Time, holdDays int, now time.Time) bool {
	return !sale.Add(time.Duration(holdDays) * 24 * time.Hour).After(now)
}

// Effective is the state a reward is shown in: a pending reward past its
// hold and not held by a fraud flag is approved, whether or not the
// approval job has moved it yet (it will, with the same outcome).
func Effective(state string, due, held bool) string {
	if state == StatePending && due && !held {
		return StateApproved
	}
	return state
}

// MaxHoldDays bounds a program's hold period.
const MaxHoldDays = 365

// CheckHoldDays validates a program's hold_days.
func CheckHoldDays(n int) error {
	if n < 0 || n > MaxHoldDays {
		return &FieldError{"hold_days", fmt.Sprintf("hold_days must be a whole number of days from 0 to %d", MaxHoldDays)}
	}
	return nil
}

// PayoutLine is one partner's money in one currency as a new payout batch
// would settle it: the approved rewards' sum and the clawbacks owed back.
type PayoutLine struct {
	RewardsMinor  int64
	ClawbackMinor int64 // what is owed back, as a positive amount
}

// Payable decides whether a line goes into a batch and for how much: the
// rewards less the clawbacks, when that is positive and at least the
// program's minimum for the currency (0: any positive amount). A line
// left out keeps its rewards approved and its clawbacks owed, for a
// later batch.
func Payable(l PayoutLine, minMinor int64) (amount int64, ok bool) {
	amount = l.RewardsMinor - l.ClawbackMinor
	return amount, amount > 0 && amount >= minMinor
}

// CheckMinPayout validates a program's min_payout: minor units per
// currency, each from 0 to MaxMinor. Codes are normalised (usd: USD).
func CheckMinPayout(m map[string]int64) (map[string]int64, error) {
	out := make(map[string]int64, len(m))
	for code, v := range m {
		c, err := NormalizeCurrency(code)
		if err != nil {
			return nil, &FieldError{"min_payout", fmt.Sprintf("min_payout's keys are ISO 4217 codes such as USD; %q is not one", code)}
		}
		if v < 0 || v > MaxMinor {
			return nil, &FieldError{"min_payout." + c, "a minimum payout is a whole number of minor units (cents for USD), 0 or more"}
		}
		out[c] = v
	}
	return out, nil
}

// Fraud flags (flagged, never blocked: docs/payouts.md#fraud-flags).
const (
	FlagSelfReferral = "self_referral" // the customer's email is their partner's
	FlagPaidAd       = "paid_ad"       // a cookie-attributed customer while the partner's paid-ad click was recent
)

// PaidAdMarkers are the query parameters ad networks add to a landing
// URL: Google Ads' gclid, Meta's fbclid, Microsoft Advertising's msclkid.
var PaidAdMarkers = []string{"gclid", "fbclid", "msclkid"}

// ClickFlags lists the paid-ad markers a landing URL's query carries,
// comma-separated ("" for none). Names compare without case; a marker
// with an empty value counts too.
func ClickFlags(rawURL string) string {
	// Clicks are the most frequent write: most URLs carry no marker, and
	// this spares them the parse.
	lower := strings.ToLower(rawURL)
	if !strings.Contains(lower, "clid") && !strings.Contains(lower, "clkid") {
		return ""
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.RawQuery == "" {
		return ""
	}
	var found []string
	q, _ := url.ParseQuery(u.RawQuery) // what parses, even if something does not
	for _, m := range PaidAdMarkers {
		for k := range q {
			if strings.EqualFold(k, m) {
				found = append(found, m)
				break
			}
		}
	}
	return strings.Join(found, ",")
}

// SelfReferral reports whether a customer's email is their partner's:
// trimmed, compared without case; an empty email never matches.
func SelfReferral(customerEmail, partnerEmail string) bool {
	a, b := strings.TrimSpace(customerEmail), strings.TrimSpace(partnerEmail)
	return a != "" && strings.EqualFold(a, b)
}

// JoinFlags joins flags, comma-separated, leaving out empty ones.
func JoinFlags(flags ...string) string {
	var out []string
	for _, f := range flags {
		if f != "" {
			out = append(out, f)
		}
	}
	return strings.Join(out, ",")
}

// MaskEmail shows an email as its first character and its domain:
// j***@example.com. Without an @ (or with nothing before it) it is all
// stars.
func MaskEmail(email string) string {
	email = strings.TrimSpace(email)
	at := strings.LastIndex(email, "@")
	if at <= 0 {
		if email == "" {
			return ""
		}
		return "***"
	}
	r := []rune(email[:at])
	return string(r[0]) + "***" + email[at:]
}
