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
	Key       string       `json:"key"`
	Name      string       `json:"name"`
	Email     string       `json:"email"`
	Partner   *partnerView `json:"partner"`
	CreatedAt time.Time    `json:"created_at"`
}

func viewCustomer(c *store.Customer) *customerView {
	if c == nil {
		return nil
	}
	return &customerView{Key: c.Key, Name: c.Name, Email: c.Email, Partner: viewPartner(c.Partner), CreatedAt: c.CreatedAt}
}

// customerRef is the customer inside a transaction; its rewards name the
// partner.
type customerRef struct {
	Key   string `json:"key"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type transactionView struct {
	Key            string       `json:"key"`
	Amount         json.Number  `json:"amount"`
	AmountUnits    string       `json:"amount_units"`
	Action         string       `json:"action"`
	ProductID      string       `json:"product_id"`
	ProductType    string       `json:"product_type"`
	Source         string       `json:"source"`
	Verified       bool         `json:"verified"`
	Rewardable     bool         `json:"rewardable"`
	Status         string       `json:"status"`
	RefundedAmount json.Number  `json:"refunded_amount"`
	Customer       *customerRef `json:"customer"`
	Rewards        []rewardView `json:"rewards"`
	CreatedAt      time.Time    `json:"created_at"`
}

type rewardView struct {
	Amount         json.Number  `json:"amount"`
	AmountUnits    string       `json:"amount_units"`
	ReversedAmount json.Number  `json:"reversed_amount"`
	Status         string       `json:"status"`
	Partner        *partnerView `json:"partner"`
}

func viewTransaction(t *store.Transaction) *transactionView {
	v := &transactionView{
		Key: t.Key, Amount: amountJSON(t.Amount), AmountUnits: t.Amount.Currency, Action: t.Action,
		ProductID: t.ProductID, ProductType: t.ProductType, Source: t.Source, Verified: t.Verified,
		Rewardable: t.Rewardable, Status: t.Status,
		RefundedAmount: amountJSON(rules.Money{Minor: t.RefundedMinor, Currency: t.Amount.Currency}),
		Rewards:        []rewardView{}, CreatedAt: t.CreatedAt,
	}
	if t.Customer != nil {
		v.Customer = &customerRef{Key: t.Customer.Key, Name: t.Customer.Name, Email: t.Customer.Email}
	}
	for _, r := range t.Rewards {
		v.Rewards = append(v.Rewards, rewardView{
			Amount: amountJSON(r.Amount), AmountUnits: r.Amount.Currency,
			ReversedAmount: amountJSON(rules.Money{Minor: r.ReversedMinor, Currency: r.Amount.Currency}),
			Status:         r.Status, Partner: viewPartner(r.Partner),
		})
	}
	return v
}
