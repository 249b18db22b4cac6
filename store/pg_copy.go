package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgTable is a table as the copy moves it: its columns in order, which
// of them SQLite keeps as 0 and 1 for a BOOLEAN, and whether its id is
// an identity column whose sequence must move past the copied ids.
type pgTable struct {
	name     string
	columns  []string
	bools    map[string]bool
	identity bool
}

// pgTables lists every table of schema version SchemaVersion, parents
// before children (foreign keys hold row by row).
var pgTables = []pgTable{
	{name: "programs", columns: []string{"id", "name", "currency", "js_tracking", "allowed_origins", "cookie_days", "referral_params",
		"attribution", "js_require_signature", "commission", "api_key_hash", "signing_secret", "webhook_secret", "created_at", "updated_at",
		"cookie_domain", "link_domains", "require_consent", "respect_dnt", "spa", "paddle_webhook_secret", "stripe_checkout",
		"hold_days", "min_payout", "landing_url", "archived_at"},
		bools: map[string]bool{"js_tracking": true, "js_require_signature": true, "require_consent": true, "respect_dnt": true, "spa": true, "stripe_checkout": true}},
	{name: "partners", columns: []string{"id", "program_id", "key", "email", "name", "created_at"}, identity: true},
	{name: "customers", columns: []string{"id", "program_id", "key", "name", "email", "partner_id", "created_at", "attributed_by", "discount_code",
		"flags", "flags_approved_at"}, identity: true},
	{name: "transactions", columns: []string{"id", "program_id", "key", "customer_id", "amount_minor", "currency", "action", "product_id",
		"product_type", "source", "verified", "rewardable", "status", "refunded_minor", "created_at", "attributed_by", "discount_code"},
		bools: map[string]bool{"verified": true, "rewardable": true}, identity: true},
	{name: "rewards", columns: []string{"id", "transaction_id", "partner_id", "amount_minor", "reversed_minor", "currency", "status", "created_at", "state"}, identity: true},
	{name: "clicks", columns: []string{"id", "program_id", "partner_id", "url", "referrer", "created_at", "flags"}, identity: true},
	{name: "settings", columns: []string{"key", "value"}},
	{name: "pending_refunds", columns: []string{"program_id", "key", "refunded_minor", "created_at"}},
	{name: "payment_links", columns: []string{"program_id", "payment", "invoice", "created_at"}},
	{name: "pending_sales", columns: []string{"program_id", "key", "customer_key", "amount_minor", "currency", "action", "product_id",
		"product_type", "source", "payment", "occurred_at", "created_at", "discount_code"}},
	{name: "admin_sessions", columns: []string{"token_hash", "admin_hash", "created_at", "last_seen_at", "expires_at"}},
	{name: "shown_once", columns: []string{"id", "session_hash", "sealed", "created_at", "expires_at"}},
	{name: "coupons", columns: []string{"id", "program_id", "partner_id", "code", "code_norm", "created_at"}, identity: true},
	{name: "refusal_counts", columns: []string{"program_id", "hour", "reason", "n"}},
	{name: "refusals", columns: []string{"id", "program_id", "reason", "call_type", "origin", "partner_key", "key", "field", "created_at"}, identity: true},
	{name: "payouts", columns: []string{"id", "program_id", "status", "reference", "created_at", "paid_at"}, identity: true},
	{name: "payout_items", columns: []string{"id", "payout_id", "partner_id", "currency", "rewards_minor", "clawback_minor", "amount_minor", "reward_count"}, identity: true},
	{name: "ledger_entries", columns: []string{"id", "program_id", "partner_id", "currency", "kind", "bucket", "amount_minor", "reward_id", "payout_id", "created_at"}, identity: true},
	{name: "payout_rewards", columns: []string{"reward_id", "item_id", "amount_minor"}},
	{name: "payout_clawbacks", columns: []string{"entry_id", "item_id", "amount_minor"}},
	{name: "partner_pages", columns: []string{"partner_id", "token_hash", "created_at", "revoked_at"}},
	{name: "webhook_endpoints", columns: []string{"id", "program_id", "url", "events", "enabled", "secret", "old_secret",
		"old_secret_until", "failing_since", "created_at", "updated_at"}, bools: map[string]bool{"enabled": true}, identity: true},
	{name: "webhook_events", columns: []string{"id", "program_id", "type", "payload", "created_at"}},
	{name: "webhook_deliveries", columns: []string{"id", "event_id", "endpoint_id", "status", "attempts", "next_attempt_at",
		"leased_until", "started_at", "last_attempt_at", "last_status", "last_error", "delivered_at", "created_at"}, identity: true},
}

// TableCount is how many rows of a table a copy moved.
type TableCount struct {
	Table string
	Rows  int
}

// CopyToPostgres copies every row of the SQLite database at src into the
// PostgreSQL database at url, ids, keys and hashes as they are, and checks
// that each table holds as many rows as the source. The target's schema is
// brought up to date first; a target that holds any row is refused, so a
// second run changes nothing. The copy is one PostgreSQL transaction (all
// or nothing) reading one SQLite snapshot: stop potrack first, or sales
// recorded after the snapshot are not in the copy.
func CopyToPostgres(ctx context.Context, src, url string) ([]TableCount, error) {
	if IsPostgresURL(src) {
		return nil, errors.New("--from names the SQLite file to copy, not a PostgreSQL database")
	}
	if fi, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("no database at %s: %s", src, Describe(err))
	} else if fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder; name the database file", src)
	}
	lite, err := sql.Open("sqlite3", "file:"+escapePath(src)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return nil, err
	}
	defer lite.Close()
	snap, err := lite.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read %s: %s", src, Describe(err))
	}
	defer snap.Rollback()
	var version int
	if err := snap.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return nil, fmt.Errorf("read %s: %s", src, Describe(err))
	}
	switch {
	case version == 0:
		return nil, fmt.Errorf("%s is not a potrack database", src)
	case version < SchemaVersion:
		return nil, fmt.Errorf("%s has schema version %d: start this potrack on it once (it upgrades the file to %d), then copy it", src, version, SchemaVersion)
	case version > SchemaVersion:
		return nil, fmt.Errorf("%s has schema version %d but this potrack knows only %d: use a newer potrack", src, version, SchemaVersion)
	}

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("the PostgreSQL URL: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := migratePostgres(ctx, pool); err != nil {
		return nil, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	// One copy at a time, and none while instances migrate the schema.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgMigrationLock)); err != nil {
		return nil, err
	}
	var held []string
	for _, t := range pgTables {
		var any bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.name+`)`).Scan(&any); err != nil {
			return nil, err
		}
		if any {
			held = append(held, t.name)
		}
	}
	if len(held) > 0 {
		return nil, fmt.Errorf("the target already holds rows (in %s): potrack migrate copies into an empty database only, and copies nothing here", strings.Join(held, ", "))
	}

	var counts []TableCount
	for _, t := range pgTables {
		want, err := countRows(snap, t.name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %s", src, Describe(err))
		}
		rows, err := snap.Query(`SELECT ` + strings.Join(t.columns, ", ") + ` FROM ` + t.name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %s", t.name, Describe(err))
		}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, &liteRows{rows: rows, table: t})
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", t.name, err)
		}
		var got int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+t.name).Scan(&got); err != nil {
			return nil, err
		}
		if int(n) != want || got != want {
			return nil, fmt.Errorf("copy %s: %d rows in the source, %d copied, %d in the target; nothing was kept", t.name, want, n, got)
		}
		if t.identity {
			// New rows continue after the copied ids.
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('`+t.name+`', 'id'), COALESCE(max(id), 1), max(id) IS NOT NULL) FROM `+t.name); err != nil {
				return nil, err
			}
		}
		counts = append(counts, TableCount{t.name, want})
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return counts, nil
}

func countRows(q *sql.Tx, table string) (int, error) {
	var n int
	// Table names are ours, not input.
	err := q.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n)
	return n, err
}

// liteRows feeds SQLite rows to PostgreSQL's COPY, turning SQLite's 0 and
// 1 into booleans where the PostgreSQL column is one.
type liteRows struct {
	rows  *sql.Rows
	table pgTable
	vals  []any
	err   error
}

func (r *liteRows) Next() bool {
	if !r.rows.Next() {
		r.err = r.rows.Err()
		return false
	}
	r.vals = make([]any, len(r.table.columns))
	ptrs := make([]any, len(r.vals))
	for i := range r.vals {
		ptrs[i] = &r.vals[i]
	}
	if r.err = r.rows.Scan(ptrs...); r.err != nil {
		return false
	}
	for i, c := range r.table.columns {
		if !r.table.bools[c] {
			continue
		}
		n, ok := r.vals[i].(int64)
		if !ok {
			r.err = fmt.Errorf("%s.%s holds %v, not 0 or 1", r.table.name, c, r.vals[i])
			return false
		}
		r.vals[i] = n != 0
	}
	return true
}

func (r *liteRows) Values() ([]any, error) { return r.vals, nil }
func (r *liteRows) Err() error             { return r.err }
