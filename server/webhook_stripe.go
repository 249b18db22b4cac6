package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// Stripe webhooks: sales and refunds reported by the payment gateway itself,
// so they are stored as verified.
//
// Every event that is correctly signed and well formed is acknowledged with
// a 2xx, even when it changes nothing: Stripe retries any other answer for
// days and then disables the endpoint, which would lose later sales. Only
// failures that a retry can fix (the store being unavailable) are 5xx.

// stripeTolerance is how old a signature may be; older ones may be replays.
const stripeTolerance = 5 * time.Minute

// stripePartnerMetadata is the Stripe customer metadata key that names the
// referring partner, the same name Partnero's Stripe integration uses.
const stripePartnerMetadata = "partnero_partner"

// Statuses of an acknowledged event.
const (
	stripeCreated   = "created"
	stripeDuplicate = "duplicate"
	stripeIgnored   = "ignored"
	stripeRefunded  = "refunded"
	stripePending   = "pending"  // a refund kept until its sale arrives
	stripeConflict  = "conflict" // the key is taken by a transaction with other content
	stripeLinked    = "linked"   // a payment now known to have paid an invoice
)

// stripeAnswer is the body of an acknowledged event. Stripe shows it in the
// endpoint's delivery log, so Reason tells the merchant why an event changed
// nothing.
type stripeAnswer struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) stripeWebhook(c *fiber.Ctx) error {
	p, err := s.store.CachedProgram(c.UserContext(), c.Params("program"))
	if errors.Is(err, store.ErrNotFound) {
		return errProgramNotFound
	}
	if err != nil {
		return err
	}
	if p.WebhookSecret == "" {
		return errStripeBadSignature
	}
	event, err := webhook.ConstructEventWithOptions(c.Request().Body(), c.Get("Stripe-Signature"), p.WebhookSecret,
		webhook.ConstructEventOptions{
			Tolerance: stripeTolerance,
			// Stripe renders events in the endpoint's API version, which is
			// rarely the library's. We decode only the few fields we use,
			// and those read the same across versions (see stripeCharge).
			IgnoreAPIVersionMismatch: true,
		})
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader),
		errors.Is(err, webhook.ErrNoValidSignature), errors.Is(err, webhook.ErrTooOld):
		return errStripeBadSignature
	case err != nil:
		// The signature is checked first, so this payload is genuine but
		// not an event object. The decoder's text names Go types: not shown.
		return errBadRequest.WithMessage("The signed payload is not a Stripe event object of the expected shape.")
	}
	if event.Data == nil || len(event.Data.Raw) == 0 {
		return errBadRequest.WithMessage("The event has no data.object.")
	}

	ev := stripeEvent{ID: event.ID, Object: event.Data.Raw}
	if event.Created > 0 {
		ev.At = time.Unix(event.Created, 0).UTC()
	}
	var ans stripeAnswer
	switch event.Type {
	case "invoice.paid":
		ans, err = s.stripeInvoicePaid(c, p, ev)
	case "charge.succeeded", "charge.captured":
		ans, err = s.stripeChargeSucceeded(c, p, ev)
	case "charge.refunded":
		ans, err = s.stripeChargeRefunded(c, p, ev)
	case "invoice_payment.paid":
		ans, err = s.stripeInvoicePayment(c, p, ev)
	case "customer.created", "customer.updated":
		ans, err = s.stripeCustomer(c, p, ev)
	default:
		ans = stripeAnswer{stripeIgnored, "potrack does not use " + string(event.Type) + " events."}
	}
	if err != nil {
		return err
	}
	return c.JSON(ans)
}

// stripeEvent is what the handlers need of a verified event.
type stripeEvent struct {
	ID     string
	At     time.Time // when Stripe created the event; zero when absent
	Object json.RawMessage
}

// decode reads the event's data.object into v.
func (e stripeEvent) decode(v any) error {
	if err := json.Unmarshal(e.Object, v); err != nil {
		return errBadRequest.WithMessage("The event's data.object does not have the expected shape: " + err.Error() + ".")
	}
	return nil
}

// stripeID is a reference to another Stripe object: its id, or the whole
// object when it was expanded.
type stripeID string

func (s *stripeID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
		return nil
	case len(b) > 0 && b[0] == '{':
		var obj struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		*s = stripeID(obj.ID)
		return nil
	}
	var id string
	if err := json.Unmarshal(b, &id); err != nil {
		return err
	}
	*s = stripeID(id)
	return nil
}

type stripeInvoice struct {
	ID         string   `json:"id"`
	Customer   stripeID `json:"customer"`
	AmountPaid int64    `json:"amount_paid"`
	Currency   string   `json:"currency"`
	Lines      struct {
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

func (s *Server) stripeInvoicePaid(c *fiber.Ctx, p *store.Program, ev stripeEvent) (stripeAnswer, error) {
	var inv stripeInvoice
	if err := ev.decode(&inv); err != nil {
		return stripeAnswer{}, err
	}
	if err := checkText("data.object.id", inv.ID, maxKeyLen, true); err != nil {
		return stripeAnswer{}, err
	}
	amount, err := stripeMoney("data.object.amount_paid", inv.AmountPaid, inv.Currency)
	if err != nil {
		return stripeAnswer{}, err
	}
	if amount.Minor == 0 {
		// Trials and fully discounted invoices: a fixed commission must not
		// pay out for a sale of nothing.
		return stripeAnswer{stripeIgnored, "Nothing was paid on this invoice."}, nil
	}
	return s.recordStripeSale(c, p, ev, inv.ID, string(inv.Customer), amount, inv.product(), "")
}

// stripeCharge is a charge as every API version renders it.
//
// A charge paid for an invoice is counted by invoice.paid, so charge events
// skip charges that name an invoice. Since API version 2025-03-31.basil a
// charge no longer names its invoice: such a charge looks like a one-off
// payment and is counted. The README tells merchants on those versions who
// bill with invoices either not to select charge.succeeded, or to give the
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

func decodeStripeCharge(ev stripeEvent) (*stripeCharge, error) {
	var ch stripeCharge
	if err := ev.decode(&ch); err != nil {
		return nil, err
	}
	if err := checkText("data.object.id", ch.ID, maxKeyLen, true); err != nil {
		return nil, err
	}
	if err := checkText("data.object.invoice", string(ch.Invoice), maxKeyLen, false); err != nil {
		return nil, err
	}
	return &ch, nil
}

func (s *Server) stripeChargeSucceeded(c *fiber.Ctx, p *store.Program, ev stripeEvent) (stripeAnswer, error) {
	ch, err := decodeStripeCharge(ev)
	if err != nil {
		return stripeAnswer{}, err
	}
	if ch.Invoice != "" {
		return stripeAnswer{stripeIgnored, "This charge pays invoice " + string(ch.Invoice) + "; invoice.paid counts it."}, nil
	}
	if !ch.Captured {
		// An authorisation only; charge.captured reports the money.
		return stripeAnswer{stripeIgnored, "The charge is not captured yet."}, nil
	}
	paid := ch.Amount
	if ch.AmountCaptured > 0 {
		paid = ch.AmountCaptured // a partial capture takes less than was authorised
	}
	amount, err := stripeMoney("data.object.amount", paid, ch.Currency)
	if err != nil {
		return stripeAnswer{}, err
	}
	if amount.Minor == 0 {
		return stripeAnswer{stripeIgnored, "Nothing was paid with this charge."}, nil
	}
	return s.recordStripeSale(c, p, ev, ch.ID, string(ch.Customer), amount, "", string(ch.PaymentIntent))
}

// recordStripeSale stores a sale attributed through its customer, and
// applies a refund that arrived before it. A charge sale's key is the
// charge id, and paymentIntent its PaymentIntent: when either is known to
// have paid an invoice, invoice.paid counts the sale, and a refund kept
// under either is this sale's.
func (s *Server) recordStripeSale(c *fiber.Ctx, p *store.Program, ev stripeEvent, key, customerKey string, amount rules.Money, productID, paymentIntent string) (stripeAnswer, error) {
	if customerKey == "" {
		return stripeAnswer{stripeIgnored, "The payment has no Stripe customer, so no partner can be credited."}, nil
	}
	if err := checkText("data.object.customer", customerKey, maxKeyLen, true); err != nil {
		return stripeAnswer{}, err
	}
	in := tracking.TransactionInput{
		Key: key, Amount: amount, Action: "sale", ProductID: productID, Rewardable: true, CreatedAt: ev.At,
		Customer: tracking.CustomerInput{Key: customerKey}, Source: store.SourceGateway, Verified: true,
	}
	in.Payment = paymentIntent
	var ans stripeAnswer
	err := s.store.Write(c.UserContext(), func(tx *store.Tx) error {
		if invoice, ok, err := tx.LinkedInvoice(p.ID, key, paymentIntent); err != nil || ok {
			ans = stripeAnswer{stripeIgnored, "This charge pays invoice " + invoice + "; invoice.paid counts it."}
			return err
		}
		_, res, err := tracking.RecordTransaction(tx, p, in, tracking.Gateway)
		if err != nil {
			return err
		}
		switch res {
		case tracking.Replayed:
			ans = stripeAnswer{Status: stripeDuplicate}
			return nil
		case tracking.Ignored:
			ans = stripeAnswer{stripeIgnored, "Customer " + customerKey + " is not attributed to a partner of this program. " +
				"A sale of a customer potrack does not know yet is kept for 7 days, and recorded if the customer is attributed in that time."}
			return nil
		}
		ans = stripeAnswer{Status: stripeCreated}
		applied, err := tracking.ApplyPendingRefunds(tx, p, key, key, paymentIntent)
		if applied {
			ans.Reason = "A refund received earlier was applied."
		}
		return err
	})
	if errors.Is(err, tracking.ErrKeyConflict) {
		// Retrying cannot resolve a conflict, so it is acknowledged and
		// logged rather than failed.
		slog.Warn("stripe event conflicts with a stored transaction", "program", p.ID, "event", ev.ID, "key", key)
		return stripeAnswer{stripeConflict, "Transaction " + key + " is already stored with another amount or customer; this event was not applied."}, nil
	}
	return ans, err
}

func (s *Server) stripeChargeRefunded(c *fiber.Ctx, p *store.Program, ev stripeEvent) (stripeAnswer, error) {
	ch, err := decodeStripeCharge(ev)
	if err != nil {
		return stripeAnswer{}, err
	}
	refundedMoney, err := stripeMoney("data.object.amount_refunded", ch.AmountRefunded, ch.Currency)
	if err != nil {
		return stripeAnswer{}, err
	}
	// amount_refunded is the charge's running total, which is what
	// tracking.Refund takes; a total that reaches the sale's amount refunds
	// it in full.
	refunded := refundedMoney.Minor
	if refunded == 0 {
		return stripeAnswer{stripeIgnored, "Nothing is refunded on this charge."}, nil
	}
	var ans stripeAnswer
	err = s.store.Write(c.UserContext(), func(tx *store.Tx) error {
		// The sale was stored under the invoice when the charge paid one:
		// the charge says so before API version 2025-03-31.basil, an
		// invoice_payment.paid event after it.
		key := ch.ID
		if ch.Invoice != "" {
			key = string(ch.Invoice)
		} else if invoice, ok, err := tx.LinkedInvoice(p.ID, ch.ID, string(ch.PaymentIntent)); err != nil {
			return err
		} else if ok {
			key = invoice
		}
		before, err := tx.Transaction(p.ID, key)
		if errors.Is(err, store.ErrNotFound) {
			if ch.Customer == "" {
				// Without a customer the sale is never stored.
				ans = stripeAnswer{stripeIgnored, "No sale " + key + " is stored and the charge has no customer."}
				return nil
			}
			// Kept under the PaymentIntent when there is one: that is
			// what an invoice_payment.paid names.
			pending := key
			if key == ch.ID && ch.PaymentIntent != "" {
				pending = string(ch.PaymentIntent)
			}
			ans = stripeAnswer{stripePending, "No sale " + key + " is stored yet; the refund applies when it arrives."}
			return tx.SavePendingRefund(p.ID, pending, refunded)
		}
		if err != nil {
			return err
		}
		prevStatus, prevRefunded := before.Status, before.RefundedMinor
		after, err := tracking.Refund(tx, p, key, refunded)
		if err != nil {
			return err
		}
		if after.Status == prevStatus && after.RefundedMinor == prevRefunded {
			ans = stripeAnswer{Status: stripeDuplicate}
		} else {
			ans = stripeAnswer{Status: stripeRefunded}
		}
		return nil
	})
	return ans, err
}

// stripeInvoicePayment is an invoice_payment.paid event: which charge or
// PaymentIntent paid an invoice. Since API version 2025-03-31.basil only
// these events tell, and a refund of the charge is the invoice's.
type stripeInvoicePaymentObject struct {
	Invoice stripeID `json:"invoice"`
	Payment struct {
		Charge        stripeID `json:"charge"`
		PaymentIntent stripeID `json:"payment_intent"`
	} `json:"payment"`
}

func (s *Server) stripeInvoicePayment(c *fiber.Ctx, p *store.Program, ev stripeEvent) (stripeAnswer, error) {
	var ip stripeInvoicePaymentObject
	if err := ev.decode(&ip); err != nil {
		return stripeAnswer{}, err
	}
	invoice := string(ip.Invoice)
	payments := []string{string(ip.Payment.Charge), string(ip.Payment.PaymentIntent)}
	if err := errors.Join(
		checkText("data.object.invoice", invoice, maxKeyLen, true),
		checkText("data.object.payment.charge", payments[0], maxKeyLen, false),
		checkText("data.object.payment.payment_intent", payments[1], maxKeyLen, false),
	); err != nil {
		return stripeAnswer{}, err
	}
	if payments[0] == "" && payments[1] == "" {
		return stripeAnswer{stripeIgnored, "The invoice payment names no charge or PaymentIntent."}, nil
	}
	var ans stripeAnswer
	err := s.store.Write(c.UserContext(), func(tx *store.Tx) error {
		ans = stripeAnswer{Status: stripeLinked} // the function may run twice (store.Write)
		for _, pay := range payments {
			if pay != "" {
				if err := tx.LinkPayment(p.ID, pay, invoice); err != nil {
					return err
				}
			}
		}
		// A refund that came before this link was kept under the payment.
		if _, err := tx.Transaction(p.ID, invoice); errors.Is(err, store.ErrNotFound) {
			for _, pay := range payments {
				refunded, ok, err := tx.TakePendingRefund(p.ID, pay)
				if err != nil {
					return err
				}
				if ok {
					if err := tx.SavePendingRefund(p.ID, invoice, refunded); err != nil {
						return err
					}
				}
			}
			return nil
		} else if err != nil {
			return err
		}
		applied, err := tracking.ApplyPendingRefunds(tx, p, invoice, payments...)
		if applied {
			ans = stripeAnswer{stripeRefunded, "A refund of this payment received earlier was applied to invoice " + invoice + "."}
		}
		return err
	})
	return ans, err
}

type stripeCustomer struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Email    string            `json:"email"`
	Metadata map[string]string `json:"metadata"`
}

func (s *Server) stripeCustomer(c *fiber.Ctx, p *store.Program, ev stripeEvent) (stripeAnswer, error) {
	var cu stripeCustomer
	if err := ev.decode(&cu); err != nil {
		return stripeAnswer{}, err
	}
	if err := checkText("data.object.id", cu.ID, maxKeyLen, true); err != nil {
		return stripeAnswer{}, err
	}
	partnerKey := cu.Metadata[stripePartnerMetadata]
	if partnerKey == "" {
		return stripeAnswer{stripeIgnored, "The customer has no " + stripePartnerMetadata + " metadata."}, nil
	}
	// Name and email are only shown to the merchant: attribution matters
	// more than a display value our checks refuse.
	in := tracking.CustomerInput{Key: cu.ID, Name: cu.Name, Email: cu.Email}
	if checkText("name", in.Name, maxNameLen, false) != nil {
		in.Name = ""
	}
	if checkEmail("email", in.Email) != nil {
		in.Email = ""
	}
	var ans stripeAnswer
	err := s.store.Write(c.UserContext(), func(tx *store.Tx) error {
		_, res, err := tracking.CreateCustomer(tx, p, in, store.PartnerRef{Key: partnerKey}, tracking.Gateway)
		switch {
		case err != nil:
			return err
		case res == tracking.Created:
			ans = stripeAnswer{Status: stripeCreated}
		case res == tracking.Replayed:
			ans = stripeAnswer{stripeDuplicate, "The customer already exists; its partner never changes."}
		default:
			ans = stripeAnswer{stripeIgnored, "No partner of this program has the key in " + stripePartnerMetadata + "."}
		}
		return nil
	})
	return ans, err
}

// stripeMoney converts a Stripe amount to our minor units, after the
// checks every other entry point applies. Stripe's minor unit is not always
// the currency's: it counts ISK in hundredths although the krona has no
// subunit, and MGA in whole ariary although ISO gives it two decimals.
func stripeMoney(field string, minor int64, currency string) (rules.Money, error) {
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
