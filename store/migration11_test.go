package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// migration11Seed is a schema-10 database's rewards: an old sale (past
// the default 30-day hold), a recent one, an old one refunded in full and
// an old one refunded in part.
func migration11Seed(now time.Time) string {
	old, recent := now.Add(-40*24*time.Hour).Unix(), now.Add(-3*24*time.Hour).Unix()
	return fmt.Sprintf(`
INSERT INTO programs (id, name, currency, commission, api_key_hash, signing_secret, webhook_secret, created_at, updated_at)
	VALUES ('p', 'P', 'USD', '{}', 'h', 's', 'w', 0, 0);
INSERT INTO partners (id, program_id, key, created_at) VALUES (1, 'p', 'alice', 0);
INSERT INTO customers (id, program_id, key, partner_id, created_at) VALUES (1, 'p', 'c1', 1, 0);
INSERT INTO transactions (id, program_id, key, customer_id, amount_minor, currency, action, source, verified, rewardable, status, refunded_minor, created_at) VALUES
	(1, 'p', 'old', 1, 10000, 'USD', 'sale', 'api', TRUE, TRUE, 'ok', 0, %[1]d),
	(2, 'p', 'recent', 1, 5000, 'USD', 'sale', 'api', TRUE, TRUE, 'ok', 0, %[2]d),
	(3, 'p', 'refunded', 1, 3000, 'USD', 'sale', 'api', TRUE, TRUE, 'refunded', 3000, %[1]d),
	(4, 'p', 'partial', 1, 2000, 'USD', 'sale', 'api', TRUE, TRUE, 'ok', 1000, %[1]d);
INSERT INTO rewards (id, transaction_id, partner_id, amount_minor, reversed_minor, currency, status, created_at) VALUES
	(1, 1, 1, 2000, 0, 'USD', 'ok', %[1]d),
	(2, 2, 1, 1000, 0, 'USD', 'ok', %[2]d),
	(3, 3, 1, 600, 600, 'USD', 'reversed', %[1]d),
	(4, 4, 1, 400, 200, 'USD', 'ok', %[1]d)`, old, recent)
}

// TestMigration11 (both engines): existing rewards get their ledger
// state (older than the default hold: approved; refunded in full:
// reversed; else pending) and ledger entries that sum to what each
// reward is worth, in the bucket of its state; programs get the new
// settings' defaults.
func TestMigration11(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			seed := migration11Seed(time.Now())
			var s *Store
			if engine == "postgres" {
				s = openOldPostgresSchema(t, 10, seed)
			} else {
				s = openOldSchema(t, 10, seed)
			}
			ctx := context.Background()
			states, err := s.StringsForTest(ctx, `SELECT state FROM rewards ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(states) != "[approved pending reversed approved]" {
				t.Errorf("states %v, want [approved pending reversed approved]", states)
			}
			for q, want := range map[string]int{
				`SELECT count(*) FROM ledger_entries WHERE kind = 'accrued'`:                                                4,
				`SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE bucket = 'pending'`:                        1000,
				`SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE bucket = 'approved'`:                       2200,
				`SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE reward_id = 3`:                             0,
				`SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE reward_id = 4`:                             200,
				`SELECT count(*) FROM ledger_entries WHERE bucket NOT IN ('pending', 'approved')`:                           0,
				`SELECT count(*) FROM ledger_entries WHERE program_id <> 'p' OR partner_id <> 1`:                            0,
				`SELECT hold_days FROM programs WHERE id = 'p'`:                                                             30,
				`SELECT count(*) FROM programs WHERE min_payout = '{}' AND landing_url = ''`:                                1,
				`SELECT count(*) FROM customers WHERE flags = '' AND flags_approved_at = 0`:                                 1,
				`SELECT count(*) FROM payouts`:                                                                              0,
				`SELECT count(*) FROM partner_pages`:                                                                        0,
				`SELECT count(*) FROM ledger_entries e JOIN rewards r ON r.id = e.reward_id WHERE e.currency <> r.currency`: 0,
			} {
				if n, err := s.CountForTest(ctx, q); err != nil || n != want {
					t.Errorf("%s: %d (%v), want %d", q, n, err, want)
				}
			}
		})
	}
}
