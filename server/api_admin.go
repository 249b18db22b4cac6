package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/snippet"
	"github.com/potrack/potrack/store"
)

// The admin JSON API: programs and their secrets. The admin page is built
// on the same functions.

const (
	maxOrigins        = 100
	maxReferralParams = 10
	maxCookieDays     = 400 // what browsers keep (RFC 6265bis); store migration 6
)

var referralParamRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// programJSONIn is a create or patch request: absent fields keep their value.
type programJSONIn struct {
	Name               *string           `json:"name"`
	Currency           *string           `json:"currency"`
	JSTracking         *bool             `json:"js_tracking"`
	AllowedOrigins     *[]string         `json:"allowed_origins"`
	CookieDays         *int              `json:"cookie_days"`
	ReferralParams     *[]string         `json:"referral_params"`
	Attribution        *string           `json:"attribution"`
	JSRequireSignature *bool             `json:"js_require_signature"`
	Commission         *rules.Commission `json:"commission"`
	// The script's settings (see snippet.Settings).
	CookieDomain   *string   `json:"cookie_domain"`
	LinkDomains    *[]string `json:"link_domains"`
	RequireConsent *bool     `json:"require_consent"`
	RespectDNT     *bool     `json:"respect_dnt"`
	SPA            *bool     `json:"spa"`
	StripeCheckout *bool     `json:"stripe_checkout"`
	// WebhookSecret lets a merchant paste the signing secret Stripe shows
	// for the endpoint; it is write-only like every secret.
	WebhookSecret *string `json:"webhook_secret"`
	// PaddleWebhookSecret is the secret key Paddle shows for the
	// notification destination; write-only like every secret.
	PaddleWebhookSecret *string `json:"paddle_webhook_secret"`
	// Payouts (docs/payouts.md): the hold in days, the minimum payout in
	// minor units per currency, and where partner pages' referral links
	// point.
	HoldDays   *int              `json:"hold_days"`
	MinPayout  *map[string]int64 `json:"min_payout"`
	LandingURL *string           `json:"landing_url"`
}

func newProgram() *store.Program {
	return &store.Program{
		Currency: "USD", AllowedOrigins: []string{}, CookieDays: 30, ReferralParams: []string{"aff"},
		Attribution: "last", Commission: rules.DefaultCommission(), LinkDomains: []string{},
		HoldDays: defaultHoldDays, MinPayout: map[string]int64{},
	}
}

// apply validates the request and writes it onto p.
func (in *programJSONIn) apply(p *store.Program) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if err := checkText("name", name, 200, true); err != nil {
			return err
		}
		p.Name = name
	}
	if in.Currency != nil {
		c, err := rules.NormalizeCurrency(*in.Currency)
		if err != nil {
			return invalid("currency", "currency must be an ISO 4217 code such as USD.")
		}
		p.Currency = c
	}
	if in.JSTracking != nil {
		p.JSTracking = *in.JSTracking
	}
	if in.AllowedOrigins != nil {
		if len(*in.AllowedOrigins) > maxOrigins {
			return invalid("allowed_origins", fmt.Sprintf("At most %d allowed origins.", maxOrigins))
		}
		origins := []string{}
		seen := map[string]bool{}
		for i, o := range *in.AllowedOrigins {
			n, err := normalizeOrigin(o)
			if err != nil {
				return invalid(fmt.Sprintf("allowed_origins[%d]", i), err.Error()+".")
			}
			if !seen[n] {
				seen[n] = true
				origins = append(origins, n)
			}
		}
		p.AllowedOrigins = origins
	}
	if in.CookieDays != nil {
		if *in.CookieDays < 1 || *in.CookieDays > maxCookieDays {
			return invalid("cookie_days", fmt.Sprintf("cookie_days must be from 1 to %d.", maxCookieDays))
		}
		p.CookieDays = *in.CookieDays
	}
	if in.ReferralParams != nil {
		params := *in.ReferralParams
		if len(params) < 1 || len(params) > maxReferralParams {
			return invalid("referral_params", fmt.Sprintf("referral_params needs 1 to %d names.", maxReferralParams))
		}
		for i, rp := range params {
			if !referralParamRe.MatchString(rp) {
				return invalid(fmt.Sprintf("referral_params[%d]", i), "A referral parameter is 1 to 32 letters, digits, '_' or '-'.")
			}
		}
		p.ReferralParams = append([]string{}, params...)
	}
	if in.Attribution != nil {
		if *in.Attribution != "first" && *in.Attribution != "last" {
			return invalid("attribution", "attribution is 'first' or 'last'.")
		}
		p.Attribution = *in.Attribution
	}
	if in.JSRequireSignature != nil {
		p.JSRequireSignature = *in.JSRequireSignature
	}
	if in.Commission != nil {
		p.Commission = *in.Commission
	}
	// A currency change can invalidate fixed amounts: check the result.
	if err := p.Commission.Validate(p.Currency); err != nil {
		return err
	}
	if in.CookieDomain != nil {
		d, err := normalizeCookieDomain(*in.CookieDomain)
		if err != nil {
			return err
		}
		p.CookieDomain = d
	}
	if in.LinkDomains != nil {
		list, err := normalizeLinkDomains(*in.LinkDomains)
		if err != nil {
			return err
		}
		p.LinkDomains = list
	}
	if in.RequireConsent != nil {
		p.RequireConsent = *in.RequireConsent
	}
	if in.RespectDNT != nil {
		p.RespectDNT = *in.RespectDNT
	}
	if in.SPA != nil {
		p.SPA = *in.SPA
	}
	if in.StripeCheckout != nil {
		p.StripeCheckout = *in.StripeCheckout
	}
	// The cookie domain must cover an allowed origin, judged on the result:
	// a change of either may break it.
	if p.CookieDomain != "" && (in.CookieDomain != nil || in.AllowedOrigins != nil) && !cookieDomainCovers(p.CookieDomain, p.AllowedOrigins) {
		if in.CookieDomain == nil {
			return invalid("allowed_origins", "These allowed origins would leave none under cookie_domain "+p.CookieDomain+
				": keep an origin on that domain, or change or clear cookie_domain first.")
		}
		return invalid("cookie_domain", "cookie_domain must cover one of the allowed origins: it is the domain of one "+
			"(shop.example for https://shop.example) or a parent of it (shop.example for https://www.shop.example). Add the origin first.")
	}
	if in.WebhookSecret != nil {
		if err := checkText("webhook_secret", *in.WebhookSecret, 255, true); err != nil {
			return err
		}
		p.WebhookSecret = *in.WebhookSecret
	}
	if in.PaddleWebhookSecret != nil {
		if err := checkText("paddle_webhook_secret", *in.PaddleWebhookSecret, 255, true); err != nil {
			return err
		}
		p.PaddleWebhookSecret = *in.PaddleWebhookSecret
	}
	return in.applyPayouts(p) // api_payouts.go
}

// scriptSettings are the settings of p the install snippet names.
func scriptSettings(p *store.Program) snippet.Settings {
	return snippet.Settings{
		ReferralParams: p.ReferralParams, CookieDomain: p.CookieDomain, LinkDomains: p.LinkDomains,
		RequireConsent: p.RequireConsent, RespectDNT: p.RespectDNT, SPA: p.SPA, StripeCheckout: p.StripeCheckout,
	}
}

// programView is a program as the admin API shows it. Secrets appear only
// in the answers to create and rotate.
type programView struct {
	ID                 string           `json:"id"`
	Name               string           `json:"name"`
	Currency           string           `json:"currency"`
	JSTracking         bool             `json:"js_tracking"`
	AllowedOrigins     []string         `json:"allowed_origins"`
	CookieDays         int              `json:"cookie_days"`
	ReferralParams     []string         `json:"referral_params"`
	Attribution        string           `json:"attribution"`
	JSRequireSignature bool             `json:"js_require_signature"`
	Commission         rules.Commission `json:"commission"`
	CookieDomain       string           `json:"cookie_domain"`
	LinkDomains        []string         `json:"link_domains"`
	RequireConsent     bool             `json:"require_consent"`
	RespectDNT         bool             `json:"respect_dnt"`
	SPA                bool             `json:"spa"`
	StripeCheckout     bool             `json:"stripe_checkout"`
	ScriptURL          string           `json:"script_url"`
	Snippet            string           `json:"snippet"`
	WebhookURL         string           `json:"webhook_url"`
	PaddleWebhookURL   string           `json:"paddle_webhook_url"`
	HoldDays           int              `json:"hold_days"`
	MinPayout          map[string]int64 `json:"min_payout"`
	LandingURL         string           `json:"landing_url"`
	CreatedAt          time.Time        `json:"created_at"`
	UpdatedAt          time.Time        `json:"updated_at"`
	APIKey             string           `json:"api_key,omitempty"`
	SigningSecret      string           `json:"signing_secret,omitempty"`
	WebhookSecret      string           `json:"webhook_secret,omitempty"`
}

// publicURL is where browsers and gateways reach this server.
func (s *Server) publicURL(c *fiber.Ctx) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	return c.BaseURL()
}

func (s *Server) viewProgram(c *fiber.Ctx, p *store.Program) *programView {
	base := s.publicURL(c)
	script := scriptSettings(p)
	// The script URL names the variant the settings need, as the snippet does.
	scriptURL := base + "/js/universal.js"
	if ext := script.Exts(); ext != "" {
		scriptURL += "?ext=" + ext
	}
	linkDomains := p.LinkDomains
	if linkDomains == nil {
		linkDomains = []string{}
	}
	return &programView{
		ID: p.ID, Name: p.Name, Currency: p.Currency, JSTracking: p.JSTracking,
		AllowedOrigins: p.AllowedOrigins, CookieDays: p.CookieDays, ReferralParams: p.ReferralParams,
		Attribution: p.Attribution, JSRequireSignature: p.JSRequireSignature, Commission: p.Commission,
		CookieDomain: p.CookieDomain, LinkDomains: linkDomains, RequireConsent: p.RequireConsent,
		RespectDNT: p.RespectDNT, SPA: p.SPA, StripeCheckout: p.StripeCheckout,
		ScriptURL: scriptURL, Snippet: snippet.Loader(base+"/js/universal.js", p.ID, script),
		WebhookURL: base + "/webhooks/stripe/" + p.ID, PaddleWebhookURL: base + "/webhooks/paddle/" + p.ID, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
		HoldDays: p.HoldDays, MinPayout: minPayoutOf(p), LandingURL: p.LandingURL,
	}
}

func (s *Server) adminListPrograms(c *fiber.Ctx) error {
	list, err := s.store.Programs(c.UserContext())
	if err != nil {
		return err
	}
	out := make([]*programView, len(list))
	for i, p := range list {
		out[i] = s.viewProgram(c, p)
	}
	return c.JSON(fiber.Map{"data": out})
}

// programSecrets are a new program's secrets, known in clear only in the
// answer to its creation.
type programSecrets struct{ APIKey, SigningSecret, WebhookSecret string }

// createProgram stores a new program built from in, with fresh secrets.
func (s *Server) createProgram(ctx context.Context, in *programJSONIn) (*store.Program, programSecrets, error) {
	p, sec, err := makeProgram(in)
	if err != nil {
		return nil, programSecrets{}, err
	}
	if err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.InsertProgram(p, hashSecret(sec.APIKey)) }); err != nil {
		return nil, programSecrets{}, err
	}
	return p, sec, nil
}

// makeProgram makes a new program from the input, with its id and secrets,
// ready to be stored.
func makeProgram(in *programJSONIn) (*store.Program, programSecrets, error) {
	if in.Name == nil {
		return nil, programSecrets{}, invalid("name", "name is required.")
	}
	p := newProgram()
	if err := in.apply(p); err != nil {
		return nil, programSecrets{}, err
	}
	p.ID = newProgramID()
	sec := programSecrets{APIKey: newAPIKey(), SigningSecret: newSigningSecret(), WebhookSecret: p.WebhookSecret}
	if sec.WebhookSecret == "" {
		sec.WebhookSecret = newWebhookSecret()
	}
	p.SigningSecret, p.WebhookSecret = sec.SigningSecret, sec.WebhookSecret
	return p, sec, nil
}

func (s *Server) adminCreateProgram(c *fiber.Ctx) error {
	var in programJSONIn
	if err := decodeStrictJSON(c, &in); err != nil {
		return err
	}
	p, sec, err := s.createProgram(c.UserContext(), &in)
	if err != nil {
		return err
	}
	v := s.viewProgram(c, p)
	v.APIKey, v.SigningSecret, v.WebhookSecret = sec.APIKey, sec.SigningSecret, sec.WebhookSecret
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"data": v})
}

func (s *Server) programParam(c *fiber.Ctx) (*store.Program, error) {
	p, err := s.store.Program(c.UserContext(), c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errProgramNotFound
	}
	return p, err
}

func (s *Server) adminGetProgram(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": s.viewProgram(c, p)})
}

// updateProgram applies a change inside the write, so two concurrent
// patches of different fields both survive.
func (s *Server) updateProgram(ctx context.Context, id string, in *programJSONIn) (*store.Program, error) {
	var p *store.Program
	err := s.store.Write(ctx, func(tx *store.Tx) (err error) {
		if p, err = tx.Program(id); err != nil {
			return err
		}
		if err := in.apply(p); err != nil {
			return err
		}
		if in.WebhookSecret != nil {
			if err := tx.SetSecret(p.ID, store.SecretWebhookSecret, p.WebhookSecret); err != nil {
				return err
			}
		}
		if in.PaddleWebhookSecret != nil {
			if err := tx.SetSecret(p.ID, store.SecretPaddleWebhookSecret, p.PaddleWebhookSecret); err != nil {
				return err
			}
		}
		return tx.UpdateProgram(p)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errProgramNotFound
	}
	return p, err
}

func (s *Server) adminPatchProgram(c *fiber.Ctx) error {
	var in programJSONIn
	if err := decodeStrictJSON(c, &in); err != nil {
		return err
	}
	p, err := s.updateProgram(c.UserContext(), c.Params("id"), &in)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": s.viewProgram(c, p)})
}

// rotateSecret replaces one secret and returns its new value, shown once.
func (s *Server) rotateSecret(c *fiber.Ctx, id string, which store.Secret) (*store.Program, string, error) {
	var value, stored string
	switch which {
	case store.SecretAPIKey:
		value = newAPIKey()
		stored = hashSecret(value)
	case store.SecretSigningSecret:
		value = newSigningSecret()
		stored = value
	case store.SecretWebhookSecret:
		value = newWebhookSecret()
		stored = value
	default:
		return nil, "", invalid("secret", "secret is one of api_key, signing_secret, webhook_secret.")
	}
	var p *store.Program
	err := s.store.Write(c.UserContext(), func(tx *store.Tx) (err error) {
		if err := tx.SetSecret(id, which, stored); err != nil {
			return err
		}
		p, err = tx.Program(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", errProgramNotFound
	}
	return p, value, err
}

func (s *Server) adminRotateSecret(c *fiber.Ctx) error {
	var in struct {
		Secret string `json:"secret"`
	}
	if err := decodeStrictJSON(c, &in); err != nil {
		return err
	}
	p, value, err := s.rotateSecret(c, c.Params("id"), store.Secret(in.Secret))
	if err != nil {
		return err
	}
	v := s.viewProgram(c, p)
	switch store.Secret(in.Secret) {
	case store.SecretAPIKey:
		v.APIKey = value
	case store.SecretSigningSecret:
		v.SigningSecret = value
	case store.SecretWebhookSecret:
		v.WebhookSecret = value
	}
	return c.JSON(fiber.Map{"data": v})
}
