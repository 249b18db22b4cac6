package rules

// Outcome is what to do with the customer of a transaction or signup
// (SPEC.md "Attribution for transactions.create and customers.signup").
type Outcome int

const (
	UseExisting        Outcome = iota // the customer exists: keep its partner (may be none)
	CreateWithPartner                 // create the customer attributed to the given partner
	CreateUnattributed                // create it without partner; JS callers map this to Ignore
	Ignore                            // nothing to attribute: store nothing (JS: 202 ignored)
	CustomerNotFound                  // a partner is known but the customer is not: 422 customer_not_found
)

func (o Outcome) String() string {
	switch o {
	case UseExisting:
		return "UseExisting"
	case CreateWithPartner:
		return "CreateWithPartner"
	case CreateUnattributed:
		return "CreateUnattributed"
	case Ignore:
		return "Ignore"
	case CustomerNotFound:
		return "CustomerNotFound"
	}
	return "Outcome(?)"
}

// AttributeTransaction decides attribution. A new customer without a known partner is
// CreateUnattributed rather than Ignore because the REST API may still want to store it;
// the JS endpoint has nobody to credit and ignores it.
func AttributeTransaction(customerExists, createCustomer, partnerKnown bool) Outcome {
	switch {
	case customerExists:
		return UseExisting
	case createCustomer && partnerKnown:
		return CreateWithPartner
	case createCustomer:
		return CreateUnattributed
	case partnerKnown:
		return CustomerNotFound
	}
	return Ignore
}

// Where a new customer's partner may come from (attributed_by), in
// AttributionOrder.
const (
	ByPartner  = "partner"  // named explicitly in the request (REST customer.partner)
	ByCode     = "code"     // a discount code the sale names, when it is one of the program's
	ByCookie   = "cookie"   // the browser's referral cookie (/collect partner.key)
	ByMetadata = "metadata" // the payment gateway's customer metadata
)

// AttributionOrder is the order in which a NEW customer's partner is
// chosen (SPEC.md "Coupon codes"): a partner the request names explicitly,
// then a known discount code (the buyer typed it), then the referral the
// visit carried: the cookie, or a gateway's customer metadata (which
// usually holds that cookie: Stripe's client_reference_id, Paddle's
// custom_data). An entry point supplies at most one of the last two. An
// existing customer keeps its partner whatever a sale names.
var AttributionOrder = []string{ByPartner, ByCode, ByCookie, ByMetadata}

// ChooseAttribution picks how a new customer is attributed. candidate
// says, for a source of AttributionOrder, whether the sale names one
// (named) and whether it is a partner of the program (known); it is
// asked in order and no further than needed. The first known one wins.
// An unknown code, cookie or metadata partner is passed over; a partner
// named explicitly but unknown ends the choice with none, since the
// caller asked for that partner and nobody else (the REST API answers
// 422). "" means no partner.
func ChooseAttribution(candidate func(by string) (named, known bool)) string {
	for _, by := range AttributionOrder {
		named, known := candidate(by)
		switch {
		case named && known:
			return by
		case named && by == ByPartner:
			return ""
		}
	}
	return ""
}
