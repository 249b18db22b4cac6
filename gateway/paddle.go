package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/potrack/potrack/rules"
)

// Paddle Billing notifications (docs/paddle.md). Every notification is
// an envelope {event_id, event_type, occurred_at, notification_id, data}
// whose data is the entity as it is now. Amounts are strings of the
// currency's lowest denomination (cents for USD, yen for JPY: ISO 4217's
// minor units, which are potrack's).
//
//   - transaction.completed: a sale. Key = the transaction id (txn_…),
//     customer = customer_id (ctm_…), amount = details.totals.grand_total:
//     the total after discounts, tax and credits, which is what the buyer
//     paid, as Stripe's amount_paid is. custom_data.partnero_partner
//     (Paddle Checkout's customData) names the partner of a new customer.
//   - adjustment.created, adjustment.updated: an approved refund
//     (action refund, status approved) refunds its transaction by the
//     adjustment's total; each adjustment once. Pending and rejected
//     refunds, credits and chargebacks change nothing.
//   - customer.created, customer.updated: custom_data.partnero_partner
//     attributes the customer.

// ParsePaddle reads a verified Paddle notification body.
func ParsePaddle(body []byte) (Event, error) {
	var env struct {
		EventID    string          `json:"event_id"`
		EventType  string          `json:"event_type"`
		OccurredAt string          `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
	}
	ev := Event{Gateway: "Paddle"}
	if err := json.Unmarshal(body, &env); err != nil {
		return ev, badEvent("The signed payload is not a Paddle notification of the expected shape.")
	}
	ev.ID, ev.Type = env.EventID, env.EventType
	if env.EventType == "" {
		return ev, badEvent("The notification has no event_type.")
	}
	if at, err := time.Parse(time.RFC3339Nano, env.OccurredAt); err == nil {
		ev.At = at.UTC()
	}
	data := bytes.TrimSpace(env.Data)
	if len(data) == 0 || data[0] != '{' {
		return ev, badEvent("The notification has no data object.")
	}
	var err error
	switch env.EventType {
	case "transaction.completed":
		err = paddleTransactionCompleted(&ev, data)
	case "adjustment.created", "adjustment.updated":
		err = paddleAdjustment(&ev, data)
	case "customer.created", "customer.updated":
		err = paddleCustomer(&ev, data)
	default:
		ev.Ignored = "potrack does not use " + env.EventType + " events."
	}
	return ev, err
}

// paddleCustomData is custom_data: any JSON object the merchant set, of
// which only partnero_partner, a string, is read. Anything else in it, or
// a custom_data that is not an object, is the merchant's and is no error.
type paddleCustomData struct{ Partner string }

func (c *paddleCustomData) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		*c = paddleCustomData{}
		return nil
	}
	var s string
	if json.Unmarshal(m[PartnerMetadata], &s) == nil {
		c.Partner = label(s, maxKeyLen)
	}
	return nil
}

type paddleTransaction struct {
	ID           string           `json:"id"`
	Status       string           `json:"status"`
	CustomerID   string           `json:"customer_id"`
	CurrencyCode string           `json:"currency_code"`
	CustomData   paddleCustomData `json:"custom_data"`
	DiscountID   string           `json:"discount_id"`
	// Discount is only there where the transaction was rendered with its
	// discount included (the API's include=discount); webhooks carry
	// discount_id alone.
	Discount *struct {
		ID   string `json:"id"`
		Code string `json:"code"`
	} `json:"discount"`
	Items []struct {
		Price *struct {
			ProductID string `json:"product_id"`
		} `json:"price"`
	} `json:"items"`
	Details struct {
		Totals struct {
			Total        string `json:"total"`
			GrandTotal   string `json:"grand_total"`
			CurrencyCode string `json:"currency_code"`
		} `json:"totals"`
	} `json:"details"`
}

func paddleTransactionCompleted(ev *Event, data []byte) error {
	var t paddleTransaction
	if err := decode(data, "data", &t); err != nil {
		return err
	}
	if err := errors.Join(
		checkText("data.id", t.ID, maxKeyLen, true),
		checkText("data.customer_id", t.CustomerID, maxKeyLen, false),
	); err != nil {
		return err
	}
	currency := t.CurrencyCode
	if currency == "" {
		currency = t.Details.Totals.CurrencyCode
	}
	// grand_total is what the buyer paid; total is the same before credits
	// from the customer's balance. Older renderings without grand_total
	// are read from total.
	field, paid := "data.details.totals.grand_total", t.Details.Totals.GrandTotal
	if paid == "" {
		field, paid = "data.details.totals.total", t.Details.Totals.Total
	}
	amount, err := PaddleMoney(field, paid, currency)
	if err != nil {
		return err
	}
	if amount.Minor <= 0 {
		// Nothing paid: a free trial, a 100 % discount, or credit.
		ev.Ignored = "Nothing was paid in this transaction."
		return nil
	}
	if t.CustomerID == "" {
		ev.Ignored = "The transaction has no Paddle customer, so no partner can be credited."
		return nil
	}
	var codes []string
	if t.Discount != nil {
		codes = append(codes, t.Discount.Code, t.Discount.ID)
	}
	codes = append(codes, t.DiscountID)
	var product string
	if len(t.Items) > 0 && t.Items[0].Price != nil {
		product = label(t.Items[0].Price.ProductID, maxLabelLen)
	}
	ev.Sales = append(ev.Sales, Sale{Key: t.ID, CustomerKey: t.CustomerID, Amount: amount, ProductID: product,
		DiscountCodes: Codes(codes...), PartnerKey: t.CustomData.Partner})
	return nil
}

type paddleAdjustmentObject struct {
	ID            string  `json:"id"`
	Action        string  `json:"action"`
	Type          *string `json:"type"`
	Status        string  `json:"status"`
	TransactionID string  `json:"transaction_id"`
	CustomerID    string  `json:"customer_id"`
	CurrencyCode  string  `json:"currency_code"`
	Totals        struct {
		Total        string `json:"total"`
		CurrencyCode string `json:"currency_code"`
	} `json:"totals"`
}

func paddleAdjustment(ev *Event, data []byte) error {
	var a paddleAdjustmentObject
	if err := decode(data, "data", &a); err != nil {
		return err
	}
	if err := errors.Join(
		checkText("data.id", a.ID, maxKeyLen, true),
		checkText("data.transaction_id", a.TransactionID, maxKeyLen, true),
		checkText("data.customer_id", a.CustomerID, maxKeyLen, false),
	); err != nil {
		return err
	}
	switch {
	case a.Action != "refund":
		ev.Ignored = "The adjustment is a " + label(a.Action, maxLabelLen) + ", not a refund; potrack applies refunds only."
		return nil
	case a.Status != "approved":
		ev.Ignored = "The refund is " + label(a.Status, maxLabelLen) + "; potrack applies it once Paddle approves it (adjustment.updated)."
		return nil
	}
	currency := a.CurrencyCode
	if currency == "" {
		currency = a.Totals.CurrencyCode
	}
	amount, err := PaddleMoney("data.totals.total", a.Totals.Total, currency)
	if err != nil {
		return err
	}
	full := a.Type != nil && *a.Type == "full"
	if amount.Minor <= 0 && !full {
		ev.Ignored = "Nothing is refunded by this adjustment."
		return nil
	}
	ev.Refunds = append(ev.Refunds, Refund{SaleKey: a.TransactionID, CustomerKey: a.CustomerID, Amount: amount,
		ID: a.ID, Full: full})
	return nil
}

type paddleCustomerObject struct {
	ID         string           `json:"id"`
	Name       *string          `json:"name"`
	Email      string           `json:"email"`
	CustomData paddleCustomData `json:"custom_data"`
}

func paddleCustomer(ev *Event, data []byte) error {
	var c paddleCustomerObject
	if err := decode(data, "data", &c); err != nil {
		return err
	}
	if err := checkText("data.id", c.ID, maxKeyLen, true); err != nil {
		return err
	}
	if c.CustomData.Partner == "" {
		ev.Ignored = "The customer has no custom_data." + PartnerMetadata + "."
		return nil
	}
	var name string
	if c.Name != nil {
		name = label(*c.Name, maxNameLen)
	}
	ev.Attributions = append(ev.Attributions, Attribution{CustomerKey: c.ID, Name: name, Email: email(c.Email),
		PartnerKey: c.CustomData.Partner, Source: "custom_data." + PartnerMetadata})
	return nil
}

// PaddleMoney reads a Paddle amount: a string of the currency's minor
// units, "-" first for credit. A negative amount reads as what it is; the
// caller decides what nothing paid means.
func PaddleMoney(field, amount, currency string) (rules.Money, error) {
	code, err := rules.NormalizeCurrency(currency)
	if err != nil {
		return rules.Money{}, invalid("data.currency_code", "data.currency_code must be an ISO 4217 code such as USD.")
	}
	digits, negative := strings.CutPrefix(amount, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return rules.Money{}, invalid(field, field+" must be a whole number of minor units, as a string.")
	}
	minor, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || minor > rules.MaxMinor {
		return rules.Money{}, invalid(field, field+" is out of range.")
	}
	if negative {
		minor = -minor
	}
	return rules.Money{Minor: minor, Currency: code}, nil
}
