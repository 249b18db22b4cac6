package store

import (
	"context"
	"slices"
	"testing"
)

// TestMigration10: a database of schema 9 gains the refusal tables and
// the date indexes of clicks and customers (those without the date go),
// and keeps its rows.
func TestMigration10(t *testing.T) {
	s := openOldSchema(t, 9, `
INSERT INTO programs (id, name, currency, commission, api_key_hash, signing_secret, webhook_secret, created_at, updated_at)
	VALUES ('p', 'P', 'USD', '{}', 'h', 's', 'w', 0, 0);
INSERT INTO partners (id, program_id, key, created_at) VALUES (1, 'p', 'alice', 0);
INSERT INTO customers (program_id, key, partner_id, created_at) VALUES ('p', 'c1', 1, 10);
INSERT INTO clicks (program_id, partner_id, created_at) VALUES ('p', 1, 5)`)
	ctx := context.Background()
	for q, want := range map[string]int{
		`SELECT count(*) FROM clicks`:         1,
		`SELECT count(*) FROM customers`:      1,
		`SELECT count(*) FROM refusal_counts`: 0,
		`SELECT count(*) FROM refusals`:       0,
	} {
		if n, err := s.CountForTest(ctx, q); err != nil || n != want {
			t.Errorf("%s: %d (%v), want %d", q, n, err, want)
		}
	}
	idx, err := s.StringsForTest(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('clicks', 'customers', 'refusal_counts', 'refusals') AND sql IS NOT NULL AND name NOT LIKE '%flagged' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"clicks_partner_created", "customers_partner_created", "customers_program_created", "refusal_counts_hour", "refusals_program"}
	if !slices.Equal(idx, want) {
		t.Errorf("indexes %v, want %v", idx, want)
	}
}
