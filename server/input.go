package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// Field limits shared by every entry point.
const (
	maxKeyLen   = 255
	maxNameLen  = 255
	maxEmailLen = 254
	maxLabelLen = 128 // action, product_id, product_type
)

// flexString is a JSON string or number (merchants send ids either way),
// kept as its exact text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*f = flexString(b)
	default:
		return errors.New("expected a string or a number")
	}
	return nil
}

// amountIn is an amount as sent: a JSON number or a JSON string, kept as its
// exact text (never a float). A value of any other kind (true, {}, [...])
// is remembered rather than refused while decoding, so that it is answered
// like "abc": 422 on the amount's own field (data.amount,
// transactions[3].amount), not a decoding error in the JSON library's
// words.
type amountIn struct {
	text string
	kind amountKind
}

type amountKind int

const (
	amountAbsent amountKind = iota // missing or null
	amountText                     // a number literal or a string
	amountOther                    // a boolean, object or array
)

func (a *amountIn) UnmarshalJSON(b []byte) error {
	var f flexString
	switch err := f.UnmarshalJSON(b); {
	case err != nil:
		*a = amountIn{kind: amountOther}
	case bytes.Equal(bytes.TrimSpace(b), []byte("null")):
		*a = amountIn{}
	default:
		// A number literal (its grammar checked by the decoder) or a string.
		*a = amountIn{text: string(f), kind: amountText}
	}
	return nil
}

// money parses the amount in currency. Its messages never repeat the input.
func (a amountIn) money(currency string) (rules.Money, error) {
	switch {
	case a.kind == amountAbsent:
		return rules.Money{}, invalid("amount", "amount is required.")
	case a.kind == amountOther:
		return rules.Money{}, invalid("amount", "amount must be a number such as 25.00, or a string holding one such as \"25.00\".")
	case a.text == "":
		return rules.Money{}, invalid("amount", "amount is empty; send a decimal number such as 25.00.")
	}
	return rules.ParseAmount(a.text, currency)
}

// checkText validates a free-text or key field: valid UTF-8, no control
// characters, at most max characters, and present when required.
func checkText(field, v string, max int, required bool) error {
	if v == "" {
		if required {
			return invalid(field, field+" is required.")
		}
		return nil
	}
	if !utf8.ValidString(v) {
		return invalid(field, field+" is not valid UTF-8.")
	}
	if utf8.RuneCountInString(v) > max {
		return invalid(field, field+" is longer than the limit.")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return invalid(field, field+" contains control characters.")
		}
	}
	return nil
}

func checkEmail(field, v string) error {
	if err := checkText(field, v, maxEmailLen, false); err != nil {
		return err
	}
	if v != "" && (!strings.Contains(v, "@") || strings.ContainsAny(v, " <>")) {
		return invalid(field, field+" is not an email address.")
	}
	return nil
}

// partnerRefJSON names a partner as SPEC.md allows: {key | id | email}.
type partnerRefJSON struct {
	Key   flexString `json:"key"`
	ID    flexString `json:"id"`
	Email string     `json:"email"`
}

func (r *partnerRefJSON) ref(field string) (store.PartnerRef, error) {
	if r == nil {
		return store.PartnerRef{}, nil
	}
	ref := store.PartnerRef{Key: string(r.Key), Email: r.Email}
	if err := checkText(field+".key", ref.Key, maxKeyLen, false); err != nil {
		return ref, err
	}
	if err := checkEmail(field+".email", ref.Email); err != nil {
		return ref, err
	}
	if r.ID != "" {
		var n json.Number = json.Number(r.ID)
		id, err := n.Int64()
		if err != nil || id <= 0 {
			return ref, invalid(field+".id", field+".id must be a partner id (a positive integer).")
		}
		ref.ID = id
	}
	return ref, nil
}

type customerJSONIn struct {
	Key     flexString      `json:"key"`
	Name    string          `json:"name"`
	Email   string          `json:"email"`
	Partner *partnerRefJSON `json:"partner"`
}

func (c *customerJSONIn) input(field string) (tracking.CustomerInput, error) {
	in := tracking.CustomerInput{Key: string(c.Key), Name: c.Name, Email: c.Email}
	if err := checkText(field+"key", in.Key, maxKeyLen, true); err != nil {
		return in, err
	}
	if err := checkText(field+"name", in.Name, maxNameLen, false); err != nil {
		return in, err
	}
	return in, checkEmail(field+"email", in.Email)
}

// transactionJSONIn is the seed request of SPEC.md, shared by /v1 and the
// data of a browser transactions.create.
type transactionJSONIn struct {
	Key         flexString      `json:"key"`
	Amount      amountIn        `json:"amount"`
	AmountUnits string          `json:"amount_units"`
	Action      string          `json:"action"`
	ProductID   flexString      `json:"product_id"`
	ProductType flexString      `json:"product_type"`
	Rewardable  *bool           `json:"rewardable"`
	CreatedAt   string          `json:"created_at"`
	Customer    *customerJSONIn `json:"customer"`
	// DiscountCode names a coupon code (SPEC.md "Coupon codes"). Before
	// schema 8 it was dropped here unread, as every field this struct
	// does not name is (decodeJSON ignores unknown fields).
	DiscountCode flexString `json:"discount_code"`
	Options      struct {
		CreateCustomer bool `json:"create_customer"`
	} `json:"options"`
	Signature string `json:"signature"`
}

// input validates the request against the program and returns what
// tracking records. Without a key, a random one is assigned.
func (t *transactionJSONIn) input(p *store.Program) (tracking.TransactionInput, error) {
	in := tracking.TransactionInput{
		Key: string(t.Key), Action: t.Action, ProductID: string(t.ProductID),
		ProductType: string(t.ProductType), Rewardable: t.Rewardable == nil || *t.Rewardable,
		CreateCustomer: t.Options.CreateCustomer,
	}
	if in.Key == "" {
		in.Key = "tx_" + randomToken(12)
	}
	if err := checkText("key", in.Key, maxKeyLen, true); err != nil {
		return in, err
	}
	currency := p.Currency
	if t.AmountUnits != "" {
		c, err := rules.NormalizeCurrency(t.AmountUnits)
		if err != nil {
			return in, invalid("amount_units", "amount_units must be an ISO 4217 currency code such as USD.")
		}
		currency = c
	}
	amount, err := t.Amount.money(currency)
	if err != nil {
		return in, err
	}
	in.Amount = amount
	if in.Action == "" {
		in.Action = "sale"
	}
	for _, f := range []struct{ name, v string }{{"action", in.Action}, {"product_id", in.ProductID}, {"product_type", in.ProductType}} {
		if err := checkText(f.name, f.v, maxLabelLen, false); err != nil {
			return in, err
		}
	}
	if t.Customer == nil {
		return in, invalid("customer.key", "customer.key is required: every sale belongs to a customer.")
	}
	if in.Customer, err = t.Customer.input("customer."); err != nil {
		return in, err
	}
	if in.Partner, err = t.Customer.Partner.ref("customer.partner"); err != nil {
		return in, err
	}
	if in.DiscountCode, err = checkDiscountCode("discount_code", string(t.DiscountCode)); err != nil {
		return in, err
	}
	if t.CreatedAt != "" {
		at, err := parseTime(t.CreatedAt)
		if err != nil {
			return in, invalid("created_at", "created_at must be a date such as 2026-11-23T10:00:00Z.")
		}
		in.CreatedAt = at
	}
	return in, nil
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				break
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("bad time")
}
