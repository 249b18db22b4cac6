package server

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// The program page's forms, read into the admin API's programJSONIn so the
// page and the API validate and store settings the same way.

// generalForm is the settings card as shown or as entered.
type generalForm struct {
	Name, Currency, CookieDays, ReferralParams, Attribution string
}

func generalFormOf(p *store.Program) generalForm {
	return generalForm{Name: p.Name, Currency: p.Currency, CookieDays: strconv.Itoa(p.CookieDays),
		ReferralParams: strings.Join(p.ReferralParams, ", "), Attribution: p.Attribution}
}

// scriptForm is the script's settings card as shown or as entered.
type scriptForm struct {
	CookieDomain, LinkDomains  string
	RequireConsent, RespectDNT bool
	SPA, StripeCheckout        bool
}

func scriptFormOf(p *store.Program) scriptForm {
	return scriptForm{CookieDomain: p.CookieDomain, LinkDomains: strings.Join(p.LinkDomains, ", "),
		RequireConsent: p.RequireConsent, RespectDNT: p.RespectDNT, SPA: p.SPA, StripeCheckout: p.StripeCheckout}
}

// splitList reads a list typed into one input, separated by commas or
// spaces.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// commissionForm is the commission card: the default rule, one row per
// product override and one blank row to add another.
type commissionForm struct {
	Type, Value, LimitType, LimitValue string
	Rules                              []ruleForm
}

type ruleForm struct {
	Index                              int
	Match, Product                     string // Match is product_id or product_type
	Type, Value, LimitType, LimitValue string
}

func limitForm(l *rules.Limit) (typ, value string) {
	if l == nil || l.Type == rules.LimitLifetime {
		return rules.LimitLifetime, ""
	}
	return l.Type, strconv.Itoa(l.Value)
}

func commissionFormOf(c rules.Commission) commissionForm {
	f := commissionForm{Type: c.Type, Value: string(c.Value)}
	f.LimitType, f.LimitValue = limitForm(c.Limit)
	for _, r := range c.Rules {
		rf := ruleForm{Match: "product_id", Product: r.ProductID, Type: r.Type, Value: string(r.Value)}
		if r.ProductID == "" {
			rf.Match, rf.Product = "product_type", r.ProductType
		}
		rf.LimitType, rf.LimitValue = limitForm(r.Limit)
		f.Rules = append(f.Rules, rf)
	}
	return f.withBlankRow()
}

func (f commissionForm) withBlankRow() commissionForm {
	f.Rules = append(f.Rules, ruleForm{Match: "product_id", Type: rules.TypePercent, LimitType: rules.LimitLifetime})
	for i := range f.Rules {
		f.Rules[i].Index = i
	}
	return f
}

// programFormInput reads one card of the program page into a change
// request. The state it returns holds the input to show again when the
// change is refused.
func programFormInput(c *fiber.Ctx, section string, p *store.Program) (*programJSONIn, programState, error) {
	var st programState
	in := &programJSONIn{}
	switch section {
	case "tracking":
		on := c.FormValue("js_tracking") == "on"
		in.JSTracking = &on
	case "signature":
		on := c.FormValue("js_require_signature") == "on"
		in.JSRequireSignature = &on
	case "origins-add":
		st.Origin = strings.TrimSpace(c.FormValue("origin"))
		if st.Origin == "" {
			return nil, st, invalid("origin", "Enter an origin such as https://shop.example.")
		}
		n, err := normalizeOrigin(st.Origin)
		if err != nil {
			return nil, st, invalid("origin", upperFirst(err.Error())+".")
		}
		list := append(append([]string{}, p.AllowedOrigins...), n)
		in.AllowedOrigins = &list
	case "origins-remove":
		gone := c.FormValue("origin")
		list := []string{}
		for _, o := range p.AllowedOrigins {
			if o != gone {
				list = append(list, o)
			}
		}
		in.AllowedOrigins = &list
	case "general":
		g := generalForm{
			Name: strings.TrimSpace(c.FormValue("name")), Currency: strings.TrimSpace(c.FormValue("currency")),
			CookieDays: strings.TrimSpace(c.FormValue("cookie_days")), ReferralParams: c.FormValue("referral_params"),
			Attribution: c.FormValue("attribution"),
		}
		st.General = &g
		days, err := strconv.Atoi(g.CookieDays)
		if err != nil {
			return nil, st, invalid("cookie_days", fmt.Sprintf("Cookie lifetime must be a whole number of days from 1 to %d.", maxCookieDays))
		}
		params := strings.FieldsFunc(g.ReferralParams, func(r rune) bool { return r == ',' || r == ' ' })
		in.Name, in.Currency, in.CookieDays, in.ReferralParams, in.Attribution = &g.Name, &g.Currency, &days, &params, &g.Attribution
	case "script":
		f := scriptForm{
			CookieDomain: strings.TrimSpace(c.FormValue("cookie_domain")), LinkDomains: c.FormValue("link_domains"),
			RequireConsent: c.FormValue("require_consent") == "on", RespectDNT: c.FormValue("respect_dnt") == "on",
			SPA: c.FormValue("spa") == "on", StripeCheckout: c.FormValue("stripe_checkout") == "on",
		}
		st.Script = &f
		domains := splitList(f.LinkDomains)
		in.CookieDomain, in.LinkDomains = &f.CookieDomain, &domains
		in.RequireConsent, in.RespectDNT, in.SPA, in.StripeCheckout = &f.RequireConsent, &f.RespectDNT, &f.SPA, &f.StripeCheckout
	case "commission":
		comm, f, err := commissionFromForm(c)
		st.Comm = f
		if err != nil {
			return nil, st, err
		}
		in.Commission = &comm
	case "landing":
		// Where referral links point (aff.go); checked as the admin API's.
		v := strings.TrimSpace(c.FormValue("landing_url"))
		st.Landing = &v
		in.LandingURL = &v
	case "stripe-secret", "paddle-secret":
		// A gateway's webhook secret, pasted from its dashboard.
		v := strings.TrimSpace(c.FormValue("secret"))
		if section == "stripe-secret" {
			if v == "" {
				return nil, st, invalid("webhook_secret", "Paste the signing secret Stripe shows for the endpoint (whsec_…).")
			}
			in.WebhookSecret = &v
		} else {
			if v == "" {
				return nil, st, invalid("paddle_webhook_secret", "Paste the secret key Paddle shows for the notification destination.")
			}
			in.PaddleWebhookSecret = &v
		}
	default:
		return nil, st, errNotFound
	}
	return in, st, nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// maxRuleRows bounds the rows read from a commission form.
const maxRuleRows = 101

func commissionFromForm(c *fiber.Ctx) (rules.Commission, commissionForm, error) {
	f := commissionForm{
		Type: c.FormValue("type"), Value: strings.TrimSpace(c.FormValue("value")),
		LimitType: c.FormValue("limit_type"), LimitValue: strings.TrimSpace(c.FormValue("limit_value")),
	}
	rows, _ := strconv.Atoi(c.FormValue("rule_rows"))
	rows = min(max(rows, 0), maxRuleRows)
	for i := 0; i < rows; i++ {
		field := func(name string) string { return strings.TrimSpace(c.FormValue(fmt.Sprintf("rule_%d_%s", i, name))) }
		rf := ruleForm{Match: field("match"), Product: field("product"), Type: field("type"), Value: field("value"),
			LimitType: field("limit_type"), LimitValue: field("limit_value")}
		// A row without a product is the blank "add" row or a removed one.
		if rf.Product == "" || field("remove") == "on" {
			continue
		}
		f.Rules = append(f.Rules, rf)
	}
	shown := f.withBlankRow()

	comm := rules.Commission{Type: f.Type, Value: rules.Decimal(f.Value), Rules: []rules.Rule{}}
	var err error
	if comm.Limit, err = limitFromForm("commission.limit", f.LimitType, f.LimitValue); err != nil {
		return comm, shown, err
	}
	for i, rf := range f.Rules {
		r := rules.Rule{Type: rf.Type, Value: rules.Decimal(rf.Value)}
		if rf.Match == "product_type" {
			r.ProductType = rf.Product
		} else {
			r.ProductID = rf.Product
		}
		if r.Limit, err = limitFromForm(fmt.Sprintf("commission.rules[%d].limit", i), rf.LimitType, rf.LimitValue); err != nil {
			return comm, shown, err
		}
		comm.Rules = append(comm.Rules, r)
	}
	return comm, shown, nil
}

func limitFromForm(field, typ, value string) (*rules.Limit, error) {
	if typ == "" || typ == rules.LimitLifetime {
		return nil, nil
	}
	n, err := strconv.Atoi(value)
	if err != nil {
		return nil, invalid(field+".value", "Enter how many transactions or days the limit allows, as a whole number.")
	}
	return &rules.Limit{Type: typ, Value: n}, nil
}

var (
	ruleFieldRe       = regexp.MustCompile(`^commission\.rules\[(\d+)\]`)
	linkDomainFieldRe = regexp.MustCompile(`^link_domains\[(\d+)\]$`)
)

// fieldLabel names a form field the way the page labels it.
func fieldLabel(field string) string {
	if m := ruleFieldRe.FindStringSubmatch(field); m != nil {
		n, _ := strconv.Atoi(m[1])
		return fmt.Sprintf("Product rule %d", n+1)
	}
	if m := linkDomainFieldRe.FindStringSubmatch(field); m != nil {
		n, _ := strconv.Atoi(m[1])
		return fmt.Sprintf("Link domain %d", n+1)
	}
	switch {
	case strings.HasPrefix(field, "commission"):
		return "Default commission"
	case field == "cookie_days":
		return "Cookie lifetime"
	case strings.HasPrefix(field, "referral_params"):
		return "Referral parameters"
	}
	return ""
}
