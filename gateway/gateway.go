// Package gateway reads payment gateways' webhook events into one shape:
// what an event means for potrack, as sales, refunds, attributions of a
// customer to a partner, and links between a payment's ids. It is pure:
// no HTTP, no SQL. The server verifies an event's signature, hands the
// body to the gateway's parser (ParseStripe, ParsePaddle) and applies
// the Event through tracking in one place (server/gateway_apply.go), so
// another gateway is a parser and a route.
//
// Parsers check what they read with the rules every entry point applies
// (keys up to 255 characters, labels up to 128, no control characters)
// and return *rules.FieldError for a value that is wrong (422) and
// *BadEvent for a payload that is not the gateway's event of the expected
// shape (400). An event that is well formed but means nothing to potrack
// is an Event with only Ignored set.
package gateway

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/potrack/potrack/rules"
)

// PartnerMetadata is the key, in a gateway's customer or checkout
// metadata (Stripe metadata, Paddle custom_data), that names the
// referring partner: the name Partnero's Stripe integration uses.
const PartnerMetadata = "partnero_partner"

// Event is what one gateway event means. Most events carry one item; a
// Paddle transaction may carry a sale and name its partner in the same
// event. An event with no item carries Ignored, the reason it changes
// nothing.
type Event struct {
	ID   string    // the gateway's event id, for logs
	Type string    // the gateway's event type
	At   time.Time // when the gateway says it happened; zero when it does not say
	// Gateway names the gateway in answers ("Stripe", "Paddle").
	Gateway      string
	Attributions []Attribution
	Links        []Link
	Sales        []Sale
	Refunds      []Refund
	Ignored      string
}

// Sale is a payment to record as a transaction (source gateway, verified).
type Sale struct {
	// Key is the transaction key: the gateway's id of what was paid (a
	// Stripe invoice, charge or PaymentIntent, a Paddle transaction).
	Key         string
	CustomerKey string // the gateway's customer id, or the guest checkout's id
	// CustomerName and CustomerEmail fill a customer this sale creates.
	CustomerName, CustomerEmail string
	Amount                      rules.Money // what was paid, net of discounts, in potrack's minor units
	ProductID                   string      // "" when the event does not say
	// DiscountCodes are the codes the payment used as the gateway names
	// them (a promotion code, its id, a coupon's id), best first: the
	// first that is one of the program's codes is the sale's discount
	// code, and attributes a customer the sale creates (SPEC.md "Coupon
	// codes"); when none is, the first is stored as the sale's.
	DiscountCodes []string
	// Payment is the gateway's other id for the same payment (a Stripe
	// PaymentIntent): a refund or a link may be kept under it, and a link
	// from Key or Payment to another sale means that sale counts it.
	Payment string
	// PartnerKey names the partner the checkout carried (metadata): a
	// customer the sale creates is attributed to it, after a discount code
	// of the program (rules.ChooseAttribution), attributed_by "metadata".
	PartnerKey string
	// Guest: the customer exists only through this sale (a Stripe
	// Checkout without a customer). When no partner is found for it, the
	// sale is not kept for later: nothing else will ever attribute it.
	Guest bool
	// LinkPayment records Payment as paid by this sale, so that a charge
	// of the same payment reported later is not counted again and its
	// refund finds this sale.
	LinkPayment bool
}

// Refund is money given back on a sale.
type Refund struct {
	// SaleKey is the key the sale is stored under, unless a link from one
	// of Payments names another (Stripe: a charge of an invoice, since
	// API version 2025-03-31.basil, or of a guest Checkout).
	SaleKey  string
	Payments []string
	// KeepUnder is where a refund that arrives before its sale is kept
	// when no link names the sale ("": SaleKey): the id a later sale or
	// link will name (a Stripe PaymentIntent).
	KeepUnder   string
	CustomerKey string // "" when the payment has no customer: then it is never kept
	// Amount is in the sale's currency. Without ID it is the payment's
	// running total refunded so far (Stripe's amount_refunded); with ID it
	// is one refund among others (a Paddle adjustment), added to what is
	// refunded already, once per ID.
	Amount rules.Money
	ID     string
	// Full refunds the whole sale, whatever Amount says.
	Full bool
}

// Attribution names the partner of a customer: the customer is created
// attributed to the partner, or to the partner of DiscountCode when it is
// one of the program's codes; an existing customer keeps its partner.
type Attribution struct {
	CustomerKey, Name, Email string
	PartnerKey               string   // from metadata: attributed_by "metadata"
	DiscountCodes            []string // as Sale.DiscountCodes
	// Source names where PartnerKey came from, for answers
	// ("metadata.partnero_partner", "client_reference_id").
	Source string
}

// Link records that payments (a Stripe charge and PaymentIntent) paid the
// sale stored under SaleKey (a Stripe invoice).
type Link struct {
	SaleKey  string
	Payments []string
}

// BadEvent is a payload that is not the gateway's event of the expected
// shape: 400, since no retry of it can succeed.
type BadEvent struct{ Message string }

func (e *BadEvent) Error() string { return e.Message }

func badEvent(msg string) error { return &BadEvent{Message: msg} }

// Field limits, the same as every other entry point's (server/input.go).
const (
	maxKeyLen   = 255
	maxNameLen  = 255
	maxEmailLen = 254
	maxLabelLen = 128 // product_id
	maxCodeLen  = 64  // discount codes, as the coupons API takes them
)

func invalid(field, msg string) error { return &rules.FieldError{Field: field, Message: msg} }

// checkText is the server's check of a text field: valid UTF-8, within max
// characters, no control characters, present when required.
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

// label is v when it passes as a label of up to max characters, else "":
// for values that only inform (a product, a discount code, a name), for
// which a sale or an attribution is not refused.
func label(v string, max int) string {
	v = strings.TrimSpace(v)
	if checkText("", v, max, false) != nil {
		return ""
	}
	return v
}

// Codes cleans a list of discount codes: each trimmed, those that cannot
// be a code (empty, too long, control characters) dropped, and repeats
// (in any case) dropped.
func Codes(list ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range list {
		c = label(c, maxCodeLen)
		if c == "" || seen[strings.ToLower(c)] {
			continue
		}
		seen[strings.ToLower(c)] = true
		out = append(out, c)
	}
	return out
}

// email is v when it looks like an email address, else "".
func email(v string) string {
	v = label(v, maxEmailLen)
	if !strings.Contains(v, "@") || strings.ContainsAny(v, " <>") {
		return ""
	}
	return v
}

// decode reads a JSON object into v; where names the part of the payload
// in messages ("data.object", "data").
func decode(raw []byte, where string, v any) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badEvent("The event's " + where + "." + te.Field + " must be " + JSONKind(te.Type) + ".")
	}
	return badEvent("The event's " + where + " does not have the expected shape.")
}

// JSONKind names what a Go type is in JSON, for messages (the server's
// decoding errors use it too).
func JSONKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return JSONKind(t.Elem())
	}
	return "an object"
}
