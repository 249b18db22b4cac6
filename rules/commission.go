package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bojanz/currency"
)

// Commission and limit types, as they appear in JSON.
const (
	TypePercent = "percent"
	TypeFixed   = "fixed"

	LimitLifetime     = "lifetime"
	LimitTransactions = "transactions"
	LimitDays         = "days"
)

const (
	maxRules        = 100
	maxProductLen   = 128
	maxLimitValue   = 100_000
	percentDecimals = 4
)

// Limit bounds how long a customer earns rewards; nil means lifetime.
type Limit struct {
	Type  string `json:"type"`
	Value int    `json:"value,omitempty"`
}

// Decimal is the exact text of a decimal number. It accepts a JSON number or a JSON
// string so that admin forms and API clients can send either, keeps the text as sent
// so it never goes through float64, and is marshalled back as a JSON string.
type Decimal string

func (d *Decimal) UnmarshalJSON(b []byte) error {
	// json.Number takes a number literal or a string holding one, and keeps the text.
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("value must be a number or a string holding a number")
	}
	*d = Decimal(n)
	return nil
}

// Rule overrides the default commission for one product_id or one product_type.
type Rule struct {
	ProductID   string  `json:"product_id,omitempty"`
	ProductType string  `json:"product_type,omitempty"`
	Type        string  `json:"type"`
	Value       Decimal `json:"value"`
	Limit       *Limit  `json:"limit,omitempty"`
}

// Commission is a program's reward configuration: a default and per-product rules.
type Commission struct {
	Type  string  `json:"type"`
	Value Decimal `json:"value"`
	Limit *Limit  `json:"limit,omitempty"`
	Rules []Rule  `json:"rules"`
}

// MarshalJSON writes Rules as [] rather than null, so clients can always iterate it.
func (c Commission) MarshalJSON() ([]byte, error) {
	type plain Commission
	if c.Rules == nil {
		c.Rules = []Rule{}
	}
	return json.Marshal(plain(c))
}

// DefaultCommission is what a program gets when created without one: 20%, lifetime.
func DefaultCommission() Commission {
	return Commission{Type: TypePercent, Value: "20", Rules: []Rule{}}
}

// Validate checks c for a program in programCurrency and normalises it (nil Rules
// become empty). Errors are *FieldError with the JSON path of the bad field.
func (c *Commission) Validate(programCurrency string) error {
	if c.Rules == nil {
		c.Rules = []Rule{}
	}
	if err := validateReward("commission", c.Type, c.Value, c.Limit, programCurrency); err != nil {
		return err
	}
	if len(c.Rules) > maxRules {
		return &FieldError{"commission.rules", fmt.Sprintf("at most %d rules are allowed", maxRules)}
	}
	ids, types := map[string]bool{}, map[string]bool{}
	for i, r := range c.Rules {
		path := fmt.Sprintf("commission.rules[%d]", i)
		if err := validateProduct(path, r, ids, types); err != nil {
			return err
		}
		if err := validateReward(path, r.Type, r.Value, r.Limit, programCurrency); err != nil {
			return err
		}
	}
	return nil
}

func validateProduct(path string, r Rule, ids, types map[string]bool) error {
	name, key, seen := "product_id", r.ProductID, ids
	if r.ProductID == "" {
		name, key, seen = "product_type", r.ProductType, types
	}
	switch {
	case (r.ProductID == "") == (r.ProductType == ""):
		return &FieldError{path, "a rule needs exactly one of product_id or product_type"}
	case len(key) > maxProductLen:
		return &FieldError{path + "." + name, fmt.Sprintf("%s must be at most %d characters", name, maxProductLen)}
	case seen[key]:
		return &FieldError{path + "." + name, fmt.Sprintf("another rule already has %s %q", name, key)}
	}
	seen[key] = true
	return nil
}

func validateReward(path, typ string, value Decimal, limit *Limit, programCurrency string) error {
	switch typ {
	case TypePercent:
		if err := checkPercent(value); err != nil {
			return &FieldError{path + ".value", err.Error()}
		}
	case TypeFixed:
		if _, err := ParseAmount(string(value), programCurrency); err != nil {
			msg := err.Error()
			var fe *FieldError
			if errors.As(err, &fe) {
				msg = strings.Replace(fe.Message, "amount", "value", 1)
			}
			return &FieldError{path + ".value", msg}
		}
	default:
		return &FieldError{path + ".type", `type must be "percent" or "fixed"`}
	}
	return validateLimit(path+".limit", limit)
}

// checkPercent checks that v is a percentage in [0, 100] with at most 4 decimals.
func checkPercent(v Decimal) error {
	bad := errors.New("value must be a percentage between 0 and 100 with at most 4 decimals")
	intPart, frac, _ := strings.Cut(string(v), ".")
	if !isPlainDecimal(string(v)) || len(frac) > percentDecimals || len(intPart) > 3 {
		return bad
	}
	whole, _ := strconv.Atoi(intPart)
	if whole > 100 || whole == 100 && strings.Trim(frac, "0") != "" {
		return bad
	}
	return nil
}

func validateLimit(path string, l *Limit) error {
	if l == nil {
		return nil
	}
	switch l.Type {
	case LimitLifetime:
		if l.Value != 0 {
			return &FieldError{path + ".value", "limit value must be absent for a lifetime limit"}
		}
	case LimitTransactions, LimitDays:
		if l.Value < 1 || l.Value > maxLimitValue {
			return &FieldError{path + ".value", fmt.Sprintf("limit value must be between 1 and %d", maxLimitValue)}
		}
	default:
		return &FieldError{path + ".type", `limit type must be "lifetime", "transactions" or "days"`}
	}
	return nil
}

// Sale is what the commission needs to know about one transaction.
type Sale struct {
	Amount            Money     // the transaction amount, in its own currency
	ProductID         string    // may be empty
	ProductType       string    // may be empty
	At                time.Time // when the transaction happened
	CustomerCreatedAt time.Time // when its customer was created
	PriorTransactions int       // earlier transactions of this customer, any status
}

// Reward computes the partner's reward for s. ok is false when the matching rule's limit
// is exhausted. Percent rewards are in the sale's currency, fixed ones in the program's.
func (c Commission) Reward(s Sale, programCurrency string) (reward Money, ok bool, err error) {
	typ, value, limit := c.match(s)
	if !limit.allows(s) {
		return Money{}, false, nil
	}
	switch typ {
	case TypeFixed:
		m, err := ParseAmount(string(value), programCurrency)
		if err != nil {
			return Money{}, false, err
		}
		return m, true, nil
	case TypePercent:
		m, err := percentOf(s.Amount, value)
		if err != nil {
			return Money{}, false, err
		}
		return m, true, nil
	}
	return Money{}, false, fmt.Errorf("rules: unknown commission type %q", typ)
}

// NeedsPriorTransactions reports whether the rule that s matches counts the
// customer's earlier transactions (a "first N transactions" limit), so a
// caller counts them only when the answer depends on it.
func (c Commission) NeedsPriorTransactions(s Sale) bool {
	_, _, l := c.match(s)
	return l != nil && l.Type == LimitTransactions
}

// match picks the rule for s: product_id first, then product_type, else the default.
func (c Commission) match(s Sale) (string, Decimal, *Limit) {
	for _, r := range c.Rules {
		if r.ProductID != "" && r.ProductID == s.ProductID {
			return r.Type, r.Value, r.Limit
		}
	}
	for _, r := range c.Rules {
		if r.ProductType != "" && r.ProductType == s.ProductType {
			return r.Type, r.Value, r.Limit
		}
	}
	return c.Type, c.Value, c.Limit
}

func (l *Limit) allows(s Sale) bool {
	if l == nil {
		return true
	}
	switch l.Type {
	case LimitTransactions:
		return s.PriorTransactions < l.Value
	case LimitDays:
		return s.At.Before(s.CustomerCreatedAt.Add(time.Duration(l.Value) * 24 * time.Hour))
	}
	return true
}

// percentOf returns amount * percent / 100, rounded half-to-even to the minor unit.
func percentOf(amount Money, percent Decimal) (Money, error) {
	if err := checkPercent(percent); err != nil {
		return Money{}, fmt.Errorf("rules: percent value %q: %w", percent, err)
	}
	a, err := currency.NewAmountFromInt64(amount.Minor, amount.Currency)
	if err != nil {
		return Money{}, err
	}
	if a, err = a.Mul(string(percent)); err != nil {
		return Money{}, err
	}
	if a, err = a.Div("100"); err != nil {
		return Money{}, err
	}
	minor, err := a.RoundTo(currency.DefaultDigits, currency.RoundHalfEven).Int64()
	if err != nil {
		return Money{}, err
	}
	return Money{minor, amount.Currency}, nil
}
