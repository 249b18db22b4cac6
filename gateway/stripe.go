package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/potrack/potrack/rules"
)

// Stripe events, as every API version renders them. Stripe renders an
// event in the endpoint's API version, which is rarely the one the Go
// library was built for, so only fields that read the same across
// versions are decoded, and fields that moved are read in both places.
//
// Which event means what (docs/stripe.md):
//   - invoice.paid: a sale of the invoice (amount_paid).
//   - charge.succeeded, charge.captured: a sale of a one-off charge;
//     charges that name an invoice, and uncaptured ones, are skipped.
//   - charge.refunded: a refund; amount_refunded is the running total.
//   - invoice_payment.paid: links a charge or PaymentIntent to the
//     invoice it paid (API versions from 2025-03-31.basil on, where a
//     charge no longer names its invoice).
//   - customer.created, customer.updated: metadata.partnero_partner
//     attributes the customer.
//   - checkout.session.completed, checkout.session.async_payment_succeeded:
//     client_reference_id or metadata.partnero_partner attributes the
//     session's customer; a paid guest session (no customer) is a sale of
//     its own, keyed by its PaymentIntent.

// ParseStripe reads a verified Stripe event: its id, type, created time
// (Unix seconds, 0 when absent) and data.object.
func ParseStripe(id, typ string, created int64, object json.RawMessage) (Event, error) {
	ev := Event{ID: id, Type: typ, Gateway: "Stripe"}
	if created > 0 {
		ev.At = time.Unix(created, 0).UTC()
	}
	if len(bytes.TrimSpace(object)) == 0 {
		return ev, badEvent("The event has no data.object.")
	}
	var err error
	switch typ {
	case "invoice.paid":
		err = stripeInvoicePaid(&ev, object)
	case "charge.succeeded", "charge.captured":
		err = stripeChargeSucceeded(&ev, object)
	case "charge.refunded":
		err = stripeChargeRefunded(&ev, object)
	case "invoice_payment.paid":
		err = stripeInvoicePayment(&ev, object)
	case "customer.created", "customer.updated":
		err = stripeCustomerEvent(&ev, object)
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		err = stripeCheckoutSession(&ev, object)
	default:
		ev.Ignored = "potrack does not use " + typ + " events."
	}
	return ev, err
}

const stripeObject = "data.object"

// stripeID is a reference to another Stripe object: its id, or the whole
// object when it was expanded.
type stripeID string

func (s *stripeID) UnmarshalJSON(b []byte) error {
	var r stripeRef
	if err := r.UnmarshalJSON(b); err != nil {
		return err
	}
	*s = stripeID(r.ID)
	return nil
}

// stripeRef is a reference to an object that may be expanded, with the
// object's code when it has one (a promotion code's customer-facing code).
type stripeRef struct{ ID, Code string }

func (r *stripeRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*r = stripeRef{}
		return nil
	case len(b) > 0 && b[0] == '{':
		var obj struct {
			ID   string `json:"id"`
			Code string `json:"code"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		*r = stripeRef{ID: obj.ID, Code: obj.Code}
		return nil
	}
	var id string
	if err := json.Unmarshal(b, &id); err != nil {
		return errors.New("expected an id or an object")
	}
	*r = stripeRef{ID: id}
	return nil
}

// stripeDiscount is one discount as invoices and Checkout Sessions show
// it: only ids in webhooks (promotion_code: promo_…, coupon: the coupon's
// id), whole objects where the event was rendered with them expanded. API
// versions from 2025-09-30.clover moved a discount's coupon to
// source.coupon.
type stripeDiscount struct {
	PromotionCode stripeRef `json:"promotion_code"`
	Coupon        stripeRef `json:"coupon"`
	Source        *struct {
		Coupon stripeRef `json:"coupon"`
	} `json:"source"`
}

// codes are what a buyer typed, as far as the event tells, best first:
// the promotion code's code when the object is expanded, the promotion
// code's id (promo_…: the merchant can register that as the partner's
// code), the coupon's id (which the merchant may choose, such as
// PODCAST20).
func (d *stripeDiscount) codes() []string {
	coupon := d.Coupon.ID
	if coupon == "" && d.Source != nil {
		coupon = d.Source.Coupon.ID
	}
	return []string{d.PromotionCode.Code, d.PromotionCode.ID, coupon}
}

// stripeDiscountList is a list of discounts that may hold ids only (an
// invoice's discounts: di_…, which name no code) or objects.
type stripeDiscountList []stripeDiscount

func (l *stripeDiscountList) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*l = nil
	for _, r := range raw {
		r = bytes.TrimSpace(r)
		if len(r) == 0 || r[0] != '{' {
			continue // an id: nothing to read
		}
		var d stripeDiscount
		if err := json.Unmarshal(r, &d); err != nil {
			return err
		}
		*l = append(*l, d)
	}
	return nil
}

// discountCodes lists the codes the discounts name, best first.
func discountCodes(ds ...*stripeDiscount) []string {
	var all []string
	for _, d := range ds {
		if d != nil {
			all = append(all, d.codes()...)
		}
	}
	return Codes(all...)
}

type stripeInvoice struct {
	ID         string   `json:"id"`
	Customer   stripeID `json:"customer"`
	AmountPaid int64    `json:"amount_paid"`
	Currency   string   `json:"currency"`
	// API versions before 2025-03-31.basil: the invoice's discount, with
	// its coupon expanded and the promotion code's id.
	Discount *stripeDiscount `json:"discount"`
	// The invoice's discounts: ids (di_…) unless expanded.
	Discounts stripeDiscountList `json:"discounts"`
	Lines     struct {
		Data []stripeInvoiceLine `json:"data"`
	} `json:"lines"`
}

type stripeInvoiceLine struct {
	Price *struct {
		Product stripeID `json:"product"`
	} `json:"price"`
	// API versions from 2025-03-31.basil moved the price here.
	Pricing *struct {
		PriceDetails *struct {
			Product stripeID `json:"product"`
		} `json:"price_details"`
	} `json:"pricing"`
}

// product is the first line's product id, "" when there is none.
func (inv *stripeInvoice) product() string {
	if len(inv.Lines.Data) == 0 {
		return ""
	}
	line := inv.Lines.Data[0]
	var id stripeID
	switch {
	case line.Price != nil && line.Price.Product != "":
		id = line.Price.Product
	case line.Pricing != nil && line.Pricing.PriceDetails != nil:
		id = line.Pricing.PriceDetails.Product
	}
	// The product only selects a commission rule; a sale is not refused
	// for an odd one.
	if checkText("product_id", string(id), maxLabelLen, false) != nil {
		return ""
	}
	return string(id)
}

func (inv *stripeInvoice) discountCodes() []string {
	ds := []*stripeDiscount{inv.Discount}
	for i := range inv.Discounts {
		ds = append(ds, &inv.Discounts[i])
	}
	return discountCodes(ds...)
}

func stripeInvoicePaid(ev *Event, object json.RawMessage) error {
	var inv stripeInvoice
	if err := decode(object, stripeObject, &inv); err != nil {
		return err
	}
	if err := checkText("data.object.id", inv.ID, maxKeyLen, true); err != nil {
		return err
	}
	amount, err := StripeMoney("data.object.amount_paid", inv.AmountPaid, inv.Currency)
	if err != nil {
		return err
	}
	if amount.Minor == 0 {
		// Trials and fully discounted invoices: a fixed commission must not
		// pay out for a sale of nothing.
		ev.Ignored = "Nothing was paid on this invoice."
		return nil
	}
	return stripeSale(ev, Sale{Key: inv.ID, CustomerKey: string(inv.Customer), Amount: amount,
		ProductID: inv.product(), DiscountCodes: inv.discountCodes()})
}

// stripeSale adds a sale attributed through its Stripe customer.
func stripeSale(ev *Event, s Sale) error {
	if s.CustomerKey == "" {
		ev.Ignored = "The payment has no Stripe customer, so no partner can be credited."
		return nil
	}
	if err := checkText("data.object.customer", s.CustomerKey, maxKeyLen, true); err != nil {
		return err
	}
	ev.Sales = append(ev.Sales, s)
	return nil
}

// stripeCharge is a charge as every API version renders it.
//
// A charge paid for an invoice is counted by invoice.paid, so charge events
// skip charges that name an invoice. Since API version 2025-03-31.basil a
// charge no longer names its invoice: such a charge looks like a one-off
// payment and is counted, unless invoice_payment.paid linked it to its
// invoice first. docs/stripe.md tells merchants on those versions who bill
// with invoices either not to select charge.succeeded, or to give the
// endpoint an older API version.
type stripeCharge struct {
	ID             string   `json:"id"`
	Customer       stripeID `json:"customer"`
	Invoice        stripeID `json:"invoice"`
	PaymentIntent  stripeID `json:"payment_intent"`
	Amount         int64    `json:"amount"`
	AmountCaptured int64    `json:"amount_captured"`
	AmountRefunded int64    `json:"amount_refunded"`
	Currency       string   `json:"currency"`
	Captured       bool     `json:"captured"`
}

func decodeStripeCharge(object json.RawMessage) (*stripeCharge, error) {
	var ch stripeCharge
	if err := decode(object, stripeObject, &ch); err != nil {
		return nil, err
	}
	if err := checkText("data.object.id", ch.ID, maxKeyLen, true); err != nil {
		return nil, err
	}
	if err := checkText("data.object.invoice", string(ch.Invoice), maxKeyLen, false); err != nil {
		return nil, err
	}
	if err := checkText("data.object.payment_intent", string(ch.PaymentIntent), maxKeyLen, false); err != nil {
		return nil, err
	}
	return &ch, nil
}

func stripeChargeSucceeded(ev *Event, object json.RawMessage) error {
	ch, err := decodeStripeCharge(object)
	if err != nil {
		return err
	}
	if ch.Invoice != "" {
		ev.Ignored = "This charge pays invoice " + string(ch.Invoice) + "; invoice.paid counts it."
		return nil
	}
	if !ch.Captured {
		// An authorisation only; charge.captured reports the money.
		ev.Ignored = "The charge is not captured yet."
		return nil
	}
	paid := ch.Amount
	if ch.AmountCaptured > 0 {
		paid = ch.AmountCaptured // a partial capture takes less than was authorised
	}
	amount, err := StripeMoney("data.object.amount", paid, ch.Currency)
	if err != nil {
		return err
	}
	if amount.Minor == 0 {
		ev.Ignored = "Nothing was paid with this charge."
		return nil
	}
	return stripeSale(ev, Sale{Key: ch.ID, CustomerKey: string(ch.Customer), Amount: amount,
		Payment: string(ch.PaymentIntent)})
}

func stripeChargeRefunded(ev *Event, object json.RawMessage) error {
	ch, err := decodeStripeCharge(object)
	if err != nil {
		return err
	}
	refunded, err := StripeMoney("data.object.amount_refunded", ch.AmountRefunded, ch.Currency)
	if err != nil {
		return err
	}
	if refunded.Minor == 0 {
		ev.Ignored = "Nothing is refunded on this charge."
		return nil
	}
	// amount_refunded is the charge's running total; a total that reaches
	// the sale's amount refunds it in full.
	r := Refund{SaleKey: ch.ID, CustomerKey: string(ch.Customer), Amount: refunded}
	if ch.Invoice != "" {
		// Before API version 2025-03-31.basil the charge names its invoice,
		// whose key the sale has.
		r.SaleKey = string(ch.Invoice)
	} else {
		// Since then an invoice_payment.paid event links the charge or its
		// PaymentIntent to the invoice; a guest Checkout's sale links its
		// PaymentIntent to itself. A refund that comes first is kept under
		// the PaymentIntent, which those name.
		r.Payments = []string{ch.ID, string(ch.PaymentIntent)}
		r.KeepUnder = string(ch.PaymentIntent)
	}
	ev.Refunds = append(ev.Refunds, r)
	return nil
}

// stripeInvoicePaymentObject is an invoice_payment: which charge or
// PaymentIntent paid an invoice.
type stripeInvoicePaymentObject struct {
	Invoice stripeID `json:"invoice"`
	Payment struct {
		Charge        stripeID `json:"charge"`
		PaymentIntent stripeID `json:"payment_intent"`
	} `json:"payment"`
}

func stripeInvoicePayment(ev *Event, object json.RawMessage) error {
	var ip stripeInvoicePaymentObject
	if err := decode(object, stripeObject, &ip); err != nil {
		return err
	}
	invoice := string(ip.Invoice)
	charge, intent := string(ip.Payment.Charge), string(ip.Payment.PaymentIntent)
	if err := errors.Join(
		checkText("data.object.invoice", invoice, maxKeyLen, true),
		checkText("data.object.payment.charge", charge, maxKeyLen, false),
		checkText("data.object.payment.payment_intent", intent, maxKeyLen, false),
	); err != nil {
		return err
	}
	if charge == "" && intent == "" {
		ev.Ignored = "The invoice payment names no charge or PaymentIntent."
		return nil
	}
	var payments []string
	for _, pay := range []string{charge, intent} {
		if pay != "" {
			payments = append(payments, pay)
		}
	}
	ev.Links = append(ev.Links, Link{SaleKey: invoice, Payments: payments})
	return nil
}

type stripeCustomer struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Email    string            `json:"email"`
	Metadata map[string]string `json:"metadata"`
}

func stripeCustomerEvent(ev *Event, object json.RawMessage) error {
	var cu stripeCustomer
	if err := decode(object, stripeObject, &cu); err != nil {
		return err
	}
	if err := checkText("data.object.id", cu.ID, maxKeyLen, true); err != nil {
		return err
	}
	partnerKey := cu.Metadata[PartnerMetadata]
	if partnerKey == "" {
		ev.Ignored = "The customer has no " + PartnerMetadata + " metadata."
		return nil
	}
	// Name and email are only shown to the merchant: attribution matters
	// more than a display value our checks refuse.
	ev.Attributions = append(ev.Attributions, Attribution{CustomerKey: cu.ID, Name: label(cu.Name, maxNameLen),
		Email: email(cu.Email), PartnerKey: partnerKey, Source: "metadata." + PartnerMetadata})
	return nil
}

// stripeSession is a Checkout Session (Checkout, Payment Links, pricing
// tables, buy buttons all make one).
type stripeSession struct {
	ID                string            `json:"id"`
	Mode              string            `json:"mode"`           // payment, subscription, setup
	PaymentStatus     string            `json:"payment_status"` // paid, unpaid, no_payment_required
	ClientReferenceID string            `json:"client_reference_id"`
	Metadata          map[string]string `json:"metadata"`
	Customer          stripeID          `json:"customer"`
	CustomerDetails   *struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	} `json:"customer_details"`
	PaymentIntent stripeID `json:"payment_intent"`
	Invoice       stripeID `json:"invoice"`
	AmountTotal   int64    `json:"amount_total"`
	Currency      string   `json:"currency"`
	// Discounts hold the promotion code's and the coupon's ids; their
	// objects only where the event was rendered with them expanded.
	Discounts    []stripeDiscount `json:"discounts"`
	TotalDetails *struct {
		Breakdown *struct {
			Discounts []struct {
				Discount *stripeDiscount `json:"discount"`
			} `json:"discounts"`
		} `json:"breakdown"`
	} `json:"total_details"`
}

func (s *stripeSession) discountCodes() []string {
	var ds []*stripeDiscount
	for i := range s.Discounts {
		ds = append(ds, &s.Discounts[i])
	}
	if s.TotalDetails != nil && s.TotalDetails.Breakdown != nil {
		for _, d := range s.TotalDetails.Breakdown.Discounts {
			ds = append(ds, d.Discount)
		}
	}
	return discountCodes(ds...)
}

// stripeCheckoutSession reads checkout.session.completed and
// checkout.session.async_payment_succeeded.
//
// The session's partner is metadata.partnero_partner (set by the
// merchant's backend) or else client_reference_id (which potrack's script
// stamps onto Payment Links, pricing tables and buy buttons). With a
// Stripe customer, the session attributes that customer, so the invoices
// and charges that follow are the partner's (those that arrived first
// were kept, and are recorded now). Without one (a guest payment), the
// session is the only report of the sale: it is recorded from the session,
// keyed by its PaymentIntent, once paid (a delayed payment method
// completes the session unpaid and reports async_payment_succeeded later).
func stripeCheckoutSession(ev *Event, object json.RawMessage) error {
	var s stripeSession
	if err := decode(object, stripeObject, &s); err != nil {
		return err
	}
	if err := errors.Join(
		checkText("data.object.id", s.ID, maxKeyLen, true),
		checkText("data.object.customer", string(s.Customer), maxKeyLen, false),
		checkText("data.object.payment_intent", string(s.PaymentIntent), maxKeyLen, false),
	); err != nil {
		return err
	}
	partner, source := s.Metadata[PartnerMetadata], "metadata."+PartnerMetadata
	if partner == "" {
		partner, source = s.ClientReferenceID, "client_reference_id"
	}
	// A client_reference_id may be the merchant's own reference rather
	// than a partner key; one that cannot be a key names nobody.
	partner = label(partner, maxKeyLen)
	codes := s.discountCodes()
	var name, mail string
	if s.CustomerDetails != nil {
		name, mail = label(s.CustomerDetails.Name, maxNameLen), email(s.CustomerDetails.Email)
	}
	if partner == "" && len(codes) == 0 {
		ev.Ignored = "The session names no partner (client_reference_id or metadata." + PartnerMetadata + ") and no discount code."
		return nil
	}
	if s.Customer != "" {
		ev.Attributions = append(ev.Attributions, Attribution{CustomerKey: string(s.Customer), Name: name, Email: mail,
			PartnerKey: partner, DiscountCodes: codes, Source: source})
		return nil
	}
	// A guest: no Stripe customer, so no invoice or charge names one.
	switch {
	case s.Mode != "payment":
		ev.Ignored = "The session has no Stripe customer and is not a one-time payment."
		return nil
	case s.Invoice != "":
		ev.Ignored = "The session's invoice " + string(s.Invoice) + " has no Stripe customer, so no partner can be credited."
		return nil
	case s.PaymentStatus == "no_payment_required":
		ev.Ignored = "Nothing was paid in this session."
		return nil
	case s.PaymentStatus != "paid":
		ev.Ignored = "The payment is not complete yet (payment_status " + s.PaymentStatus +
			"); checkout.session.async_payment_succeeded reports it when it is."
		return nil
	case s.PaymentIntent == "":
		ev.Ignored = "The session names no PaymentIntent."
		return nil
	}
	amount, err := StripeMoney("data.object.amount_total", s.AmountTotal, s.Currency)
	if err != nil {
		return err
	}
	if amount.Minor == 0 {
		ev.Ignored = "Nothing was paid in this session."
		return nil
	}
	// The sale's key is the PaymentIntent, which the payment's charge
	// names: a charge.succeeded or charge.refunded of it finds this sale
	// through the link. The customer is the session itself.
	ev.Sales = append(ev.Sales, Sale{Key: string(s.PaymentIntent), CustomerKey: s.ID, CustomerName: name,
		CustomerEmail: mail, Amount: amount, DiscountCodes: codes, Payment: string(s.PaymentIntent),
		PartnerKey: partner, Guest: true, LinkPayment: true})
	return nil
}

// StripeMoney converts a Stripe amount to potrack's minor units, after the
// checks every other entry point applies. Stripe's minor unit is not
// always the currency's: it counts ISK in hundredths although the krona
// has no subunit, and MGA in whole ariary although ISO gives it two
// decimals.
func StripeMoney(field string, minor int64, currency string) (rules.Money, error) {
	code, err := rules.NormalizeCurrency(currency)
	if err != nil {
		return rules.Money{}, invalid("data.object.currency", "data.object.currency must be an ISO 4217 code such as usd.")
	}
	if minor < 0 || minor > rules.MaxMinor {
		return rules.Money{}, invalid(field, field+" is out of range.")
	}
	for ours, theirs := rules.Digits(code), stripeDigits(code); ours != theirs; {
		if ours < theirs {
			if minor%10 != 0 {
				return rules.Money{}, invalid(field, field+" has more decimals than "+code+" allows.")
			}
			minor, theirs = minor/10, theirs-1
		} else {
			minor, theirs = minor*10, theirs+1
		}
	}
	if minor > rules.MaxMinor {
		return rules.Money{}, invalid(field, field+" is out of range.")
	}
	return rules.Money{Minor: minor, Currency: code}, nil
}

// stripeDigits is how many decimals Stripe's amounts carry in a currency
// (docs.stripe.com/currencies: zero-decimal, three-decimal, else two).
func stripeDigits(code string) int {
	switch code {
	case "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "JOD", "KWD", "OMR", "TND":
		return 3
	}
	return 2
}
