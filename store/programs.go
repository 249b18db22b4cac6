package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/potrack/potrack/rules"
)

// Program is a merchant's affiliate program and its settings.
type Program struct {
	ID                 string
	Name               string
	Currency           string
	JSTracking         bool
	AllowedOrigins     []string
	CookieDays         int
	ReferralParams     []string
	Attribution        string
	JSRequireSignature bool
	Commission         rules.Commission
	// The script's settings: the cookie's domain ("" for the page's host),
	// the merchant's other domains whose links carry the referral, consent
	// before anything is stored or sent, Do-Not-Track and Global Privacy
	// Control honoured, the single-page-app variant of the script, and its
	// Stripe Checkout stamping.
	CookieDomain   string
	LinkDomains    []string
	RequireConsent bool
	RespectDNT     bool
	SPA            bool
	StripeCheckout bool
	// The secrets must stay readable to verify signatures; they are never
	// shown after creation or rotation. The API key is kept only as a hash.
	SigningSecret string
	WebhookSecret string
	// PaddleWebhookSecret verifies Paddle-Signature; like WebhookSecret
	// (Stripe's), readable but never shown after it is set.
	PaddleWebhookSecret string
	// Payouts (docs/payouts.md): a reward is pending for HoldDays after
	// its sale; a batch pays a partner at least MinPayout[currency] minor
	// units (absent: any positive amount); partner pages' referral links
	// point at LandingURL ("" for the first exact allowed origin).
	HoldDays   int
	MinPayout  map[string]int64
	LandingURL string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Secret names a program secret that can be rotated.
type Secret string

const (
	SecretAPIKey        Secret = "api_key"
	SecretSigningSecret Secret = "signing_secret"
	SecretWebhookSecret Secret = "webhook_secret"
	// SecretPaddleWebhookSecret is Paddle's webhook secret.
	SecretPaddleWebhookSecret Secret = "paddle_webhook_secret"
)

const programColumns = `id, name, currency, js_tracking, allowed_origins, cookie_days,
	referral_params, attribution, js_require_signature, commission, signing_secret,
	webhook_secret, created_at, updated_at, cookie_domain, link_domains, require_consent,
	respect_dnt, spa, paddle_webhook_secret, stripe_checkout, hold_days, min_payout, landing_url`

const insertProgramSQL = `INSERT INTO programs (id, name, currency, js_tracking, allowed_origins,
	cookie_days, referral_params, attribution, js_require_signature, commission, api_key_hash,
	signing_secret, webhook_secret, created_at, updated_at, cookie_domain, link_domains,
	require_consent, respect_dnt, spa, paddle_webhook_secret, stripe_checkout, hold_days, min_payout, landing_url)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const updateProgramSQL = `UPDATE programs SET name = ?, currency = ?, js_tracking = ?,
	allowed_origins = ?, cookie_days = ?, referral_params = ?, attribution = ?,
	js_require_signature = ?, commission = ?, cookie_domain = ?, link_domains = ?,
	require_consent = ?, respect_dnt = ?, spa = ?, stripe_checkout = ?, hold_days = ?, min_payout = ?,
	landing_url = ?, updated_at = ? WHERE id = ?`

// InsertProgram stores a new program; apiKeyHash is the hash of its API key.
func (t *Tx) InsertProgram(p *Program, apiKeyHash string) error {
	t.programsChanged = true
	p.CreatedAt, p.UpdatedAt = t.now, t.now
	j, err := programJSON(p)
	if err != nil {
		return err
	}
	_, err = t.exec(insertProgramSQL, p.ID, p.Name, p.Currency, p.JSTracking, j.origins,
		p.CookieDays, j.params, p.Attribution, p.JSRequireSignature, j.commission, apiKeyHash,
		p.SigningSecret, p.WebhookSecret, unix(p.CreatedAt), unix(p.UpdatedAt),
		p.CookieDomain, j.linkDomains, p.RequireConsent, p.RespectDNT, p.SPA, p.PaddleWebhookSecret, p.StripeCheckout,
		p.HoldDays, j.minPayout, p.LandingURL)
	return err
}

// UpdateProgram saves a program's settings (not its secrets).
func (t *Tx) UpdateProgram(p *Program) error {
	t.programsChanged = true
	p.UpdatedAt = t.now
	j, err := programJSON(p)
	if err != nil {
		return err
	}
	res, err := t.exec(updateProgramSQL, p.Name, p.Currency, p.JSTracking, j.origins,
		p.CookieDays, j.params, p.Attribution, p.JSRequireSignature, j.commission,
		p.CookieDomain, j.linkDomains, p.RequireConsent, p.RespectDNT, p.SPA, p.StripeCheckout,
		p.HoldDays, j.minPayout, p.LandingURL, unix(p.UpdatedAt), p.ID)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// SetSecret replaces one secret of a program. For SecretAPIKey, value is the
// new key's hash.
func (t *Tx) SetSecret(programID string, which Secret, value string) error {
	t.programsChanged = true
	var query string
	switch which {
	case SecretAPIKey:
		query = `UPDATE programs SET api_key_hash = ?, updated_at = ? WHERE id = ?`
	case SecretSigningSecret:
		query = `UPDATE programs SET signing_secret = ?, updated_at = ? WHERE id = ?`
	case SecretWebhookSecret:
		query = `UPDATE programs SET webhook_secret = ?, updated_at = ? WHERE id = ?`
	case SecretPaddleWebhookSecret:
		query = `UPDATE programs SET paddle_webhook_secret = ?, updated_at = ? WHERE id = ?`
	default:
		return fmt.Errorf("unknown secret %q", which)
	}
	res, err := t.exec(query, value, unix(t.now), programID)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// Program returns one program.
func (s *Store) Program(ctx context.Context, id string) (*Program, error) {
	return programWhere(ctx, s.read, `id = ?`, id)
}

// Program returns one program as the transaction sees it.
func (t *Tx) Program(id string) (*Program, error) {
	ctx, q := t.q()
	return programWhere(ctx, q, `id = ?`, id)
}

// ProgramByAPIKeyHash finds the program whose API key hashes to hash.
func (s *Store) ProgramByAPIKeyHash(ctx context.Context, hash string) (*Program, error) {
	return programWhere(ctx, s.read, `api_key_hash = ?`, hash)
}

// Programs lists every program, newest first.
// AnyProgram reports, inside the write, whether the database holds a
// program.
func (t *Tx) AnyProgram() (bool, error) {
	var n int
	err := t.queryRow(`SELECT count(*) FROM (SELECT 1 FROM programs LIMIT 1) AS x`).Scan(&n)
	return n > 0, err
}

func (s *Store) Programs(ctx context.Context) ([]*Program, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+programColumns+` FROM programs ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Program
	for rows.Next() {
		p, err := scanProgram(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func programWhere(ctx context.Context, q querier, where string, args ...any) (*Program, error) {
	p, err := scanProgram(q.QueryRowContext(ctx, `SELECT `+programColumns+` FROM programs WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return p, err
}

type scanner interface{ Scan(dest ...any) error }

func scanProgram(row scanner) (*Program, error) {
	var (
		p                                  Program
		origins, params, comm, linkDomains string
		minPayout                          string
		created, updated                   int64
	)
	err := row.Scan(&p.ID, &p.Name, &p.Currency, &p.JSTracking, &origins, &p.CookieDays,
		&params, &p.Attribution, &p.JSRequireSignature, &comm, &p.SigningSecret,
		&p.WebhookSecret, &created, &updated, &p.CookieDomain, &linkDomains,
		&p.RequireConsent, &p.RespectDNT, &p.SPA, &p.PaddleWebhookSecret, &p.StripeCheckout,
		&p.HoldDays, &minPayout, &p.LandingURL)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(origins), &p.AllowedOrigins); err != nil {
		return nil, fmt.Errorf("program %s allowed_origins: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(params), &p.ReferralParams); err != nil {
		return nil, fmt.Errorf("program %s referral_params: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(comm), &p.Commission); err != nil {
		return nil, fmt.Errorf("program %s commission: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(linkDomains), &p.LinkDomains); err != nil {
		return nil, fmt.Errorf("program %s link_domains: %w", p.ID, err)
	}
	if p.LinkDomains == nil {
		p.LinkDomains = []string{}
	}
	if err := json.Unmarshal([]byte(minPayout), &p.MinPayout); err != nil {
		return nil, fmt.Errorf("program %s min_payout: %w", p.ID, err)
	}
	if p.MinPayout == nil {
		p.MinPayout = map[string]int64{}
	}
	p.CreatedAt, p.UpdatedAt = fromUnix(created), fromUnix(updated)
	return &p, nil
}

// programJSONText is a program's list and object columns as stored.
type programJSONText struct{ origins, params, commission, linkDomains, minPayout string }

func programJSON(p *Program) (programJSONText, error) {
	if p.AllowedOrigins == nil {
		p.AllowedOrigins = []string{}
	}
	if p.LinkDomains == nil {
		p.LinkDomains = []string{}
	}
	if p.MinPayout == nil {
		p.MinPayout = map[string]int64{}
	}
	var out programJSONText
	for _, f := range []struct {
		dst *string
		v   any
	}{{&out.origins, p.AllowedOrigins}, {&out.params, p.ReferralParams}, {&out.commission, p.Commission}, {&out.linkDomains, p.LinkDomains},
		{&out.minPayout, p.MinPayout}} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return programJSONText{}, err
		}
		*f.dst = string(b)
	}
	return out, nil
}

func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Setting reads a server-wide setting; ErrNotFound when unset.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.read.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return v, err
}

// SetSetting writes a server-wide setting.
// Setting reads a setting inside the write: with the write lock held, a
// read-then-set decides once among processes starting together.
func (t *Tx) Setting(key string) (string, error) {
	var v string
	err := t.queryRow(`SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return v, err
}

func (t *Tx) SetSetting(key, value string) error {
	_, err := t.exec(`INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}
