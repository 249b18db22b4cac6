// Package tracking records partners, customers, transactions and refunds.
// It holds the decisions every entry point shares (REST API, browser
// /collect, payment gateway): idempotent keys, attribution and rewards. Its
// functions run inside a store write, so each decision and the rows it
// produces commit together.
package tracking

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

var (
	// ErrKeyConflict: the key is taken by a row with other content.
	ErrKeyConflict = errors.New("key already used with different content")
	// ErrCustomerNotFound: the transaction names an unknown customer and
	// asked not to create it.
	ErrCustomerNotFound = errors.New("customer not found")
	// ErrPartnerNotFound: an explicitly named partner does not exist.
	ErrPartnerNotFound = errors.New("partner not found")
)

// Result says what a recording call did.
type Result int

const (
	Created  Result = iota // new rows were stored
	Replayed               // the same content was already stored; nothing changed
	Ignored                // nothing to attribute; nothing stored
)

// Strictness of an entry point.
type Mode struct {
	// RequirePartner stores nothing unless the sale or customer is
	// attributed to a partner: browsers and gateways report every visitor,
	// while only referred ones matter.
	RequirePartner bool
	// WholeContent makes a repeated key a replay only when every field
	// matches, not just amount, currency and customer (which is SPEC.md's
	// rule for /collect, and enough for a gateway).
	WholeContent bool
	// KeepUnknownCustomers keeps a sale of a customer not created yet, to
	// record it if the customer is created attributed soon after: a
	// gateway may deliver the sale before the event that attributes it.
	KeepUnknownCustomers bool
	// CodeCreatesCustomer creates the unknown customer of a sale that
	// names one of the program's discount codes, attributed by the code,
	// without options.create_customer: a gateway's customer is real, and
	// the code is the attribution a kept sale would wait for.
	CodeCreatesCustomer bool
}

// REST is the server-to-server API: unattributed customers and sales are
// stored, unknown partners are errors, and an idempotency key must come
// back with the same content.
var REST = Mode{WholeContent: true}

// Tracked is the browser mode: nothing is stored without a partner.
var Tracked = Mode{RequirePartner: true}

// Gateway is the payment gateway mode: like Tracked, but a sale of an
// unknown customer waits a while for the customer (store.PendingSaleTTL).
// A sale naming a known code creates its customer.
var Gateway = Mode{RequirePartner: true, KeepUnknownCustomers: true, CodeCreatesCustomer: true}

// PartnerInput is a new partner.
type PartnerInput struct{ Key, Email, Name string }

// CreatePartner stores a partner. The same key with the same content is a
// replay; with other content, ErrKeyConflict.
func CreatePartner(tx *store.Tx, p *store.Program, in PartnerInput) (*store.Partner, Result, error) {
	existing, err := tx.Partner(p.ID, store.PartnerRef{Key: in.Key})
	switch {
	case err == nil:
		if existing.Email == in.Email && existing.Name == in.Name {
			return existing, Replayed, nil
		}
		return nil, 0, ErrKeyConflict
	case !errors.Is(err, store.ErrNotFound):
		return nil, 0, err
	}
	partner := &store.Partner{ProgramID: p.ID, Key: in.Key, Email: in.Email, Name: in.Name}
	if err := tx.InsertPartner(partner); err != nil {
		return nil, 0, err
	}
	if err := announce(tx, p, store.EventPartnerCreated, partner); err != nil {
		return nil, 0, err
	}
	return partner, Created, nil
}

// CustomerInput is a customer as a caller names it.
type CustomerInput struct {
	Key, Name, Email string
	// DiscountCode, for CreateCustomer only (a sale's code is
	// TransactionInput.DiscountCode): a code the customer used, which
	// attributes it in the order of rules.ChooseAttribution (before a
	// cookie or metadata reference, after an explicit partner).
	DiscountCode string
}

// CreateCustomer stores a customer attributed to the referenced partner
// or to the partner of its discount code, whichever rules.ChooseAttribution
// picks (ref.By says what kind of reference ref is). An existing customer
// is never changed: in REST mode the same content is a replay and other
// content a conflict; in tracked mode (browser signups, gateways) any
// existing customer is a replay.
func CreateCustomer(tx *store.Tx, p *store.Program, in CustomerInput, ref store.PartnerRef, mode Mode) (*store.Customer, Result, error) {
	existing, err := tx.Customer(p.ID, in.Key)
	switch {
	case err == nil:
		if mode.RequirePartner || sameCustomer(existing, in, ref) {
			return existing, Replayed, nil
		}
		return nil, 0, ErrKeyConflict
	case !errors.Is(err, store.ErrNotFound):
		return nil, 0, err
	}
	a, err := attributeNew(tx, p, ref, in.DiscountCode)
	if err != nil {
		return nil, 0, err
	}
	partner := a.partner
	if partner == nil {
		if mode.RequirePartner {
			return nil, Ignored, nil
		}
		if !ref.IsZero() {
			return nil, 0, ErrPartnerNotFound
		}
	}
	c := &store.Customer{ProgramID: p.ID, Key: in.Key, Name: in.Name, Email: in.Email, Partner: partner,
		AttributedBy: a.by, DiscountCode: a.code}
	c.Flags = customerFlags(c)
	if err := tx.InsertCustomer(c); err != nil {
		return nil, 0, err
	}
	if err := flagPaidAd(tx, p, c); err != nil {
		return nil, 0, err
	}
	if err := announce(tx, p, store.EventCustomerCreated, c); err != nil {
		return nil, 0, err
	}
	if partner != nil {
		if _, err := recordPendingSales(tx, p, c); err != nil {
			return nil, 0, err
		}
	}
	return c, Created, nil
}

// recordPendingSales records the gateway sales that arrived before their
// customer was created attributed, with any refund that came before them.
func recordPendingSales(tx *store.Tx, p *store.Program, c *store.Customer) (recorded bool, err error) {
	sales, err := tx.TakePendingSales(p.ID, c.Key)
	if err != nil || len(sales) == 0 {
		return false, err
	}
	for _, ps := range sales {
		// A charge learnt meanwhile to have paid an invoice is counted by
		// the invoice.
		if _, linked, err := tx.LinkedInvoice(p.ID, ps.Key, ps.Payment); err != nil || linked {
			if err != nil {
				return false, err
			}
			continue
		}
		in := TransactionInput{
			Key: ps.Key, Amount: ps.Amount, Action: ps.Action, ProductID: ps.ProductID, ProductType: ps.ProductType,
			Rewardable: true, CreatedAt: ps.At, Customer: CustomerInput{Key: c.Key}, Source: ps.Source, Verified: true,
			Payment: ps.Payment, DiscountCode: ps.DiscountCode,
		}
		_, res, err := RecordTransaction(tx, p, in, Tracked)
		if errors.Is(err, ErrKeyConflict) {
			continue // the key was taken meanwhile; the stored sale stands
		}
		if err != nil {
			return false, err
		}
		if res == Created {
			recorded = true
			if _, err := ApplyPendingRefunds(tx, p, ps.Key, ps.Key, ps.Payment); err != nil {
				return false, err
			}
		}
	}
	return recorded, nil
}

// ApplyPendingRefunds applies to the stored transaction key the refunds
// that arrived before it and were kept under any of keptUnder, and forgets
// them.
func ApplyPendingRefunds(tx *store.Tx, p *store.Program, key string, keptUnder ...string) (applied bool, err error) {
	for _, k := range keptUnder {
		if k == "" {
			continue
		}
		refunded, ok, err := tx.TakePendingRefund(p.ID, k)
		if err != nil {
			return applied, err
		}
		if !ok {
			continue
		}
		if _, err := Refund(tx, p, key, refunded); err != nil {
			return applied, err
		}
		applied = true
	}
	return applied, nil
}

func sameCustomer(c *store.Customer, in CustomerInput, ref store.PartnerRef) bool {
	if c.Name != in.Name || c.Email != in.Email {
		return false
	}
	if c.Partner == nil {
		return ref.IsZero()
	}
	switch {
	case ref.Key != "":
		return ref.Key == c.Partner.Key
	case ref.ID != 0:
		return ref.ID == c.Partner.ID
	case ref.Email != "":
		return ref.Email == c.Partner.Email
	}
	return false
}

// attribution is how a new customer would be attributed: its partner
// (nil: none), by which source (rules.By…, "" without partner) and, when
// by a code, the code as the program keeps it.
type attribution struct {
	partner *store.Partner
	by      string
	code    string
}

// attributeNew decides a new customer's partner from what the call names:
// the partner reference ref (explicit unless ref.By says cookie or
// metadata) and a discount code, in the order of rules.ChooseAttribution.
// Lookups stop at the winner: a found explicit partner costs no coupon
// lookup. An unknown code is no error; it attributes nothing.
func attributeNew(tx *store.Tx, p *store.Program, ref store.PartnerRef, code string) (attribution, error) {
	refBy := rules.ByPartner
	if ref.By == rules.ByCookie || ref.By == rules.ByMetadata {
		refBy = ref.By
	}
	var (
		a   attribution
		err error
	)
	by := rules.ChooseAttribution(func(by string) (named, known bool) {
		if err != nil {
			return false, false
		}
		switch by {
		case rules.ByCode:
			if store.NormalizeCode(code) == "" {
				return false, false
			}
			coupon, e := tx.Coupon(p.ID, code)
			if errors.Is(e, store.ErrNotFound) {
				return true, false
			}
			if e != nil {
				err = e
				return false, false
			}
			a.partner, a.code = coupon.Partner, coupon.Code
			return true, true
		case refBy:
			if ref.IsZero() {
				return false, false
			}
			partner, e := findPartner(tx, p, ref)
			if e != nil {
				err = e
				return false, false
			}
			a.partner = partner
			return true, partner != nil
		}
		return false, false
	})
	if err != nil {
		return attribution{}, err
	}
	if by == "" {
		return attribution{}, nil
	}
	a.by = by
	if by != rules.ByCode {
		a.code = ""
	}
	return a, nil
}

// findPartner resolves a reference; nil (and no error) when it names
// nobody or somebody unknown.
func findPartner(tx *store.Tx, p *store.Program, ref store.PartnerRef) (*store.Partner, error) {
	if ref.IsZero() {
		return nil, nil
	}
	partner, err := tx.Partner(p.ID, ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return partner, err
}

// TransactionInput is a sale as an entry point received it, already
// validated.
type TransactionInput struct {
	Key         string
	Amount      rules.Money
	Action      string
	ProductID   string
	ProductType string
	Rewardable  bool
	CreatedAt   time.Time // zero: now
	Customer    CustomerInput
	Partner     store.PartnerRef // attribution for a customer created here; Partner.By says its kind
	// DiscountCode is the code the sale names (trimmed; stored as given,
	// known or not). One of the program's codes attributes a customer
	// created here, after an explicit partner and before a cookie or
	// metadata reference (rules.ChooseAttribution).
	DiscountCode   string
	CreateCustomer bool
	Source         string
	Verified       bool
	// Payment is a gateway's other id for the payment (a Stripe
	// PaymentIntent): a refund or invoice link may be kept under it.
	Payment string
}

// RecordTransaction stores a sale with its reward. A key already stored
// with the same content (see Mode.WholeContent) is a replay. A verified
// report (REST, gateway, or a browser sale signed by the merchant's
// backend) of a key an unverified browser report holds confirms that row
// when every field matches and replaces it otherwise. A verified row
// (signed browser sales included: the signature covers every field that
// decides the reward) is never replaced: a repeat with the same content is
// a replay, one with other content ErrKeyConflict, whoever sends it. Any
// other difference is ErrKeyConflict.
//
// A new sale is the common case and costs three statements: the customer
// and the transaction are claimed by INSERT … ON CONFLICT DO NOTHING
// instead of being looked up first, and the reward is inserted. Only a
// taken key pays for reading what holds it.
//
// A customer created here is attributed as attributeNew decides (an
// explicit partner, else a known code, else the cookie or metadata); an
// existing one keeps its partner. Either way the sale records the
// customer's AttributedBy, and DiscountCode as the sale named it.
func RecordTransaction(tx *store.Tx, p *store.Program, in TransactionInput, mode Mode) (*store.Transaction, Result, error) {
	in.DiscountCode = strings.TrimSpace(in.DiscountCode)
	a, err := attributeNew(tx, p, in.Partner, in.DiscountCode)
	if err != nil {
		return nil, 0, err
	}
	partner := a.partner
	if mode.CodeCreatesCustomer && a.by == rules.ByCode {
		in.CreateCustomer = true
	}
	customer, newCustomer, err := claimCustomer(tx, p, in, mode, a)
	if err != nil {
		return nil, 0, err
	}
	if customer == nil || (customer.Partner == nil && mode.RequirePartner) {
		// Nothing new is stored for this customer; a sale stored under the
		// key earlier still answers for it, unless this report replaces it.
		switch existing, err := tx.Transaction(p.ID, in.Key); {
		case err == nil:
			tr, res, replaced, err := decideExisting(tx, existing, in, mode)
			if !replaced {
				return tr, res, err
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, 0, err
		}
		if customer == nil {
			res, err := noCustomer(tx, p, in, mode, partner)
			return nil, res, err
		}
		return nil, Ignored, nil
	}
	if newCustomer && partner != nil {
		// Gateway sales kept for this customer come first: they happened
		// before this one. One of them may have this key.
		recorded, err := recordPendingSales(tx, p, customer)
		if err != nil {
			return nil, 0, err
		}
		newCustomer = !recorded // its kept sales are its transactions now
	}

	tr := &store.Transaction{
		ProgramID: p.ID, Key: in.Key, Customer: customer, Amount: in.Amount, Action: in.Action,
		ProductID: in.ProductID, ProductType: in.ProductType, Source: in.Source, Verified: in.Verified,
		Rewardable: in.Rewardable, CreatedAt: in.CreatedAt, Rewards: []*store.Reward{},
		AttributedBy: customer.AttributedBy, DiscountCode: in.DiscountCode,
	}
	if err := reward(tx, p, tr, newCustomer); err != nil {
		return nil, 0, err
	}
	created, err := tx.ClaimTransaction(tr)
	if err == nil && created {
		err = announce(tx, p, store.EventTransactionCreated, tr)
	}
	if err != nil || created {
		return tr, Created, err
	}
	existing, err := tx.Transaction(p.ID, in.Key)
	if err != nil {
		return nil, 0, err
	}
	answer, res, replaced, err := decideExisting(tx, existing, in, mode)
	if !replaced {
		return answer, res, err
	}
	// The removed row may have been one of the customer's earlier sales.
	tr.Rewards = []*store.Reward{}
	if err := reward(tx, p, tr, newCustomer); err != nil {
		return nil, 0, err
	}
	if created, err = tx.ClaimTransaction(tr); err == nil && !created {
		err = fmt.Errorf("transaction %q: its key is still taken after the row holding it was removed", in.Key)
	}
	if err == nil {
		// The verified report is a new sale in the unverified one's place.
		err = announce(tx, p, store.EventTransactionCreated, tr)
	}
	if err != nil {
		return nil, 0, err
	}
	return tr, Created, nil
}

// claimCustomer finds the sale's customer, creating it when the
// attribution rules say so (SPEC.md "Attribution for transactions.create").
// A nil customer means none exists and none may be created.
func claimCustomer(tx *store.Tx, p *store.Program, in TransactionInput, mode Mode, a attribution) (c *store.Customer, created bool, err error) {
	outcome := rules.AttributeTransaction(false, in.CreateCustomer, a.partner != nil)
	if outcome == rules.CreateWithPartner ||
		(outcome == rules.CreateUnattributed && !mode.RequirePartner && in.Partner.IsZero()) {
		c = &store.Customer{ProgramID: p.ID, Key: in.Customer.Key, Name: in.Customer.Name,
			Email: in.Customer.Email, Partner: a.partner, AttributedBy: a.by, DiscountCode: a.code}
		c.Flags = customerFlags(c)
		if created, err = tx.ClaimCustomer(c); err == nil && created {
			err = flagPaidAd(tx, p, c)
		}
		if err == nil && created {
			err = announce(tx, p, store.EventCustomerCreated, c)
		}
		if err != nil || created {
			return c, created, err
		}
	}
	c, err = tx.Customer(p.ID, in.Customer.Key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	return c, false, err
}

// noCustomer answers a sale whose customer does not exist and may not be
// created: Ignored (a gateway's sale is kept a while for its customer), or
// an error.
func noCustomer(tx *store.Tx, p *store.Program, in TransactionInput, mode Mode, partner *store.Partner) (Result, error) {
	switch rules.AttributeTransaction(false, in.CreateCustomer, partner != nil) {
	case rules.CustomerNotFound:
		return 0, ErrCustomerNotFound
	case rules.Ignore:
		if mode.KeepUnknownCustomers {
			return Ignored, tx.SavePendingSale(p.ID, store.PendingSale{
				Key: in.Key, CustomerKey: in.Customer.Key, Amount: in.Amount, Action: in.Action,
				ProductID: in.ProductID, ProductType: in.ProductType, Source: in.Source, Payment: in.Payment,
				DiscountCode: in.DiscountCode, At: in.CreatedAt,
			})
		}
		if !mode.RequirePartner {
			return 0, ErrCustomerNotFound
		}
	case rules.CreateUnattributed:
		if !mode.RequirePartner && !in.Partner.IsZero() {
			return 0, ErrPartnerNotFound
		}
	}
	return Ignored, nil
}

// reward adds the partner's reward to a new transaction. A customer this
// write created has no earlier transactions to count.
func reward(tx *store.Tx, p *store.Program, tr *store.Transaction, newCustomer bool) error {
	if !tr.Rewardable || tr.Customer.Partner == nil {
		return nil
	}
	at := tr.CreatedAt
	if at.IsZero() {
		at = tx.Now()
	}
	sale := rules.Sale{Amount: tr.Amount, ProductID: tr.ProductID, ProductType: tr.ProductType,
		At: at, CustomerCreatedAt: tr.Customer.CreatedAt}
	if !newCustomer && p.Commission.NeedsPriorTransactions(sale) {
		var err error
		if sale.PriorTransactions, err = tx.CountCustomerTransactions(tr.Customer.ID); err != nil {
			return err
		}
	}
	amount, ok, err := p.Commission.Reward(sale, p.Currency)
	if err != nil || !ok {
		return err
	}
	tr.Rewards = append(tr.Rewards, newReward(tx, p, tr, at, amount)) // ledger.go
	return nil
}

// decideExisting answers a sale whose key is taken by existing (see
// RecordTransaction). replaced: a verified report removed the unverified
// row that held the key, and the caller stores its sale in its place.
func decideExisting(tx *store.Tx, existing *store.Transaction, in TransactionInput, mode Mode) (*store.Transaction, Result, bool, error) {
	switch {
	case in.Verified && !existing.Verified && sameTransaction(existing, in, Mode{WholeContent: true}):
		// The merchant's server confirms what a browser reported, field
		// for field: the product fields choose the commission.
		if err := tx.MarkVerified(existing.ID); err != nil {
			return nil, 0, false, err
		}
		existing.Verified = true
		return existing, Replayed, false, nil
	case sameTransaction(existing, in, mode) && (existing.Verified || !in.Verified):
		// Nothing changes: a verified row is only ever confirmed, and an
		// unverified report never makes a row verified.
		return existing, Replayed, false, nil
	case in.Verified && !existing.Verified && existing.Status == store.StatusOK:
		// Anyone can report a browser sale, under any key: a forged one
		// must not block the merchant's verified sale with the same key.
		// The verified report replaces it. Only an unverified row is ever
		// replaced, and only by a verified report.
		if err := tx.DeleteTransaction(existing.ID); err != nil {
			if errors.Is(err, store.ErrRewardBatched) {
				// Its reward is in a payout batch: the row stands.
				return nil, 0, false, ErrKeyConflict
			}
			return nil, 0, false, err
		}
		return nil, 0, true, nil
	}
	return nil, 0, false, ErrKeyConflict
}

// sameTransaction reports whether in repeats the stored transaction. With
// WholeContent the discount code counts too, compared as codes are (case
// and surrounding spaces aside); attributed_by never does: it is what the
// server decided, not what the caller sent.
func sameTransaction(t *store.Transaction, in TransactionInput, mode Mode) bool {
	if t.Amount != in.Amount || t.Customer == nil || t.Customer.Key != in.Customer.Key {
		return false
	}
	return !mode.WholeContent || (t.Action == in.Action && t.ProductID == in.ProductID &&
		t.ProductType == in.ProductType && t.Rewardable == in.Rewardable &&
		store.NormalizeCode(t.DiscountCode) == store.NormalizeCode(in.DiscountCode))
}

// Refund marks refundedTotal minor units of a transaction as refunded in
// all (a negative refundedTotal means the whole amount) and reverses the
// same share of its rewards. Refund totals only grow, so a repeated or
// late, smaller refund changes nothing.
func Refund(tx *store.Tx, p *store.Program, key string, refundedTotal int64) (*store.Transaction, error) {
	tr, err := tx.Transaction(p.ID, key)
	if err != nil {
		return nil, err
	}
	if refundedTotal < 0 || refundedTotal > tr.Amount.Minor {
		refundedTotal = tr.Amount.Minor
	}
	full := refundedTotal == tr.Amount.Minor
	if tr.Status == store.StatusRefunded || (refundedTotal <= tr.RefundedMinor && !full) {
		return tr, nil
	}
	tr.RefundedMinor = refundedTotal
	if full {
		tr.Status = store.StatusRefunded
	}
	for _, r := range tr.Rewards {
		if full {
			r.ReversedMinor = r.Amount.Minor
		} else {
			r.ReversedMinor = rules.Proportion(r.Amount, refundedTotal, tr.Amount.Minor).Minor
		}
		if r.ReversedMinor == r.Amount.Minor {
			r.Status = store.RewardReversed
		}
	}
	entries := refundEntries(p, tr) // the ledger's side (ledger.go)
	if err := tx.SaveRefund(tr); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if err := tx.AddLedgerEntry(e); err != nil {
			return nil, err
		}
	}
	if err := announce(tx, p, store.EventTransactionRefunded, tr); err != nil {
		return nil, err
	}
	return tr, nil
}
