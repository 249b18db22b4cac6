package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/rules"
)

// fillEveryTable stores rows in every table of the schema.
func fillEveryTable(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	insertProgram(t, s, "prog")
	err := s.Write(ctx, func(tx *Tx) error {
		p := &Program{ID: "prog2", Name: "Two", Currency: "EUR", JSTracking: true, JSRequireSignature: true, CookieDays: 30,
			ReferralParams: []string{"aff"}, Attribution: "first", Commission: rules.DefaultCommission()}
		if err := tx.InsertProgram(p, "hash-prog2"); err != nil {
			return err
		}
		for i := range 3 {
			partner := &Partner{ProgramID: "prog", Key: fmt.Sprint("pat", i), Email: fmt.Sprintf("p%d@example.com", i)}
			if err := tx.InsertPartner(partner); err != nil {
				return err
			}
			c := &Customer{ProgramID: "prog", Key: fmt.Sprint("cust", i), Partner: partner}
			if err := tx.InsertCustomer(c); err != nil {
				return err
			}
			tr := &Transaction{ProgramID: "prog", Key: fmt.Sprint("order", i), Customer: c, Amount: rules.Money{Minor: 1999, Currency: "USD"},
				Action: "sale", Source: SourceJS, Verified: i == 1, Rewardable: true,
				Rewards: []*Reward{{Partner: partner, Amount: rules.Money{Minor: 400, Currency: "USD"}}}}
			if err := tx.InsertTransaction(tr); err != nil {
				return err
			}
		}
		if err := tx.SetSetting("admin_token_hash", "abc123"); err != nil {
			return err
		}
		if err := tx.SavePendingRefund("prog", "order_later", 500); err != nil {
			return err
		}
		if err := tx.LinkPayment("prog", "ch_1", "in_1"); err != nil {
			return err
		}
		if err := tx.SavePendingSale("prog", PendingSale{Key: "in_9", CustomerKey: "cus_9", Amount: rules.Money{Minor: 100, Currency: "USD"},
			Action: "sale", Source: SourceGateway}); err != nil {
			return err
		}
		if _, err := tx.InsertAdminSession("tokhash", "adminhash", time.Hour); err != nil {
			return err
		}
		// Migration 13: an archived program and a secret to show once.
		if err := tx.SetProgramArchived("prog2", true); err != nil {
			return err
		}
		if err := tx.InsertShownOnce("slot1", "tokhash", "sealed", time.Minute); err != nil {
			return err
		}
		if _, err := tx.exec(`INSERT INTO refusal_counts (program_id, hour, reason, n) VALUES ('prog', 1767225600, 'origin_not_allowed', 3)`); err != nil {
			return err
		}
		if _, err := tx.exec(`INSERT INTO refusals (program_id, reason, call_type, origin, partner_key, key, field, created_at)
			VALUES ('prog', 'invalid_field', 'transactions.create', 'https://shop.example', 'pat0', 'order_x', 'data.amount', 1767225601)`); err != nil {
			return err
		}
		// Migration 11: a payout batch that settled the first reward and
		// netted a clawback, and a partner page.
		for _, q := range []string{
			`INSERT INTO payouts (id, program_id, status, reference, created_at, paid_at) VALUES (1, 'prog', 'paid', 'PP-1', 10, 20)`,
			`INSERT INTO payout_items (id, payout_id, partner_id, currency, rewards_minor, clawback_minor, amount_minor, reward_count)
				VALUES (1, 1, 1, 'USD', 400, 100, 300, 1)`,
			`INSERT INTO payout_rewards (reward_id, item_id, amount_minor) VALUES (1, 1, 400)`,
			`INSERT INTO ledger_entries (program_id, partner_id, currency, kind, bucket, amount_minor, reward_id, payout_id, created_at)
				VALUES ('prog', 1, 'USD', 'clawback', 'clawback', -100, 2, NULL, 15)`,
			`INSERT INTO payout_clawbacks (entry_id, item_id, amount_minor) VALUES ((SELECT max(id) FROM ledger_entries), 1, 100)`,
			`INSERT INTO partner_pages (partner_id, token_hash, created_at, revoked_at) VALUES (1, 'pagehash', 10, 0)`,
		} {
			if _, err := tx.exec(q); err != nil {
				return err
			}
		}
		if err := tx.InsertCoupon(&Coupon{ProgramID: "prog", Partner: &Partner{ID: 1}, Code: "Summer-24"}); err != nil {
			return err
		}
		// Migration 12: a webhook endpoint, an event and its delivery.
		if err := tx.InsertWebhookEndpoint(&WebhookEndpoint{ProgramID: "prog", URL: "https://hooks.example/potrack",
			Events: EventTypes, Enabled: true, Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}); err != nil {
			return err
		}
		_, err := tx.Announce("prog", EventPartnerCreated, map[string]string{"key": "pat0"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Partner(ctx, "prog", PartnerRef{Key: "pat0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordClick(ctx, Click{ProgramID: "prog", PartnerID: p.ID, URL: "https://shop.example/?aff=pat0"}); err != nil {
		t.Fatal(err)
	}
}

// TestCopyToPostgres: every row of every table arrives, ids, hashes and
// flags as they were, new rows continue after the copied ids, and a second
// copy into the same database is refused without changing anything.
func TestCopyToPostgres(t *testing.T) {
	url := testenv.Postgres(t)
	s, path := openTest(t)
	fillEveryTable(t, s)
	ctx := context.Background()

	counts, err := CopyToPostgres(ctx, path, url)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != len(pgTables) {
		t.Fatalf("counts for %d tables, want %d", len(counts), len(pgTables))
	}
	for _, c := range counts {
		if c.Rows == 0 {
			t.Errorf("table %s: nothing copied (the fixture fills every table)", c.Table)
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var (
		id                   int64
		verified, rewardable bool
		hash                 string
		jsTracking, signed   bool
	)
	if err := s.read.QueryRow(`SELECT id FROM transactions WHERE key = 'order1'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT verified, rewardable FROM transactions WHERE id = $1 AND key = 'order1'`, id).Scan(&verified, &rewardable); err != nil || !verified || !rewardable {
		t.Fatalf("order1 in PostgreSQL: verified %v rewardable %v (%v)", verified, rewardable, err)
	}
	if err := pool.QueryRow(ctx, `SELECT api_key_hash, js_tracking, js_require_signature FROM programs WHERE id = 'prog2'`).Scan(&hash, &jsTracking, &signed); err != nil ||
		hash != "hash-prog2" || !jsTracking || !signed {
		t.Fatalf("prog2 in PostgreSQL: %q %v %v (%v)", hash, jsTracking, signed, err)
	}
	var next int64
	if err := pool.QueryRow(ctx, `INSERT INTO partners (program_id, key, created_at) VALUES ('prog', 'new', 0) RETURNING id`).Scan(&next); err != nil || next != 4 {
		t.Fatalf("a partner created after the copy got id %d (%v), want 4", next, err)
	}
	var version int
	if err := pool.QueryRow(ctx, `SELECT version FROM potrack_schema`).Scan(&version); err != nil || version != SchemaVersion {
		t.Fatalf("schema version %d (%v), want %d", version, err, SchemaVersion)
	}

	// Again: refused, and nothing changes.
	_, err = CopyToPostgres(ctx, path, url)
	if err == nil || !strings.Contains(err.Error(), "already holds rows") {
		t.Fatalf("second copy: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM transactions`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d transactions after the refused copy, want 3 (%v)", n, err)
	}
}

// TestPostgresMigrationsOnce: instances starting together on a new
// PostgreSQL database apply each migration once, under the advisory lock.
func TestPostgresMigrationsOnce(t *testing.T) {
	url := testenv.Postgres(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = migratePostgres(ctx, pool)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var version, rows int
	if err := pool.QueryRow(ctx, `SELECT max(version), count(*) FROM potrack_schema`).Scan(&version, &rows); err != nil || version != SchemaVersion || rows != 1 {
		t.Fatalf("schema version %d in %d rows (%v), want %d in 1", version, rows, err, SchemaVersion)
	}
	if len(pgMigrations) != len(migrations) {
		t.Fatalf("%d PostgreSQL migrations for %d SQLite ones: each step must exist on both engines", len(pgMigrations), len(migrations))
	}
}

// TestCopyCoversTheSchema: the copy names every table and column the
// SQLite schema has, so a migration that adds one cannot be left out of
// potrack migrate.
func TestCopyCoversTheSchema(t *testing.T) {
	s, _ := openTest(t)
	rows, err := s.read.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	byName := map[string]pgTable{}
	for _, pt := range pgTables {
		byName[pt.name] = pt
	}
	if len(tables) != len(pgTables) {
		t.Fatalf("SQLite has tables %v; the copy knows %d", tables, len(pgTables))
	}
	for _, name := range tables {
		pt, ok := byName[name]
		if !ok {
			t.Fatalf("table %s is not copied", name)
		}
		cols, err := s.read.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, name)
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for cols.Next() {
			var c string
			cols.Scan(&c)
			have = append(have, c)
		}
		cols.Close()
		if strings.Join(have, ",") != strings.Join(pt.columns, ",") {
			t.Errorf("table %s has columns %v; the copy moves %v", name, have, pt.columns)
		}
	}
}
