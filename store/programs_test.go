package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/rules"
)

// TestProgramScriptSettingsRoundTrip: the script's settings are stored and
// read back as written, on insert and on update, by Program, Programs and
// the program cache, on both engines; a program without link domains reads
// back an empty list, never nil.
func TestProgramScriptSettingsRoundTrip(t *testing.T) {
	engines := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "p.db") },
		"postgres": func(t *testing.T) string { return testenv.Postgres(t) },
	}
	for name, db := range engines {
		t.Run(name, func(t *testing.T) {
			s, err := Open(db(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx := context.Background()
			p := &Program{ID: "prog1", Name: "Shop", Currency: "USD", CookieDays: 30, ReferralParams: []string{"aff"},
				Attribution: "last", Commission: rules.DefaultCommission(),
				CookieDomain: "shop.example", LinkDomains: []string{"checkout.example", "app.example"},
				RequireConsent: true, RespectDNT: true, SPA: true, StripeCheckout: true}
			if err := s.Write(ctx, func(tx *Tx) error { return tx.InsertProgram(p, "hash-prog1") }); err != nil {
				t.Fatal(err)
			}
			plain := &Program{ID: "prog2", Name: "Plain", Currency: "USD", CookieDays: 30, ReferralParams: []string{"aff"},
				Attribution: "last", Commission: rules.DefaultCommission()}
			if err := s.Write(ctx, func(tx *Tx) error { return tx.InsertProgram(plain, "hash-prog2") }); err != nil {
				t.Fatal(err)
			}

			type settings struct {
				CookieDomain               string
				LinkDomains                []string
				RequireConsent, RespectDNT bool
				SPA, StripeCheckout        bool
			}
			of := func(p *Program) settings {
				return settings{p.CookieDomain, p.LinkDomains, p.RequireConsent, p.RespectDNT, p.SPA, p.StripeCheckout}
			}
			check := func(step, id string, want settings) {
				t.Helper()
				got, err := s.Program(ctx, id)
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				if !reflect.DeepEqual(of(got), want) {
					t.Errorf("%s: Program(%s) = %+v, want %+v", step, id, of(got), want)
				}
				cached, err := s.CachedProgram(ctx, id)
				if err != nil || !reflect.DeepEqual(of(cached), want) {
					t.Errorf("%s: CachedProgram(%s) = %+v (%v), want %+v", step, id, of(cached), err, want)
				}
				list, err := s.Programs(ctx)
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				for _, l := range list {
					if l.ID == id && !reflect.DeepEqual(of(l), want) {
						t.Errorf("%s: Programs() has %s as %+v, want %+v", step, id, of(l), want)
					}
				}
			}
			check("inserted", "prog1", settings{"shop.example", []string{"checkout.example", "app.example"}, true, true, true, true})
			check("inserted with defaults", "prog2", settings{"", []string{}, false, false, false, false})

			// Turned off again, and the other way round for the plain one.
			changed := *p
			changed.CookieDomain, changed.LinkDomains = "", nil
			changed.RequireConsent, changed.RespectDNT, changed.SPA, changed.StripeCheckout = false, false, false, false
			if err := s.Write(ctx, func(tx *Tx) error { return tx.UpdateProgram(&changed) }); err != nil {
				t.Fatal(err)
			}
			check("cleared", "prog1", settings{"", []string{}, false, false, false, false})
			if n, err := s.CountForTest(ctx, `SELECT count(*) FROM programs WHERE id = 'prog1' AND link_domains = '[]'`); err != nil || n != 1 {
				t.Errorf("cleared link_domains not stored as []: %d %v", n, err)
			}

			p2 := *plain
			p2.CookieDomain, p2.LinkDomains, p2.SPA = "plain.example", []string{"pay.example"}, true
			if err := s.Write(ctx, func(tx *Tx) error { return tx.UpdateProgram(&p2) }); err != nil {
				t.Fatal(err)
			}
			check("updated", "prog2", settings{"plain.example", []string{"pay.example"}, false, false, true, false})
			if n, err := s.CountForTest(ctx, `SELECT count(*) FROM programs WHERE id = 'prog2' AND link_domains = '["pay.example"]'`); err != nil || n != 1 {
				t.Errorf("link_domains not stored as JSON text: %d %v", n, err)
			}
		})
	}
}

// TestMigrationScriptSettingsOff: programs of a schema 6 database get
// every script setting off after migration 7, on both engines, and keep
// their other settings.
func TestMigrationScriptSettingsOff(t *testing.T) {
	const seed = `INSERT INTO programs (id, name, currency, js_tracking, cookie_days, referral_params, commission, api_key_hash, signing_secret, webhook_secret, created_at, updated_at)
		VALUES ('old', 'Old', 'EUR', TRUE, 60, '["ref"]', '{"type":"percent","value":"10"}', 'h1', 's', 'w', 0, 0)`
	for name, open := range map[string]func(t *testing.T) *Store{
		"sqlite":   func(t *testing.T) *Store { return openOldSchema(t, 6, seed) },
		"postgres": func(t *testing.T) *Store { return openOldPostgresSchema(t, 6, seed) },
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			p, err := s.Program(context.Background(), "old")
			if err != nil {
				t.Fatal(err)
			}
			if p.CookieDomain != "" || p.LinkDomains == nil || len(p.LinkDomains) != 0 || p.RequireConsent || p.RespectDNT || p.SPA {
				t.Errorf("after migration 7: cookie_domain %q, link_domains %#v, require_consent %v, respect_dnt %v, spa %v; want all off",
					p.CookieDomain, p.LinkDomains, p.RequireConsent, p.RespectDNT, p.SPA)
			}
			if p.Name != "Old" || p.Currency != "EUR" || !p.JSTracking || p.CookieDays != 60 || !reflect.DeepEqual(p.ReferralParams, []string{"ref"}) {
				t.Errorf("the migration changed other settings: %+v", p)
			}
		})
	}
}

// openOldPostgresSchema is openOldSchema on PostgreSQL: a schema of the
// test's own left at version by the first migrations, with seed's rows,
// then opened with this binary's Open (which migrates it).
func openOldPostgresSchema(t *testing.T, version int, seed string) *Store {
	t.Helper()
	url := testenv.Postgres(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	stmts := append(append([]string{`CREATE TABLE potrack_schema (version INTEGER NOT NULL)`}, pgMigrations[:version]...),
		seed, fmt.Sprintf(`INSERT INTO potrack_schema (version) VALUES (%d)`, version))
	for _, q := range stmts {
		if _, err := pool.Exec(ctx, q); err != nil {
			pool.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	pool.Close()
	s, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
