package tracking

import (
	"context"
	"testing"
	"time"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The entry points' tests (server/) cover REST and /collect; these cover
// what a payment gateway's webhook calls: a sale naming a code, a sale kept
// for its customer with its code, and attribution by metadata.

type fixture struct {
	s   *store.Store
	p   *store.Program
	sam *store.Partner
	pat *store.Partner
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := store.Open(testenv.Database(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fixture{s: s, p: &store.Program{ID: "prog", Name: "Shop", Currency: "USD", CookieDays: 30, ReferralParams: []string{"aff"},
		Attribution: "last", Commission: rules.DefaultCommission()}}
	f.write(t, func(tx *store.Tx) error {
		if err := tx.InsertProgram(f.p, "h"); err != nil {
			return err
		}
		f.sam, f.pat = &store.Partner{ProgramID: "prog", Key: "sam"}, &store.Partner{ProgramID: "prog", Key: "pat"}
		for _, p := range []*store.Partner{f.sam, f.pat} {
			if err := tx.InsertPartner(p); err != nil {
				return err
			}
		}
		return tx.InsertCoupon(&store.Coupon{ProgramID: "prog", Partner: f.sam, Code: "SUMMER"})
	})
	return f
}

func (f *fixture) write(t *testing.T, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := f.s.Write(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func gatewaySale(key, customer, code string) TransactionInput {
	return TransactionInput{Key: key, Amount: rules.Money{Minor: 1000, Currency: "USD"}, Action: "sale", Rewardable: true,
		Customer: CustomerInput{Key: customer}, Source: store.SourceGateway, Verified: true, DiscountCode: code, CreatedAt: time.Now()}
}

// TestGatewaySaleWithCode: a gateway sale of an unknown customer naming a
// known code creates the customer, attributed by the code.
func TestGatewaySaleWithCode(t *testing.T) {
	f := newFixture(t)
	var (
		tr  *store.Transaction
		res Result
	)
	f.write(t, func(tx *store.Tx) (err error) {
		tr, res, err = RecordTransaction(tx, f.p, gatewaySale("in_1", "cus_1", "summer"), Gateway)
		return err
	})
	if res != Created || tr.AttributedBy != store.AttributedCode || tr.DiscountCode != "summer" || len(tr.Rewards) != 1 || tr.Rewards[0].Partner.ID != f.sam.ID {
		t.Fatalf("sale: %v %+v", res, tr)
	}
	c, err := f.s.Customer(context.Background(), "prog", "cus_1")
	if err != nil || c.Partner == nil || c.Partner.Key != "sam" || c.AttributedBy != "code" || c.DiscountCode != "SUMMER" {
		t.Fatalf("customer: %+v %v", c, err)
	}
	// The customer's later sales are sam's, with or without a code.
	f.write(t, func(tx *store.Tx) (err error) {
		tr, res, err = RecordTransaction(tx, f.p, gatewaySale("in_2", "cus_1", ""), Gateway)
		return err
	})
	if res != Created || tr.AttributedBy != "code" || tr.Rewards[0].Partner.ID != f.sam.ID {
		t.Fatalf("second sale: %v %+v", res, tr)
	}
	// A replay is a replay.
	f.write(t, func(tx *store.Tx) (err error) {
		_, res, err = RecordTransaction(tx, f.p, gatewaySale("in_1", "cus_1", "SUMMER"), Gateway)
		return err
	})
	if res != Replayed {
		t.Fatalf("replay: %v", res)
	}
}

// TestGatewayKeptSaleKeepsItsCode: a gateway sale with an unknown code
// waits for its customer; metadata then attributes the customer (By
// metadata) and the kept sale is recorded with its code.
func TestGatewayKeptSaleKeepsItsCode(t *testing.T) {
	f := newFixture(t)
	var res Result
	f.write(t, func(tx *store.Tx) (err error) {
		_, res, err = RecordTransaction(tx, f.p, gatewaySale("in_1", "cus_1", "NOPE"), Gateway)
		return err
	})
	if res != Ignored {
		t.Fatalf("sale of an unknown customer with an unknown code: %v", res)
	}
	var c *store.Customer
	f.write(t, func(tx *store.Tx) (err error) {
		c, res, err = CreateCustomer(tx, f.p, CustomerInput{Key: "cus_1"}, store.PartnerRef{Key: "pat", By: store.AttributedMetadata}, Gateway)
		return err
	})
	if res != Created || c.AttributedBy != "metadata" || c.Partner.Key != "pat" {
		t.Fatalf("customer: %v %+v", res, c)
	}
	tr, err := f.s.Transaction(context.Background(), "prog", "in_1")
	if err != nil || tr.AttributedBy != "metadata" || tr.DiscountCode != "NOPE" || len(tr.Rewards) != 1 || tr.Rewards[0].Partner.Key != "pat" {
		t.Fatalf("kept sale: %+v %v", tr, err)
	}
}

// TestCreateCustomerCodeOrder: CreateCustomer weighs a code against the
// reference as a sale does: an explicit partner first, then the code,
// then cookie or metadata.
func TestCreateCustomerCodeOrder(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		key     string
		ref     store.PartnerRef
		code    string
		mode    Mode
		partner string
		by      string
	}{
		{"c1", store.PartnerRef{Key: "pat", By: store.AttributedMetadata}, "summer", Gateway, "sam", "code"},
		{"c2", store.PartnerRef{Key: "pat", By: store.AttributedCookie}, "SUMMER", Tracked, "sam", "code"},
		{"c3", store.PartnerRef{Key: "pat"}, "SUMMER", REST, "pat", "partner"},
		{"c4", store.PartnerRef{Key: "pat", By: store.AttributedMetadata}, "NOPE", Gateway, "pat", "metadata"},
		{"c5", store.PartnerRef{}, "SUMMER", REST, "sam", "code"},
		{"c6", store.PartnerRef{Key: "ghost", By: store.AttributedMetadata}, "SUMMER", Gateway, "sam", "code"},
	} {
		var c *store.Customer
		f.write(t, func(tx *store.Tx) (err error) {
			c, _, err = CreateCustomer(tx, f.p, CustomerInput{Key: tt.key, DiscountCode: tt.code}, tt.ref, tt.mode)
			return err
		})
		if c == nil || c.Partner == nil || c.Partner.Key != tt.partner || c.AttributedBy != tt.by {
			t.Errorf("%s: %+v, want %s by %s", tt.key, c, tt.partner, tt.by)
		}
	}
}
