package store

import (
	"database/sql"
	"fmt"
)

// migrations are applied in order, each in its own transaction; the schema
// version is their count, kept in PRAGMA user_version. Never edit a
// migration that has shipped: append a new one.
var migrations = []string{
	// 1: the tracking core.
	`
CREATE TABLE programs (
	id                   TEXT PRIMARY KEY,
	name                 TEXT NOT NULL,
	currency             TEXT NOT NULL,
	js_tracking          INTEGER NOT NULL DEFAULT 0,
	allowed_origins      TEXT NOT NULL DEFAULT '[]',
	cookie_days          INTEGER NOT NULL DEFAULT 30,
	referral_params      TEXT NOT NULL DEFAULT '["aff"]',
	attribution          TEXT NOT NULL DEFAULT 'last',
	js_require_signature INTEGER NOT NULL DEFAULT 0,
	commission           TEXT NOT NULL,
	api_key_hash         TEXT NOT NULL UNIQUE,
	signing_secret       TEXT NOT NULL,
	webhook_secret       TEXT NOT NULL,
	created_at           INTEGER NOT NULL,
	updated_at           INTEGER NOT NULL
);
CREATE TABLE partners (
	id         INTEGER PRIMARY KEY,
	program_id TEXT NOT NULL REFERENCES programs(id),
	key        TEXT NOT NULL,
	email      TEXT NOT NULL DEFAULT '',
	name       TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	UNIQUE (program_id, key)
);
CREATE INDEX partners_email ON partners (program_id, email);
CREATE TABLE customers (
	id         INTEGER PRIMARY KEY,
	program_id TEXT NOT NULL REFERENCES programs(id),
	key        TEXT NOT NULL,
	name       TEXT NOT NULL DEFAULT '',
	email      TEXT NOT NULL DEFAULT '',
	partner_id INTEGER REFERENCES partners(id),
	created_at INTEGER NOT NULL,
	UNIQUE (program_id, key)
);
CREATE INDEX customers_partner ON customers (partner_id);
CREATE TABLE transactions (
	id             INTEGER PRIMARY KEY,
	program_id     TEXT NOT NULL REFERENCES programs(id),
	key            TEXT NOT NULL,
	customer_id    INTEGER REFERENCES customers(id),
	amount_minor   INTEGER NOT NULL,
	currency       TEXT NOT NULL,
	action         TEXT NOT NULL,
	product_id     TEXT NOT NULL DEFAULT '',
	product_type   TEXT NOT NULL DEFAULT '',
	source         TEXT NOT NULL,
	verified       INTEGER NOT NULL,
	rewardable     INTEGER NOT NULL,
	status         TEXT NOT NULL DEFAULT 'ok',
	refunded_minor INTEGER NOT NULL DEFAULT 0,
	created_at     INTEGER NOT NULL,
	UNIQUE (program_id, key)
);
CREATE INDEX transactions_customer ON transactions (customer_id);
CREATE INDEX transactions_program_created ON transactions (program_id, created_at);
CREATE TABLE rewards (
	id             INTEGER PRIMARY KEY,
	transaction_id INTEGER NOT NULL REFERENCES transactions(id),
	partner_id     INTEGER NOT NULL REFERENCES partners(id),
	amount_minor   INTEGER NOT NULL,
	reversed_minor INTEGER NOT NULL DEFAULT 0,
	currency       TEXT NOT NULL,
	status         TEXT NOT NULL,
	created_at     INTEGER NOT NULL
);
CREATE INDEX rewards_transaction ON rewards (transaction_id);
CREATE INDEX rewards_partner ON rewards (partner_id);
CREATE TABLE clicks (
	id         INTEGER PRIMARY KEY,
	program_id TEXT NOT NULL REFERENCES programs(id),
	partner_id INTEGER NOT NULL REFERENCES partners(id),
	url        TEXT NOT NULL DEFAULT '',
	referrer   TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);
CREATE INDEX clicks_partner ON clicks (partner_id);
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`,
	// 2: gateway refunds that arrived before their sale.
	`
CREATE TABLE pending_refunds (
	program_id     TEXT NOT NULL REFERENCES programs(id),
	key            TEXT NOT NULL,
	refunded_minor INTEGER NOT NULL,
	created_at     INTEGER NOT NULL,
	PRIMARY KEY (program_id, key)
);
`,
	// 3: which Stripe charge or PaymentIntent paid which invoice. Since API
	// version 2025-03-31.basil a charge no longer names its invoice;
	// invoice_payment.paid events tell, and refunds of the charge need it.
	`
CREATE TABLE payment_links (
	program_id TEXT NOT NULL REFERENCES programs(id),
	payment    TEXT NOT NULL,
	invoice    TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (program_id, payment)
);
`,
	// 4: gateway sales of customers not (yet) known, kept for a while in
	// case an event that attributes the customer arrives after the sale.
	`
CREATE TABLE pending_sales (
	program_id   TEXT NOT NULL REFERENCES programs(id),
	key          TEXT NOT NULL,
	customer_key TEXT NOT NULL,
	amount_minor INTEGER NOT NULL,
	currency     TEXT NOT NULL,
	action       TEXT NOT NULL,
	product_id   TEXT NOT NULL,
	product_type TEXT NOT NULL,
	source       TEXT NOT NULL,
	payment      TEXT NOT NULL DEFAULT '',
	occurred_at  INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (program_id, key)
);
CREATE INDEX pending_sales_customer ON pending_sales (program_id, customer_key);
CREATE INDEX pending_sales_created ON pending_sales (created_at);
`,
	// 5: admin sessions are rows keyed by the SHA-256 of their cookie
	// token, made under the admin token whose hash they keep. The random key
	// stateless session cookies were signed with goes: nothing in the
	// database may let a reader sign in.
	`
CREATE TABLE admin_sessions (
	token_hash   TEXT PRIMARY KEY,
	admin_hash   TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
DELETE FROM settings WHERE key = 'admin_session_key';
`,
	// 6: browsers keep a cookie at most 400 days (RFC 6265bis; Chromium
	// since 104), so a longer cookie_days promised merchants what no
	// browser keeps: the setting is capped there (server.maxCookieDays).
	`UPDATE programs SET cookie_days = 400 WHERE cookie_days > 400`,
	// 7: the program's settings for the script: the cookie's domain, the
	// merchant's other domains whose links carry the referral, consent,
	// Do-Not-Track and single-page apps. Existing programs keep today's
	// behaviour: every new setting starts off.
	`
ALTER TABLE programs ADD COLUMN cookie_domain TEXT NOT NULL DEFAULT '';
ALTER TABLE programs ADD COLUMN link_domains TEXT NOT NULL DEFAULT '[]';
ALTER TABLE programs ADD COLUMN require_consent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE programs ADD COLUMN respect_dnt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE programs ADD COLUMN spa INTEGER NOT NULL DEFAULT 0;
`,
	// 8: sales without a referral link (issue 13). Coupon codes belong to
	// partners: code as the merchant typed it, code_norm lower-cased and
	// trimmed, unique per program. Customers and transactions keep how
	// their partner was decided (attributed_by: partner, cookie, code or
	// metadata) and the discount code a sale named; a customer attributed
	// by a code keeps that code. Rows stored before this migration keep
	// attributed_by '' ("recorded before this was kept"): it cannot be
	// derived afterwards (a REST customer may have been created by a
	// transaction naming a partner or by POST /v1/customers, a browser
	// sale's customer may have signed up through the REST API), so no
	// guess is written. A gateway sale kept for its customer keeps its
	// code; Paddle gets a webhook secret of its own.
	`
CREATE TABLE coupons (
	id         INTEGER PRIMARY KEY,
	program_id TEXT NOT NULL REFERENCES programs(id),
	partner_id INTEGER NOT NULL REFERENCES partners(id),
	code       TEXT NOT NULL,
	code_norm  TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (program_id, code_norm)
);
CREATE INDEX coupons_partner ON coupons (partner_id);
ALTER TABLE customers ADD COLUMN attributed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN discount_code TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN attributed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN discount_code TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_sales ADD COLUMN discount_code TEXT NOT NULL DEFAULT '';
ALTER TABLE programs ADD COLUMN paddle_webhook_secret TEXT NOT NULL DEFAULT '';
`,
	// 9: the script stamps Stripe Payment Links, pricing tables and buy
	// buttons with the partner (its stripe variant); off for every program
	// until the merchant turns it on.
	`ALTER TABLE programs ADD COLUMN stripe_checkout INTEGER NOT NULL DEFAULT 0`,
	// 10: what /collect refused, and indexes for the admin's numbers
	// (issue 14). refusal_counts holds a count per program, UTC hour
	// (unix seconds of its start) and reason (the error code), added to
	// by each instance's flushes and pruned after 90 days; refusals holds
	// the last 50 refused calls per program (never an IP, never a body).
	// Clicks and customers are counted per program or partner over a date
	// range: the indexes by partner gain the date (replacing the ones
	// without it, so a click or a customer costs no extra index), and
	// customers get one by program and date for the sign-ups of a day.
	`
CREATE TABLE refusal_counts (
	program_id TEXT NOT NULL REFERENCES programs(id),
	hour       INTEGER NOT NULL,
	reason     TEXT NOT NULL,
	n          INTEGER NOT NULL,
	PRIMARY KEY (program_id, hour, reason)
);
CREATE INDEX refusal_counts_hour ON refusal_counts (hour);
CREATE TABLE refusals (
	id          INTEGER PRIMARY KEY,
	program_id  TEXT NOT NULL REFERENCES programs(id),
	reason      TEXT NOT NULL,
	call_type   TEXT NOT NULL DEFAULT '',
	origin      TEXT NOT NULL DEFAULT '',
	partner_key TEXT NOT NULL DEFAULT '',
	key         TEXT NOT NULL DEFAULT '',
	field       TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
);
CREATE INDEX refusals_program ON refusals (program_id, created_at);
CREATE INDEX clicks_partner_created ON clicks (partner_id, created_at);
DROP INDEX clicks_partner;
CREATE INDEX customers_partner_created ON customers (partner_id, created_at);
DROP INDEX customers_partner;
CREATE INDEX customers_program_created ON customers (program_id, created_at);
`,
	// 11: partners get paid (issue 15). A reward has a ledger state:
	// pending until the program's hold_days have passed since the sale,
	// then approved, in_payout once a payout batch holds it, paid once
	// that batch is marked paid, or reversed when refunded in full before
	// it was batched (status keeps ok/reversed as before). Balances are
	// sums of ledger_entries, an append-only list of signed amounts per
	// bucket (pending, approved, in_payout, paid, clawback): accrued,
	// approved (a pair), reversed, batched (a pair), clawback (a refund
	// after batching), netted (a clawback settled by a batch, a pair) and
	// paid (a pair per batch item); see docs/payouts.md. An entry keeps its
	// reward's id without a foreign key: a replaced unverified sale's
	// reward row goes, its entries (which then net to zero) stay.
	// payout_rewards' key is the reward: a reward is in one batch at most;
	// payout_clawbacks' the clawback entry: netted once at most.
	//
	// Existing rewards become entries: accrued (at the reward's time), a
	// reversal of what was reversed, and an approval of what is left when
	// the sale is older than the default hold (30 days); state follows.
	// Customers and clicks get fraud flags (rows stored before keep none);
	// partners a private page whose link's token is kept as its SHA-256
	// hash; programs hold_days, min_payout (minor units per currency, as
	// JSON) and landing_url (where referral links point; '' for the first
	// allowed origin).
	`
ALTER TABLE programs ADD COLUMN hold_days INTEGER NOT NULL DEFAULT 30;
ALTER TABLE programs ADD COLUMN min_payout TEXT NOT NULL DEFAULT '{}';
ALTER TABLE programs ADD COLUMN landing_url TEXT NOT NULL DEFAULT '';
ALTER TABLE rewards ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE customers ADD COLUMN flags TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN flags_approved_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clicks ADD COLUMN flags TEXT NOT NULL DEFAULT '';
CREATE INDEX rewards_pending ON rewards (transaction_id) WHERE state = 'pending';
CREATE INDEX rewards_approved ON rewards (partner_id) WHERE state = 'approved';
CREATE INDEX clicks_flagged ON clicks (partner_id, created_at) WHERE flags <> '';
CREATE INDEX customers_flagged ON customers (program_id, created_at) WHERE flags <> '';
CREATE TABLE payouts (
	id         INTEGER PRIMARY KEY,
	program_id TEXT NOT NULL REFERENCES programs(id),
	status     TEXT NOT NULL,
	reference  TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	paid_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX payouts_program ON payouts (program_id, id);
CREATE TABLE payout_items (
	id             INTEGER PRIMARY KEY,
	payout_id      INTEGER NOT NULL REFERENCES payouts(id),
	partner_id     INTEGER NOT NULL REFERENCES partners(id),
	currency       TEXT NOT NULL,
	rewards_minor  INTEGER NOT NULL,
	clawback_minor INTEGER NOT NULL,
	amount_minor   INTEGER NOT NULL,
	reward_count   INTEGER NOT NULL,
	UNIQUE (payout_id, partner_id, currency)
);
CREATE INDEX payout_items_partner ON payout_items (partner_id);
CREATE TABLE ledger_entries (
	id           INTEGER PRIMARY KEY,
	program_id   TEXT NOT NULL REFERENCES programs(id),
	partner_id   INTEGER NOT NULL REFERENCES partners(id),
	currency     TEXT NOT NULL,
	kind         TEXT NOT NULL,
	bucket       TEXT NOT NULL,
	amount_minor INTEGER NOT NULL,
	reward_id    INTEGER,
	payout_id    INTEGER REFERENCES payouts(id),
	created_at   INTEGER NOT NULL
);
CREATE INDEX ledger_partner ON ledger_entries (partner_id, currency, bucket);
CREATE INDEX ledger_reward ON ledger_entries (reward_id);
CREATE INDEX ledger_clawbacks ON ledger_entries (program_id, partner_id) WHERE kind = 'clawback';
CREATE UNIQUE INDEX ledger_once ON ledger_entries (reward_id, kind, bucket) WHERE kind IN ('accrued', 'approved', 'batched');
CREATE TABLE payout_rewards (
	reward_id    INTEGER PRIMARY KEY REFERENCES rewards(id),
	item_id      INTEGER NOT NULL REFERENCES payout_items(id),
	amount_minor INTEGER NOT NULL
);
CREATE INDEX payout_rewards_item ON payout_rewards (item_id);
CREATE TABLE payout_clawbacks (
	entry_id     INTEGER PRIMARY KEY REFERENCES ledger_entries(id),
	item_id      INTEGER NOT NULL REFERENCES payout_items(id),
	amount_minor INTEGER NOT NULL
);
CREATE INDEX payout_clawbacks_item ON payout_clawbacks (item_id);
CREATE TABLE partner_pages (
	partner_id INTEGER PRIMARY KEY REFERENCES partners(id),
	token_hash TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL DEFAULT 0
);
UPDATE rewards SET state = CASE
	WHEN status = 'reversed' THEN 'reversed'
	WHEN (SELECT t.created_at FROM transactions t WHERE t.id = rewards.transaction_id) <= CAST(strftime('%s', 'now') AS INTEGER) - 30 * 86400 THEN 'approved'
	ELSE 'pending' END;
INSERT INTO ledger_entries (program_id, partner_id, currency, kind, bucket, amount_minor, reward_id, created_at)
	SELECT t.program_id, r.partner_id, r.currency, 'accrued', 'pending', r.amount_minor, r.id, r.created_at
	FROM rewards r JOIN transactions t ON t.id = r.transaction_id ORDER BY r.id;
INSERT INTO ledger_entries (program_id, partner_id, currency, kind, bucket, amount_minor, reward_id, created_at)
	SELECT t.program_id, r.partner_id, r.currency, 'reversed', 'pending', -r.reversed_minor, r.id, CAST(strftime('%s', 'now') AS INTEGER)
	FROM rewards r JOIN transactions t ON t.id = r.transaction_id WHERE r.reversed_minor <> 0 ORDER BY r.id;
INSERT INTO ledger_entries (program_id, partner_id, currency, kind, bucket, amount_minor, reward_id, created_at)
	SELECT t.program_id, r.partner_id, r.currency, 'approved', b.bucket, b.sign * (r.amount_minor - r.reversed_minor), r.id, CAST(strftime('%s', 'now') AS INTEGER)
	FROM rewards r JOIN transactions t ON t.id = r.transaction_id
	CROSS JOIN (SELECT 'pending' AS bucket, -1 AS sign UNION ALL SELECT 'approved', 1) b
	WHERE r.state = 'approved' ORDER BY r.id, b.sign;
`,
	// 12: webhooks out (issue 15): endpoints, the outbox's events and their
	// deliveries; the statements are in webhooks_schema.go.
	webhooksMigration,
	// 13: the admin page (issue 14). archived_at: a program archived by
	// the merchant (0: not), hidden from the home list and restorable.
	// shown_once: secrets to show once after a redirect (post/redirect/
	// get), a row per slot, read and deleted by the next page of the
	// session whose token's hash it names, sealed with a key only that
	// session's cookie holds, and gone after expires_at.
	`
ALTER TABLE programs ADD COLUMN archived_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE shown_once (
	id           TEXT PRIMARY KEY,
	session_hash TEXT NOT NULL,
	sealed       TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX shown_once_expires ON shown_once (expires_at);
`,
}

// SchemaVersion is the schema this binary writes.
var SchemaVersion = len(migrations)

// migrate applies the missing migrations. Several potrack processes may
// start on one new database at once: each step reads the version inside its
// own write transaction (BEGIN IMMEDIATE, from _txlock=immediate), so one
// process applies it while the others wait on the lock, then find it done.
func migrate(db *sql.DB) error {
	for {
		done, err := migrateStep(db)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next migration, if any, under the write lock.
func migrateStep(db *sql.DB) (done bool, err error) {
	tx, err := db.Begin()
	if err != nil {
		return false, fmt.Errorf("lock the database for migrations: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return false, fmt.Errorf("the database has schema version %d but this potrack knows only %d: upgrade potrack", version, len(migrations))
	}
	if version == len(migrations) {
		return true, nil
	}
	if _, err := tx.Exec(migrations[version]); err != nil {
		return false, fmt.Errorf("migration %d: %w", version+1, err)
	}
	// PRAGMA takes no parameters; version+1 is our own integer.
	if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
		return false, fmt.Errorf("migration %d: %w", version+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %d: %w", version+1, err)
	}
	return false, nil
}
