package server

import (
	"encoding/json"
	"time"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The JSON shapes potrack answers with. Amounts are JSON numbers written
// from the exact decimal text, never through float64.

func amountJSON(m rules.Money) json.Number { return json.Number(m.String()) }

type partnerView struct {
	ID        int64              `json:"id"`
	Key       string             `json:"key"`
	Email     string             `json:"email"`
	Name      string             `json:"name"`
	CreatedAt time.Time          `json:"created_at"`
	Totals    *partnerTotalsView `json:"totals,omitempty"`
	// Coupons are the partner's codes, in GET /v1/partners/{key} only.
	Coupons *[]string `json:"coupons,omitempty"`
	// Balances are the partner's ledger per currency (docs/payouts.md),
	// in GET /v1/partners/{key} only.
	Balances *[]balanceView `json:"balances,omitempty"`
}

type partnerTotalsView struct {
	Clicks       int         `json:"clicks"`
	Customers    int         `json:"customers"`
	Transactions int         `json:"transactions"`
	Rewards      []moneyView `json:"rewards"`
}

type moneyView struct {
	Amount      json.Number `json:"amount"`
	AmountUnits string      `json:"amount_units"`
}

func viewPartner(p *store.Partner) *partnerView {
	if p == nil {
		return nil
	}
	return &partnerView{ID: p.ID, Key: p.Key, Email: p.Email, Name: p.Name, CreatedAt: p.CreatedAt}
}

func viewPartnerTotals(t *store.PartnerTotals) *partnerTotalsView {
	v := &partnerTotalsView{Clicks: t.Clicks, Customers: t.Customers, Transactions: t.Transactions, Rewards: []moneyView{}}
	for _, m := range t.Rewards {
		v.Rewards = append(v.Rewards, moneyView{amountJSON(m), m.Currency})
	}
	return v
}

type customerView struct {
	Key     string       `json:"key"`
	Name    string       `json:"name"`
	Email   string       `json:"email"`
	Partner *partnerView `json:"partner"`
	// AttributedBy is how the partner was decided (partner, cookie, code,
	// metadata); DiscountCode the code when by a code. null when none.
	AttributedBy *string `json:"attributed_by"`
	DiscountCode *string `json:"discount_code"`
	// Flags are the customer's fraud flags (self_referral, paid_ad; [] for
	// none); FlagsApprovedAt when the merchant approved them (null until
	// then: its rewards are held).
	Flags           []string   `json:"flags"`
	FlagsApprovedAt *time.Time `json:"flags_approved_at"`
	CreatedAt       time.Time  `json:"created_at"`
}

// orNull is s, or JSON null when s is empty.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func viewCustomer(c *store.Customer) *customerView {
	if c == nil {
		return nil
	}
	v := &customerView{Key: c.Key, Name: c.Name, Email: c.Email, Partner: viewPartner(c.Partner),
		AttributedBy: orNull(c.AttributedBy), DiscountCode: orNull(c.DiscountCode), CreatedAt: c.CreatedAt,
		Flags: splitFlags(c.Flags)}
	if !c.FlagsApprovedAt.IsZero() {
		t := c.FlagsApprovedAt
		v.FlagsApprovedAt = &t
	}
	return v
}

// customerRef is the customer inside a transaction; its rewards name the
// partner.
type customerRef struct {
	Key   string   `json:"key"`
	Name  string   `json:"name"`
	Email string   `json:"email"`
	Flags []string `json:"flags"`
}

type transactionView struct {
	Key            string      `json:"key"`
	Amount         json.Number `json:"amount"`
	AmountUnits    string      `json:"amount_units"`
	Action         string      `json:"action"`
	ProductID      string      `json:"product_id"`
	ProductType    string      `json:"product_type"`
	Source         string      `json:"source"`
	Verified       bool        `json:"verified"`
	Rewardable     bool        `json:"rewardable"`
	Status         string      `json:"status"`
	RefundedAmount json.Number `json:"refunded_amount"`
	// DiscountCode is the code the sale named (null: none), known to the
	// program or not; AttributedBy how its customer's partner was decided
	// (partner, cookie, code, metadata; null without partner, or for a
	// sale recorded before potrack kept it).
	DiscountCode *string      `json:"discount_code"`
	AttributedBy *string      `json:"attributed_by"`
	Customer     *customerRef `json:"customer"`
	Rewards      []rewardView `json:"rewards"`
	CreatedAt    time.Time    `json:"created_at"`
}

type rewardView struct {
	Amount         json.Number `json:"amount"`
	AmountUnits    string      `json:"amount_units"`
	ReversedAmount json.Number `json:"reversed_amount"`
	Status         string      `json:"status"`
	// State is the reward's ledger state (pending, approved, in_payout,
	// paid, reversed); Held says a fraud flag keeps it pending until the
	// merchant approves it; DueAt is when its hold ends.
	State   string       `json:"state"`
	Held    bool         `json:"held"`
	DueAt   time.Time    `json:"due_at"`
	Partner *partnerView `json:"partner"`
}

func viewTransaction(t *store.Transaction) *transactionView {
	v := &transactionView{
		Key: t.Key, Amount: amountJSON(t.Amount), AmountUnits: t.Amount.Currency, Action: t.Action,
		ProductID: t.ProductID, ProductType: t.ProductType, Source: t.Source, Verified: t.Verified,
		Rewardable: t.Rewardable, Status: t.Status,
		DiscountCode: orNull(t.DiscountCode), AttributedBy: orNull(t.AttributedBy),
		RefundedAmount: amountJSON(rules.Money{Minor: t.RefundedMinor, Currency: t.Amount.Currency}),
		Rewards:        []rewardView{}, CreatedAt: t.CreatedAt,
	}
	if t.Customer != nil {
		v.Customer = &customerRef{Key: t.Customer.Key, Name: t.Customer.Name, Email: t.Customer.Email, Flags: splitFlags(t.Customer.Flags)}
	}
	for _, r := range t.Rewards {
		v.Rewards = append(v.Rewards, rewardView{
			Amount: amountJSON(r.Amount), AmountUnits: r.Amount.Currency,
			ReversedAmount: amountJSON(rules.Money{Minor: r.ReversedMinor, Currency: r.Amount.Currency}),
			Status:         r.Status, State: r.State, Held: r.Held, DueAt: r.DueAt, Partner: viewPartner(r.Partner),
		})
	}
	return v
}
