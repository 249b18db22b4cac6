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
