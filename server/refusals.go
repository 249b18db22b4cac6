package server

import (
	"fmt"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// What /collect refused, for the merchant (issue 14, item 3). A refused
// call that names an existing program is noted in the store's memory
// (store/refusals.go: counted per program, hour and reason, the last 50
// kept, written every few seconds as one write); one naming no known
// program is counted in potrack_collect_total only. The note keeps the
// reason, the call type, the page's origin, the partner and key the call
// named and the field an invalid one was refused on: never the client's
// IP, never the body.

// collectTrace is what collectCall had read when it answered.
type collectTrace struct {
	call    *collectCall   // nil until the envelope decoded
	program *store.Program // nil until the program was found
}

// noteRefusal notes a refused /collect call. A call refused before its
// program was looked up (its body not of the expected shape) is noted when
// the program it names exists; one refused before its body was read (the
// per-IP rate limit, an encoded or oversized body) names none.
func (s *Server) noteRefusal(c *fiber.Ctx, trace *collectTrace, err error) {
	e := asError(err)
	if e.Status < 400 || e.Status >= 500 {
		return // the server's failure, not a refusal
	}
	p, call := trace.program, trace.call
	if p == nil {
		if call == nil || call.Program == "" || e.Code == errProgramNotFound.Code {
			return
		}
		var lerr error
		if p, lerr = s.collectProgram(c, call.Program); lerr != nil {
			return
		}
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		origin = urlOrigin(c.Get(fiber.HeaderReferer))
	}
	r := store.Refusal{ProgramID: p.ID, Reason: e.Code, CallType: "unknown", Origin: origin, Field: e.Field}
	if call != nil {
		r.PartnerKey = call.partnerKey()
		switch call.Type {
		case typeTransaction:
			r.CallType, r.Key = call.Type, string(call.transaction.Key)
		case typeSignup:
			r.CallType, r.Key = call.Type, string(call.customer.Key)
		case typeClick:
			r.CallType = call.Type
			if k := referralKey(call.URL, p.ReferralParams); k != "" {
				r.PartnerKey = k // the partner the landing names
			}
		}
	}
	s.store.NoteRefusal(r)
}

const (
	defaultRefusalHours = 24
	maxRefusalHours     = 90 * 24 // what is kept
)

// refusalNote is one line of a program's refusal summary: "in the last
// 24 h: 12 sales refused because JS tracking is off", with its fix.
type refusalNote struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
	// Text is the whole sentence; Fix what to do about it.
	Text string `json:"text"`
	Fix  string `json:"fix"`
	// Action is the program change that fixes it, when one click can: the
	// PATCH /admin/api/programs/{id} body that makes it. Nil when the fix
	// is the merchant's code, or a setting not to change lightly.
	Action map[string]any `json:"action"`
	// Origin and Field are the most frequent ones among the recent
	// refusals of this reason, when it has one.
	Origin string `json:"origin,omitempty"`
	Field  string `json:"field,omitempty"`
	Docs   string `json:"docs,omitempty"`
}

// refusalSummary turns a report into one note per reason, most frequent
// first. hours names the window in the sentences.
func (s *Server) refusalSummary(p *store.Program, rep *store.RefusalReport, hours int) []refusalNote {
	out := []refusalNote{}
	window := fmt.Sprintf("In the last %d h", hours)
	if hours%24 == 0 && hours > 24 {
		window = fmt.Sprintf("In the last %d days", hours/24)
	}
	for _, rc := range rep.Counts {
		n := refusalNote{Reason: rc.Reason, Count: rc.Count}
		// The most frequent origin and field among the recent refusals of
		// this reason within the window.
		switch rc.Reason {
		case errOriginNotAllowed.Code:
			n.Origin = mostFrequent(rep.Recent, rep.Since, rc.Reason, func(r store.Refusal) string { return r.Origin })
		case "invalid_field", errBadRequest.Code:
			n.Field = mostFrequent(rep.Recent, rep.Since, rc.Reason, func(r store.Refusal) string { return r.Field })
		}
		what, because := "calls", ""
		switch rc.Reason {
		case errJSTrackingDisabled.Code:
			what, because = "sales", "JS tracking is off"
			n.Fix = "Turn on JS tracking (browser sales can be forged: prefer signed sales or the REST API for money that matters)."
			n.Action = map[string]any{"js_tracking": true}
			n.Docs = "docs/install-script.md"
		case errOriginNotAllowed.Code:
			because = "their site is not an allowed origin"
			if o, err := normalizeOrigin(n.Origin); n.Origin != "" && err == nil && !containsString(p.AllowedOrigins, o) {
				n.Origin = o
				n.Fix = "Add " + o + " to the allowed origins, if that site is yours."
				n.Action = map[string]any{"allowed_origins": append(append([]string{}, p.AllowedOrigins...), o)}
			} else {
				n.Fix = "Add your site's origin (https://your-shop.example) to the allowed origins."
			}
			n.Docs = "docs/collect.md"
		case errBadSignature.Code:
			what, because = "sales", "their signature was missing or wrong"
			n.Fix = "Sign each sale on your backend with the program's signing secret (data.signature)."
			n.Docs = "docs/collect.md#what-the-browser-path-can-prove"
		case errRateLimited.Code:
			because = "the program's rate limit was reached"
			n.Fix = "If these are real visitors, raise --rate-limit-program (now " + s.cfg.RateLimitProgram + ")."
			n.Docs = "docs/operations.md"
		case "invalid_field":
			because = "a field was not valid"
			if n.Field != "" {
				because += " (most often " + n.Field + ")"
				n.Fix = "Fix " + n.Field + " in the po() calls of your pages."
			} else {
				n.Fix = "Fix the fields the recent refusals name in the po() calls of your pages."
			}
			n.Docs = "docs/collect.md#calls"
		case errBadRequest.Code:
			because = "they were not of the expected shape"
			if n.Field != "" {
				because += " (most often " + n.Field + ")"
			}
			n.Fix = "Check the po() calls of your pages against the documentation."
			n.Docs = "docs/install-script.md"
		case errKeyConflict.Code:
			what, because = "sales", "their key was already used with another amount, currency or customer"
			n.Fix = "Send a new key for each sale (the order id)."
			n.Docs = "docs/collect.md"
		case errCustomerNotFound.Code:
			what, because = "sales", "their customer does not exist"
			n.Fix = "Pass options.create_customer: true, or sign the customer up first."
			n.Docs = "docs/collect.md#calls"
		default:
			because = "of " + rc.Reason
			n.Docs = "docs/collect.md"
		}
		if rc.Count == 1 {
			what = map[string]string{"calls": "call", "sales": "sale"}[what]
		}
		n.Text = fmt.Sprintf("%s: %d %s refused because %s.", window, rc.Count, what, because)
		out = append(out, n)
	}
	return out
}

// mostFrequent is the most frequent non-empty value of the recent
// refusals of a reason since a time; ties go to the most recent.
func mostFrequent(recent []store.Refusal, since time.Time, reason string, value func(store.Refusal) string) string {
	counts := map[string]int{}
	order := []string{}
	for _, r := range recent { // newest first
		v := value(r)
		if r.Reason != reason || v == "" || r.At.Before(since) {
			continue
		}
		if counts[v] == 0 {
			order = append(order, v)
		}
		counts[v]++
	}
	sort.SliceStable(order, func(i, j int) bool { return counts[order[i]] > counts[order[j]] })
	if len(order) == 0 {
		return ""
	}
	return order[0]
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// The admin API: GET /admin/api/programs/{id}/refusals?hours=24.

type refusalCountView struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

type refusalHourView struct {
	Hour   time.Time `json:"hour"`
	Reason string    `json:"reason"`
	Count  int64     `json:"count"`
}

type refusalView struct {
	Reason     string    `json:"reason"`
	CallType   string    `json:"call_type"`
	Origin     string    `json:"origin"`
	PartnerKey string    `json:"partner_key"`
	Key        string    `json:"key"`
	Field      string    `json:"field"`
	At         time.Time `json:"at"`
}

type refusalsView struct {
	Hours   int                `json:"hours"`
	Since   time.Time          `json:"since"`
	Total   int64              `json:"total"`
	Counts  []refusalCountView `json:"counts"`
	Series  []refusalHourView  `json:"series"`
	Recent  []refusalView      `json:"recent"`
	Summary []refusalNote      `json:"summary"`
}

// programRefusals reads p's refusals of the last hours hours (whole hours,
// the current one included) with their summary: what the admin API
// answers and the setup page shows.
func (s *Server) programRefusals(c *fiber.Ctx, p *store.Program, hours int) (*refusalsView, error) {
	since := time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(hours-1) * time.Hour)
	rep, err := s.store.Refusals(c.UserContext(), p.ID, since)
	if err != nil {
		return nil, err
	}
	v := &refusalsView{Hours: hours, Since: rep.Since, Counts: []refusalCountView{}, Series: []refusalHourView{},
		Recent: []refusalView{}, Summary: s.refusalSummary(p, rep, hours)}
	for _, rc := range rep.Counts {
		v.Counts = append(v.Counts, refusalCountView{rc.Reason, rc.Count})
		v.Total += rc.Count
	}
	for _, h := range rep.Hours {
		v.Series = append(v.Series, refusalHourView{h.Hour, h.Reason, h.Count})
	}
	for _, r := range rep.Recent {
		v.Recent = append(v.Recent, refusalView{r.Reason, r.CallType, r.Origin, r.PartnerKey, r.Key, r.Field, r.At})
	}
	return v, nil
}

func (s *Server) adminRefusals(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	hours, err := intQuery(c, "hours", defaultRefusalHours, 1, maxRefusalHours)
	if err != nil {
		return err
	}
	v, err := s.programRefusals(c, p, hours)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": v})
}
