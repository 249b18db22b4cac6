package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/potrack/potrack/gateway"
	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// Payment gateway events, applied. Each gateway's handler verifies the
// signature and parses the body into a gateway.Event (package gateway:
// pure, one shape for every gateway); applyGatewayEvent records what the
// event means through tracking, in one store write, the same way for
// every gateway. Adding a gateway is a parser and a handler.
//
// Every event that is correctly signed and well formed is acknowledged
// with a 2xx, even when it changes nothing: gateways retry any other
// answer for days and may then disable the endpoint, which would lose
// later sales. Only failures that a retry can fix (the store being
// unavailable) are 5xx.

// Statuses of an acknowledged event.
const (
	gatewayCreated   = "created"
	gatewayDuplicate = "duplicate"
	gatewayIgnored   = "ignored"
	gatewayRefunded  = "refunded"
	gatewayPending   = "pending"  // a refund kept until its sale arrives
	gatewayConflict  = "conflict" // the key is taken by a transaction with other content
	gatewayLinked    = "linked"   // a payment now known to have paid an invoice
)

// gatewayAnswer is the body of an acknowledged event. Gateways show it in
// the endpoint's delivery log, so Reason tells the merchant why an event
// changed nothing.
type gatewayAnswer struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// applyGatewayEvent records what ev means for program p. Attributions go
// first (a customer created here takes the sales kept for it), then
// links, sales and refunds; the answer is the last item's. A sale whose
// key another transaction holds with other content is acknowledged as a
// conflict and logged: retrying cannot change it.
func (s *Server) applyGatewayEvent(ctx context.Context, p *store.Program, ev gateway.Event) (gatewayAnswer, error) {
	if len(ev.Attributions)+len(ev.Links)+len(ev.Sales)+len(ev.Refunds) == 0 {
		return gatewayAnswer{gatewayIgnored, ev.Ignored}, nil
	}
	var (
		ans      gatewayAnswer
		conflict string
	)
	err := s.store.Write(ctx, func(tx *store.Tx) (err error) {
		// The function may run twice (store.Write): it only assigns.
		ans, conflict = gatewayAnswer{}, ""
		for _, a := range ev.Attributions {
			if ans, err = applyAttribution(tx, p, a); err != nil {
				return err
			}
		}
		for _, l := range ev.Links {
			if ans, err = applyLink(tx, p, l); err != nil {
				return err
			}
		}
		for _, sale := range ev.Sales {
			ans, err = applySale(tx, p, ev, sale)
			if errors.Is(err, tracking.ErrKeyConflict) {
				conflict = sale.Key
			}
			if err != nil {
				return err
			}
		}
		for _, r := range ev.Refunds {
			if ans, err = applyRefund(tx, p, r); err != nil {
				return err
			}
		}
		return nil
	})
	if conflict != "" && errors.Is(err, tracking.ErrKeyConflict) {
		slog.Warn("gateway event conflicts with a stored transaction", "gateway", ev.Gateway, "program", p.ID,
			"event", ev.ID, "key", conflict)
		return gatewayAnswer{gatewayConflict, "Transaction " + conflict +
			" is already stored with another amount or customer; this event was not applied."}, nil
	}
	return ans, err
}

// pickCode is the sale's discount code among the gateway's candidates:
// the first that is one of the program's codes, else the first.
func pickCode(tx *store.Tx, p *store.Program, codes []string) (string, error) {
	if len(codes) < 2 {
		if len(codes) == 0 {
			return "", nil
		}
		return codes[0], nil
	}
	for _, c := range codes {
		_, err := tx.Coupon(p.ID, c)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return codes[0], nil
}

func applyAttribution(tx *store.Tx, p *store.Program, a gateway.Attribution) (gatewayAnswer, error) {
	code, err := pickCode(tx, p, a.DiscountCodes)
	if err != nil {
		return gatewayAnswer{}, err
	}
	var ref store.PartnerRef
	if a.PartnerKey != "" {
		ref = store.PartnerRef{Key: a.PartnerKey, By: store.AttributedMetadata}
	}
	in := tracking.CustomerInput{Key: a.CustomerKey, Name: a.Name, Email: a.Email, DiscountCode: code}
	_, res, err := tracking.CreateCustomer(tx, p, in, ref, tracking.Gateway)
	switch {
	case err != nil:
		return gatewayAnswer{}, err
	case res == tracking.Created:
		return gatewayAnswer{Status: gatewayCreated}, nil
	case res == tracking.Replayed:
		return gatewayAnswer{gatewayDuplicate, "The customer already exists; its partner never changes."}, nil
	}
	reason := "No partner of this program has the key in " + a.Source + "."
	switch {
	case a.PartnerKey == "":
		reason = "The discount code is not one of this program's codes."
	case code != "":
		reason = "No partner of this program has the key in " + a.Source + ", and the discount code is not one of this program's codes."
	}
	return gatewayAnswer{gatewayIgnored, reason}, nil
}

func applyLink(tx *store.Tx, p *store.Program, l gateway.Link) (gatewayAnswer, error) {
	for _, pay := range l.Payments {
		if err := tx.LinkPayment(p.ID, pay, l.SaleKey); err != nil {
			return gatewayAnswer{}, err
		}
	}
	// A refund that came before this link was kept under the payment.
	if _, err := tx.Transaction(p.ID, l.SaleKey); errors.Is(err, store.ErrNotFound) {
		for _, pay := range l.Payments {
			refunded, ok, err := tx.TakePendingRefund(p.ID, pay)
			if err != nil {
				return gatewayAnswer{}, err
			}
			if ok {
				if err := tx.SavePendingRefund(p.ID, l.SaleKey, refunded); err != nil {
					return gatewayAnswer{}, err
				}
			}
		}
		return gatewayAnswer{Status: gatewayLinked}, nil
	} else if err != nil {
		return gatewayAnswer{}, err
	}
	applied, err := tracking.ApplyPendingRefunds(tx, p, l.SaleKey, l.Payments...)
	if err != nil {
		return gatewayAnswer{}, err
	}
	if applied {
		return gatewayAnswer{gatewayRefunded, "A refund of this payment received earlier was applied to " + l.SaleKey + "."}, nil
	}
	return gatewayAnswer{Status: gatewayLinked}, nil
}

// applySale stores a sale attributed through its customer, and applies a
// refund that arrived before it. When the sale's key or its other payment
// id is known to have paid another sale (a charge of an invoice, a guest
// Checkout's PaymentIntent), that sale counts it.
func applySale(tx *store.Tx, p *store.Program, ev gateway.Event, s gateway.Sale) (gatewayAnswer, error) {
	if linked, ok, err := tx.LinkedInvoice(p.ID, s.Key, s.Payment); err != nil {
		return gatewayAnswer{}, err
	} else if ok && linked != s.Key {
		return gatewayAnswer{gatewayIgnored, "This payment is counted by sale " + linked + " (the invoice or checkout it paid)."}, nil
	}
	code, err := pickCode(tx, p, s.DiscountCodes)
	if err != nil {
		return gatewayAnswer{}, err
	}
	in := tracking.TransactionInput{
		Key: s.Key, Amount: s.Amount, Action: "sale", ProductID: s.ProductID, Rewardable: true, CreatedAt: ev.At,
		Customer: tracking.CustomerInput{Key: s.CustomerKey, Name: s.CustomerName, Email: s.CustomerEmail},
		Source:   store.SourceGateway, Verified: true, Payment: s.Payment, DiscountCode: code,
		// A guest's customer exists only through this sale: created here
		// when a partner or a code is found, never kept for later.
		CreateCustomer: s.Guest,
	}
	if s.PartnerKey != "" {
		// A customer created here takes the checkout's partner (after a
		// known code: rules.ChooseAttribution).
		in.Partner = store.PartnerRef{Key: s.PartnerKey, By: store.AttributedMetadata}
		in.CreateCustomer = true
	}
	_, res, err := tracking.RecordTransaction(tx, p, in, tracking.Gateway)
	if err == nil && res == tracking.Ignored && in.CreateCustomer && !s.Guest {
		// The named partner is not one of the program's: the sale waits
		// for its customer as any other (kept if the customer is new).
		in.Partner, in.CreateCustomer = store.PartnerRef{}, false
		_, res, err = tracking.RecordTransaction(tx, p, in, tracking.Gateway)
	}
	if err != nil {
		return gatewayAnswer{}, err
	}
	var ans gatewayAnswer
	switch res {
	case tracking.Ignored:
		if s.Guest {
			return gatewayAnswer{gatewayIgnored, "No partner of this program is named by the checkout (client_reference_id or metadata." +
				gateway.PartnerMetadata + "), and no discount code is one of the program's."}, nil
		}
		return gatewayAnswer{gatewayIgnored, "Customer " + s.CustomerKey + " is not attributed to a partner of this program. " +
			"A sale of a customer potrack does not know yet is kept for 7 days, and recorded if the customer is attributed in that time."}, nil
	case tracking.Replayed:
		ans = gatewayAnswer{Status: gatewayDuplicate}
	default:
		ans = gatewayAnswer{Status: gatewayCreated}
		applied, err := tracking.ApplyPendingRefunds(tx, p, s.Key, s.Key, s.Payment)
		if err != nil {
			return gatewayAnswer{}, err
		}
		if applied {
			ans.Reason = "A refund received earlier was applied."
		}
	}
	if s.LinkPayment && s.Payment != "" {
		// The payment's charge, reported later, finds this sale.
		if err := tx.LinkPayment(p.ID, s.Payment, s.Key); err != nil {
			return gatewayAnswer{}, err
		}
	}
	return ans, nil
}

// applyRefund refunds a stored sale, or keeps the refund until the sale
// arrives. A refund with an ID (one of several, a Paddle adjustment) is
// applied once: the ID is recorded as a payment link to the sale's key,
// whose presence makes a repeat a duplicate.
func applyRefund(tx *store.Tx, p *store.Program, r gateway.Refund) (gatewayAnswer, error) {
	key, keep := r.SaleKey, r.KeepUnder
	if keep == "" {
		keep = key
	}
	if len(r.Payments) > 0 {
		// The sale was stored under the invoice or checkout a link names.
		if linked, ok, err := tx.LinkedInvoice(p.ID, r.Payments...); err != nil {
			return gatewayAnswer{}, err
		} else if ok {
			key, keep = linked, linked
		}
	}
	if r.ID != "" {
		if _, seen, err := tx.LinkedInvoice(p.ID, r.ID); err != nil || seen {
			return gatewayAnswer{gatewayDuplicate, "This refund was applied already."}, err
		}
	}
	before, err := tx.Transaction(p.ID, key)
	if errors.Is(err, store.ErrNotFound) {
		if r.CustomerKey == "" {
			// Without a customer the sale is never stored.
			return gatewayAnswer{gatewayIgnored, "No sale " + key + " is stored and the payment has no customer."}, nil
		}
		total := r.Amount.Minor
		if r.Full {
			total = store.FullRefund
		}
		if r.ID != "" {
			// One refund among others: added to those kept before it.
			if prev, ok, err := tx.TakePendingRefund(p.ID, keep); err != nil {
				return gatewayAnswer{}, err
			} else if ok {
				total = addRefunds(prev, total)
			}
			if err := tx.LinkPayment(p.ID, r.ID, key); err != nil {
				return gatewayAnswer{}, err
			}
		}
		if err := tx.SavePendingRefund(p.ID, keep, total); err != nil {
			return gatewayAnswer{}, err
		}
		return gatewayAnswer{gatewayPending, "No sale " + key + " is stored yet; the refund applies when it arrives."}, nil
	}
	if err != nil {
		return gatewayAnswer{}, err
	}
	total := r.Amount.Minor
	if r.ID != "" {
		total = addRefunds(before.RefundedMinor, total)
		if err := tx.LinkPayment(p.ID, r.ID, key); err != nil {
			return gatewayAnswer{}, err
		}
	}
	if r.Full {
		total = store.FullRefund
	}
	prevStatus, prevRefunded := before.Status, before.RefundedMinor
	after, err := tracking.Refund(tx, p, key, total)
	if err != nil {
		return gatewayAnswer{}, err
	}
	if after.Status == prevStatus && after.RefundedMinor == prevRefunded {
		return gatewayAnswer{Status: gatewayDuplicate}, nil
	}
	return gatewayAnswer{Status: gatewayRefunded}, nil
}

// addRefunds adds two refund totals, either of which may be
// store.FullRefund.
func addRefunds(a, b int64) int64 {
	if a < 0 || b < 0 {
		return store.FullRefund
	}
	if a+b > rules.MaxMinor {
		return rules.MaxMinor
	}
	return a + b
}
