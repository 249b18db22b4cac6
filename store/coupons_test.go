package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/rules"
)

// openEngines opens a new store on each engine: a SQLite file, and a
// PostgreSQL schema of the test's own.
func openEngines() map[string]func(t *testing.T) *Store {
	open := func(t *testing.T, db string) *Store {
		s, err := Open(db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return map[string]func(t *testing.T) *Store{
		"sqlite":   func(t *testing.T) *Store { return open(t, filepath.Join(t.TempDir(), "p.db")) },
		"postgres": func(t *testing.T) *Store { return open(t, testenv.Postgres(t)) },
	}
}

func couponCodes(cs []*Coupon) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Partner.Key+":"+c.Code)
	}
	return out
}

// TestCoupons: codes are stored as typed and found in any case; a code is
// unique per program whatever its case, not across programs; lists per
// program and per partner; delete, then gone; on both engines.
func TestCoupons(t *testing.T) {
	for name, open := range openEngines() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			insertProgram(t, s, "prog")
			insertProgram(t, s, "other")
			var pat, sam, elsewhere *Partner
			err := s.Write(ctx, func(tx *Tx) error {
				pat = &Partner{ProgramID: "prog", Key: "pat"}
				sam = &Partner{ProgramID: "prog", Key: "sam"}
				elsewhere = &Partner{ProgramID: "other", Key: "pat"}
				for _, p := range []*Partner{pat, sam, elsewhere} {
					if err := tx.InsertPartner(p); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			insert := func(program string, p *Partner, code string) error {
				return s.Write(ctx, func(tx *Tx) error {
					return tx.InsertCoupon(&Coupon{ProgramID: program, Partner: p, Code: code})
				})
			}
			for _, c := range []struct {
				program string
				p       *Partner
				code    string
			}{{"prog", pat, "Summer24"}, {"prog", pat, " podcast "}, {"prog", sam, "SAM-10"}, {"other", elsewhere, "summer24"}} {
				if err := insert(c.program, c.p, c.code); err != nil {
					t.Fatalf("insert %q: %v", c.code, err)
				}
			}
			for _, dup := range []string{"SUMMER24", "summer24", " Summer24"} {
				if err := insert("prog", sam, dup); !errors.Is(err, ErrExists) {
					t.Errorf("insert %q again: %v, want ErrExists", dup, err)
				}
			}

			for _, q := range []string{"summer24", "SUMMER24", " Summer24 "} {
				c, err := s.Coupon(ctx, "prog", q)
				if err != nil || c.Code != "Summer24" || c.Partner.Key != "pat" || c.ProgramID != "prog" || c.CreatedAt.IsZero() {
					t.Errorf("Coupon(%q) = %+v, %v", q, c, err)
				}
			}
			var inTx *Coupon
			if err := s.Write(ctx, func(tx *Tx) error {
				var err error
				inTx, err = tx.Coupon("prog", "PODCAST")
				return err
			}); err != nil || inTx.Code != "podcast" || inTx.Partner.ID != pat.ID {
				t.Errorf("Tx.Coupon(PODCAST) = %+v, %v (stored trimmed, found in any case)", inTx, err)
			}
			if err := s.Write(ctx, func(tx *Tx) error { _, err := tx.Coupon("prog", "  "); return err }); !errors.Is(err, ErrNotFound) {
				t.Errorf("Tx.Coupon(blank): %v, want ErrNotFound", err)
			}
			if c, err := s.Coupon(ctx, "other", "SUMMER24"); err != nil || c.Partner.ID != elsewhere.ID {
				t.Errorf("the other program's code: %+v, %v", c, err)
			}
			if _, err := s.Coupon(ctx, "prog", "nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("unknown code: %v", err)
			}

			all, total, err := s.Coupons(ctx, CouponFilter{ProgramID: "prog"})
			if want := []string{"pat:podcast", "sam:SAM-10", "pat:Summer24"}; err != nil || total != 3 || !reflect.DeepEqual(couponCodes(all), want) {
				t.Errorf("Coupons(prog) = %v (%d, %v), want %v", couponCodes(all), total, err, want)
			}
			page, total, err := s.Coupons(ctx, CouponFilter{ProgramID: "prog", Limit: 1, Offset: 1})
			if want := []string{"sam:SAM-10"}; err != nil || total != 3 || !reflect.DeepEqual(couponCodes(page), want) {
				t.Errorf("Coupons(prog, page 2 of 1) = %v (%d, %v), want %v", couponCodes(page), total, err, want)
			}
			mine, total, err := s.Coupons(ctx, CouponFilter{ProgramID: "prog", PartnerID: pat.ID})
			if want := []string{"pat:podcast", "pat:Summer24"}; err != nil || total != 2 || !reflect.DeepEqual(couponCodes(mine), want) {
				t.Errorf("Coupons(pat) = %v (%d, %v), want %v", couponCodes(mine), total, err, want)
			}
			byPartner, err := s.PartnerCoupons(ctx, "prog", []int64{pat.ID, sam.ID, elsewhere.ID})
			if err != nil || len(byPartner) != 2 || !reflect.DeepEqual(couponCodes(byPartner[pat.ID]), []string{"pat:podcast", "pat:Summer24"}) ||
				!reflect.DeepEqual(couponCodes(byPartner[sam.ID]), []string{"sam:SAM-10"}) {
				t.Errorf("PartnerCoupons = %v, %v", byPartner, err)
			}
			if empty, err := s.PartnerCoupons(ctx, "prog", nil); err != nil || len(empty) != 0 {
				t.Errorf("PartnerCoupons(none) = %v, %v", empty, err)
			}

			if err := s.Write(ctx, func(tx *Tx) error { return tx.DeleteCoupon("prog", "SUMMER24") }); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Coupon(ctx, "prog", "summer24"); !errors.Is(err, ErrNotFound) {
				t.Errorf("after delete: %v", err)
			}
			if err := s.Write(ctx, func(tx *Tx) error { return tx.DeleteCoupon("prog", "summer24") }); !errors.Is(err, ErrNotFound) {
				t.Errorf("delete again: %v, want ErrNotFound", err)
			}
			if _, err := s.Coupon(ctx, "other", "summer24"); err != nil {
				t.Errorf("the other program's code went too: %v", err)
			}
			if err := insert("prog", sam, "summer24"); err != nil {
				t.Errorf("a deleted code is free again: %v", err)
			}
		})
	}
}

// TestAttributionColumnsRoundTrip: customers and transactions keep how they
// were attributed and the code a sale named; kept gateway sales keep
// theirs; on both engines.
func TestAttributionColumnsRoundTrip(t *testing.T) {
	for name, open := range openEngines() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			insertProgram(t, s, "prog")
			err := s.Write(ctx, func(tx *Tx) error {
				p := &Partner{ProgramID: "prog", Key: "pat"}
				if err := tx.InsertPartner(p); err != nil {
					return err
				}
				c := &Customer{ProgramID: "prog", Key: "cust", Partner: p, AttributedBy: AttributedCode, DiscountCode: "Summer24"}
				if err := tx.InsertCustomer(c); err != nil {
					return err
				}
				tr := &Transaction{ProgramID: "prog", Key: "order", Customer: c, Amount: rules.Money{Minor: 100, Currency: "USD"},
					Action: "sale", Source: SourceAPI, Rewardable: true, AttributedBy: AttributedCode, DiscountCode: "SUMMER24"}
				if err := tx.InsertTransaction(tr); err != nil {
					return err
				}
				return tx.SavePendingSale("prog", PendingSale{Key: "in_1", CustomerKey: "cus_1", Amount: rules.Money{Minor: 100, Currency: "USD"},
					Action: "sale", Source: SourceGateway, DiscountCode: "NOT-YET", At: tx.Now()})
			})
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.Customer(ctx, "prog", "cust")
			if err != nil || c.AttributedBy != "code" || c.DiscountCode != "Summer24" {
				t.Errorf("customer: %+v, %v", c, err)
			}
			tr, err := s.Transaction(ctx, "prog", "order")
			if err != nil || tr.AttributedBy != "code" || tr.DiscountCode != "SUMMER24" || tr.Customer.AttributedBy != "code" || tr.Customer.DiscountCode != "Summer24" {
				t.Errorf("transaction: %+v (customer %+v), %v", tr, tr.Customer, err)
			}
			list, _, err := s.Transactions(ctx, TransactionFilter{ProgramID: "prog", Limit: 10})
			if err != nil || len(list) != 1 || list[0].AttributedBy != "code" || list[0].DiscountCode != "SUMMER24" {
				t.Errorf("list: %v", err)
			}
			var kept []PendingSale
			if err := s.Write(ctx, func(tx *Tx) error {
				var err error
				kept, err = tx.TakePendingSales("prog", "cus_1")
				return err
			}); err != nil || len(kept) != 1 || kept[0].DiscountCode != "NOT-YET" {
				t.Errorf("kept sale: %+v, %v", kept, err)
			}
		})
	}
}

// TestPaddleWebhookSecret: stored on insert, replaced by SetSecret, read
// back by every way of reading a program; on both engines.
func TestPaddleWebhookSecret(t *testing.T) {
	for name, open := range openEngines() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			p := &Program{ID: "prog", Name: "Shop", Currency: "USD", CookieDays: 30, ReferralParams: []string{"aff"},
				Attribution: "last", Commission: rules.DefaultCommission(), WebhookSecret: "whsec_s", PaddleWebhookSecret: "pdl_1"}
			if err := s.Write(ctx, func(tx *Tx) error { return tx.InsertProgram(p, "h") }); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Program(ctx, "prog"); err != nil || got.PaddleWebhookSecret != "pdl_1" || got.WebhookSecret != "whsec_s" {
				t.Fatalf("inserted: %+v, %v", got, err)
			}
			if err := s.Write(ctx, func(tx *Tx) error { return tx.SetSecret("prog", SecretPaddleWebhookSecret, "pdl_2") }); err != nil {
				t.Fatal(err)
			}
			got, err := s.Program(ctx, "prog")
			if err != nil || got.PaddleWebhookSecret != "pdl_2" || got.WebhookSecret != "whsec_s" {
				t.Fatalf("after SetSecret: %+v, %v", got, err)
			}
			if cached, err := s.CachedProgram(ctx, "prog"); err != nil || cached.PaddleWebhookSecret != "pdl_2" {
				t.Errorf("cached: %v", err)
			}
			// Saving the settings leaves it alone.
			if err := s.Write(ctx, func(tx *Tx) error {
				got.Name = "Renamed"
				got.PaddleWebhookSecret = "ignored"
				return tx.UpdateProgram(got)
			}); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Program(ctx, "prog"); err != nil || got.PaddleWebhookSecret != "pdl_2" {
				t.Errorf("UpdateProgram changed the secret: %+v, %v", got, err)
			}
		})
	}
}

// TestMigrationCoupons: a schema 7 database gains the coupons table and the
// attribution columns; its customers and sales read attributed_by "" (kept
// from schema 8 on) and no code; its programs no Paddle secret; on both
// engines.
func TestMigrationCoupons(t *testing.T) {
	const seed = `INSERT INTO programs (id, name, currency, commission, api_key_hash, signing_secret, webhook_secret, created_at, updated_at)
		VALUES ('old', 'Old', 'USD', '{"type":"percent","value":"10"}', 'h1', 's', 'w', 0, 0);
		INSERT INTO partners (id, program_id, key, created_at) VALUES (1, 'old', 'pat', 0);
		INSERT INTO customers (id, program_id, key, partner_id, created_at) VALUES (1, 'old', 'cust', 1, 0);
		INSERT INTO transactions (program_id, key, customer_id, amount_minor, currency, action, source, verified, rewardable, created_at)
		VALUES ('old', 'order', 1, 100, 'USD', 'sale', 'api', TRUE, TRUE, 0);
		INSERT INTO pending_sales (program_id, key, customer_key, amount_minor, currency, action, product_id, product_type, source, occurred_at, created_at)
		VALUES ('old', 'in_1', 'cus_1', 100, 'USD', 'sale', '', '', 'gateway', 0, 0)`
	for name, open := range map[string]func(t *testing.T) *Store{
		"sqlite":   func(t *testing.T) *Store { return openOldSchema(t, 7, seed) },
		"postgres": func(t *testing.T) *Store { return openOldPostgresSchema(t, 7, seed) },
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			c, err := s.Customer(ctx, "old", "cust")
			if err != nil || c.AttributedBy != "" || c.DiscountCode != "" || c.Partner == nil || c.Partner.Key != "pat" {
				t.Errorf("customer after migration 8: %+v, %v", c, err)
			}
			tr, err := s.Transaction(ctx, "old", "order")
			if err != nil || tr.AttributedBy != "" || tr.DiscountCode != "" {
				t.Errorf("transaction after migration 8: %+v, %v", tr, err)
			}
			p, err := s.Program(ctx, "old")
			if err != nil || p.PaddleWebhookSecret != "" || p.WebhookSecret != "w" {
				t.Errorf("program after migration 8: %+v, %v", p, err)
			}
			if n, err := s.CountForTest(ctx, `SELECT count(*) FROM pending_sales WHERE discount_code = ''`); err != nil || n != 1 {
				t.Errorf("kept sale: %d, %v", n, err)
			}
			// The table works: a code for the old partner.
			if err := s.Write(ctx, func(tx *Tx) error {
				return tx.InsertCoupon(&Coupon{ProgramID: "old", Partner: c.Partner, Code: "OLD"})
			}); err != nil {
				t.Fatal(err)
			}
			if k, err := s.Coupon(ctx, "old", "old"); err != nil || k.Partner.Key != "pat" {
				t.Errorf("coupon after migration: %+v, %v", k, err)
			}
		})
	}
}
