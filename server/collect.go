package server

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// POST /collect takes the po() calls of browsers (SPEC.md "The browser
// side"). Anyone can post anything here, so the checks run cheapest first:
// size, per-IP budget and shape before the database is read; origin and
// per-program budget before anything is written.

const (
	maxProgramIDLen = 64
	maxURLLen       = 4096
	// A day: preflights are rare (the script sends text/plain), and an
	// origin removed from a program still fails the POST itself.
	preflightMaxAge = "86400"
)

const (
	typeClick       = "clicks.create"
	typeSignup      = "customers.signup"
	typeTransaction = "transactions.create"
)

// collectJSONIn is the body the script sends.
type collectJSONIn struct {
	Program string          `json:"program"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
	Options struct {
		CreateCustomer bool `json:"create_customer"`
	} `json:"options"`
	// Partner is the partnero_partner cookie, as the browser has it.
	Partner *struct {
		Key flexString `json:"key"`
	} `json:"partner"`
	URL      string `json:"url"`
	Referrer string `json:"referrer"`
}

// collectCall is a decoded request: the envelope and its typed data.
type collectCall struct {
	collectJSONIn
	transaction collectTransactionJSONIn
	customer    customerJSONIn
}

// collectTransactionJSONIn is the data of a browser sale: the REST seed
// request, except that a browser never dates a sale. CreatedAt shadows the
// seed's field, so any value of any type is caught here and refused on
// its own field (data.created_at).
type collectTransactionJSONIn struct {
	transactionJSONIn
	CreatedAt json.RawMessage `json:"created_at"`
}

// collectAnswer is a successful answer. A click's also tells the script
// the program's cookie_days and attribution, and the partner to write to
// the cookie (cookie), unless there is nothing to write: this answer set
// the cookie itself (cookie_set; see setReferralCookie), or first
// attribution keeps the one the browser has. The rule lives here, not in
// the script, which must stay small (snippet/po.ts).
type collectAnswer struct {
	Status      string `json:"status"`
	Partner     string `json:"partner,omitempty"`
	CookieDays  int    `json:"cookie_days,omitempty"`
	Attribution string `json:"attribution,omitempty"`
	CookieSet   bool   `json:"cookie_set,omitempty"`
	Cookie      string `json:"cookie,omitempty"`
	// AttributedBy answers a sale stored or replayed: how its customer's
	// partner was decided (code, cookie, or the customer's own earlier
	// attribution).
	AttributedBy string `json:"attributed_by,omitempty"`
}

func answerFor(res tracking.Result) (int, collectAnswer) {
	switch res {
	case tracking.Replayed:
		return fiber.StatusOK, collectAnswer{Status: "duplicate"}
	case tracking.Ignored:
		return fiber.StatusAccepted, collectAnswer{Status: "ignored"}
	}
	return fiber.StatusCreated, collectAnswer{Status: "created"}
}

// collect is POST /collect.
func (s *Server) collect(c *fiber.Ctx) error {
	// The answer depends on Origin whichever way it goes.
	c.Vary(fiber.HeaderOrigin)
	var trace collectTrace
	typ, status, answer, err := s.collectCall(c, &trace)
	outcome := answer.Status
	if err != nil {
		outcome = asError(err).Code
	}
	s.metrics.collected.WithLabelValues(typ, outcome).Inc()
	if err != nil {
		// Counted for the merchant when it names a program (refusals.go).
		s.noteRefusal(c, &trace, err)
		// An error reveals nothing a page may not know, and a script that
		// cannot read it takes it for a network failure and retries a call
		// that can never succeed. So every error answer is readable.
		if o := c.Get(fiber.HeaderOrigin); o != "" {
			c.Set(fiber.HeaderAccessControlAllowOrigin, o)
		}
		return err
	}
	return c.Status(status).JSON(answer)
}

// collectCall runs the checks in SPEC.md's order and records the call. typ
// is the call type for metrics ("unknown" until the body is understood).
// trace keeps what a refusal is noted with: the call and its program, as
// far as they were read.
func (s *Server) collectCall(c *fiber.Ctx, trace *collectTrace) (typ string, status int, answer collectAnswer, err error) {
	typ = "unknown"
	// The body's encoding and size were checked before it was read
	// (guardBody).
	ctx := c.UserContext()
	ipBudget, ipChecked := s.limits.perIP.take(ctx, ipLimitKey(s.clientIP(c)))
	if ipChecked {
		setLimitHeaders(c, ipBudget)
	}
	if ipBudget.Reached {
		return typ, 0, answer, errRateLimited
	}

	call, err := decodeCollect(c)
	trace.call = call
	if err != nil {
		return typ, 0, answer, err
	}
	typ = call.Type

	p, err := s.collectProgram(c, call.Program)
	if errors.Is(err, store.ErrNotFound) {
		return typ, 0, answer, errProgramNotFound
	}
	if err != nil {
		return typ, 0, answer, err
	}
	trace.program = p

	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		origin = urlOrigin(c.Get(fiber.HeaderReferer))
	}
	if !originAllowed(origin, p.AllowedOrigins) {
		return typ, 0, answer, errOriginNotAllowed
	}
	// From here on the browser may read the answer, errors included.
	c.Set(fiber.HeaderAccessControlAllowOrigin, origin)

	programBudget, programChecked := s.limits.perProgram.take(ctx, "program:"+p.ID)
	if programChecked && (programBudget.Reached || !ipChecked || programBudget.Remaining < ipBudget.Remaining) {
		setLimitHeaders(c, programBudget)
	}
	if programBudget.Reached {
		return typ, 0, answer, errRateLimited
	}

	switch call.Type {
	case typeTransaction:
		status, answer, err = s.collectTransaction(c, p, call)
	case typeSignup:
		status, answer, err = s.collectSignup(c, p, call)
	default:
		status, answer, err = s.collectClick(c, p, call, origin)
	}
	return typ, status, answer, err
}

// collectProgram reads the program afresh on every call, so an admin change
// applies to the next one. An id longer than any we issue is not looked up.
func (s *Server) collectProgram(c *fiber.Ctx, id string) (*store.Program, error) {
	if len(id) > maxProgramIDLen {
		return nil, store.ErrNotFound
	}
	return s.store.CachedProgram(c.UserContext(), id)
}

// decodeCollect checks the shape of the body, including the data of its
// type, without looking anything up. A call refused after its envelope was
// read comes back with the error, for the refusal's note.
func decodeCollect(c *fiber.Ctx) (*collectCall, error) {
	var call collectCall
	if err := decodeJSON(c, &call.collectJSONIn); err != nil {
		return nil, err
	}
	switch call.Type {
	case typeClick, typeSignup, typeTransaction:
	default:
		return &call, errBadRequest.WithMessage("type must be clicks.create, customers.signup or transactions.create.").WithField("type")
	}
	if call.Program == "" {
		return &call, errBadRequest.WithMessage("program is required: the id from the install snippet.").WithField("program")
	}
	var data any
	switch call.Type {
	case typeTransaction:
		data = &call.transaction
	case typeSignup:
		data = &call.customer
	}
	if data != nil && len(call.Data) > 0 && string(call.Data) != "null" {
		if err := json.Unmarshal(call.Data, data); err != nil {
			return &call, jsonProblem(err, "data")
		}
	}
	return &call, nil
}

// partnerKey is the partner the browser's cookie names. A key longer than
// any stored one cannot match; it is treated as no partner.
func (call *collectCall) partnerKey() string {
	if call.Partner == nil || len(call.Partner.Key) > maxKeyLen {
		return ""
	}
	return string(call.Partner.Key)
}

// urlOrigin is the origin of an http(s) URL as a browser writes it (no
// default port); "" when it has none. It reads the Referer of requests that
// carry no Origin header, and the landing URL of a click.
func urlOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	host := u.Host
	if (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80") {
		host = strings.TrimSuffix(host, ":"+u.Port())
	}
	return u.Scheme + "://" + host
}

// withDataPrefix names fields by their path in the /collect body.
func withDataPrefix(err error) error {
	e := asError(err)
	if e.Field == "" || e.Status >= 500 {
		return err
	}
	return e.WithField("data." + e.Field)
}

func (s *Server) collectTransaction(c *fiber.Ctx, p *store.Program, call *collectCall) (int, collectAnswer, error) {
	if !p.JSTracking {
		return 0, collectAnswer{}, errJSTrackingDisabled
	}
	req := &call.transaction
	// The server's clock dates browser sales: a page could otherwise
	// backdate one into a commission window that has closed.
	if len(req.CreatedAt) > 0 && string(req.CreatedAt) != "null" {
		return 0, collectAnswer{}, invalid("data.created_at",
			"data.created_at is not accepted from the browser: the server dates browser sales. Send created_at through the REST API.")
	}
	in, err := req.input(p)
	if err != nil {
		return 0, collectAnswer{}, withDataPrefix(err)
	}
	// The cookie names the partner, never the page's data: the script
	// fills partner.key, and a merchant page has no say in attribution
	// beyond the discount code the buyer typed (data.discount_code),
	// which a new customer takes before the cookie.
	in.Partner = store.PartnerRef{Key: call.partnerKey(), By: store.AttributedCookie}
	in.CreateCustomer = in.CreateCustomer || call.Options.CreateCustomer
	in.Source = store.SourceJS
	// A valid signature proves the merchant's backend saw this sale, so it
	// is marked verified even where signatures are optional. It covers
	// every field that decides the reward: the amount and currency, the
	// customer (whose partner is paid) and both product fields (which pick
	// the commission rule). The date is the server's (above).
	if req.Signature != "" || p.JSRequireSignature {
		// '|' separates the signed fields: in a field's text it would let
		// one field's text pass for the next one's.
		if field := rules.PipeInSignedField(in.Key, in.Customer.Key, in.ProductID, in.ProductType); field != "" {
			return 0, collectAnswer{}, invalid("data."+field, "A signed sale's "+field+" must not contain '|', which separates the signed fields.")
		}
	}
	if req.Signature != "" {
		payload := rules.SignaturePayload(in.Key, in.Amount, in.Customer.Key, in.ProductID, in.ProductType)
		in.Verified = rules.VerifySignature(p.SigningSecret, payload, req.Signature)
	}
	if p.JSRequireSignature && !in.Verified {
		return 0, collectAnswer{}, errBadSignature
	}
	var (
		res tracking.Result
		tr  *store.Transaction
	)
	err = s.store.Write(c.UserContext(), func(tx *store.Tx) (err error) {
		tr, res, err = tracking.RecordTransaction(tx, p, in, tracking.Tracked)
		return err
	})
	if err != nil {
		return 0, collectAnswer{}, withDataPrefix(err)
	}
	status, answer := answerFor(res)
	if tr != nil && res != tracking.Ignored {
		answer.AttributedBy = tr.AttributedBy
	}
	return status, answer, nil
}

func (s *Server) collectSignup(c *fiber.Ctx, p *store.Program, call *collectCall) (int, collectAnswer, error) {
	in, err := call.customer.input("data.")
	if err != nil {
		return 0, collectAnswer{}, err
	}
	ref := store.PartnerRef{Key: call.partnerKey(), By: store.AttributedCookie}
	var res tracking.Result
	err = s.store.Write(c.UserContext(), func(tx *store.Tx) (err error) {
		_, res, err = tracking.CreateCustomer(tx, p, in, ref, tracking.Tracked)
		return err
	})
	if err != nil {
		return 0, collectAnswer{}, err
	}
	status, answer := answerFor(res)
	return status, answer, nil
}

// collectClick records a referral landing. The partner comes from the
// landing URL only: the cookie names an earlier referral, and counting it
// again on every page with a query string would inflate its clicks. The
// landing page must be on origin, the one that passed the origin check:
// a click "on" another site (or on another of the program's origins) is
// not a visit this browser made, so it is ignored.
func (s *Server) collectClick(c *fiber.Ctx, p *store.Program, call *collectCall, origin string) (int, collectAnswer, error) {
	if err := checkText("url", call.URL, maxURLLen, false); err != nil {
		return 0, collectAnswer{}, err
	}
	if err := checkText("referrer", call.Referrer, maxURLLen, false); err != nil {
		return 0, collectAnswer{}, err
	}
	if !onOrigin(call.URL, origin) {
		return fiber.StatusAccepted, collectAnswer{Status: "ignored"}, nil
	}
	key := referralKey(call.URL, p.ReferralParams)
	if key == "" {
		return fiber.StatusAccepted, collectAnswer{Status: "ignored"}, nil
	}
	// Looked up from memory or the read pool: links to unknown partners
	// never queue for the writer. Partners are never deleted, so the id
	// stays valid.
	partner, err := s.store.CachedPartnerByKey(c.UserContext(), p.ID, key)
	if errors.Is(err, store.ErrNotFound) {
		return fiber.StatusAccepted, collectAnswer{Status: "ignored"}, nil
	}
	if err != nil {
		return 0, collectAnswer{}, err
	}
	// A landing reached through /aff/KEY was recorded there (aff.go).
	if !affClickRecorded(p, call.URL, partner.Key, time.Now()) {
		err = s.store.RecordClick(c.UserContext(), store.Click{ProgramID: p.ID, PartnerID: partner.ID, URL: call.URL, Referrer: call.Referrer})
		if err != nil {
			return 0, collectAnswer{}, err
		}
	}
	answer := collectAnswer{Status: "created", Partner: partner.Key,
		CookieDays: p.CookieDays, Attribution: p.Attribution}
	// First attribution keeps the cookie the browser already has: the
	// script sent it as partner.key, and it must not be replaced. Else
	// this answer sets it, or tells the script to (cookie).
	if !(p.Attribution == "first" && call.partnerKey() != "") {
		answer.CookieSet = s.setReferralCookie(c, p, partner.Key)
		if !answer.CookieSet {
			answer.Cookie = partner.Key
		}
	}
	return fiber.StatusCreated, answer, nil
}

// referralCookie is the cookie the script reads the partner from.
const referralCookie = "partnero_partner"

// setReferralCookie sets the referral cookie on a click's answer when the
// browser will keep it as the page's own, and reports whether it did.
//
// Why the server sets it at all: Safari (ITP) caps cookies written by
// script (document.cookie) at 7 days, but not cookies a first-party server
// sets with Set-Cookie. When potrack is served under the shop's own origin
// (the script's api_host is https://shop.example/potrack, the shop's
// reverse proxy forwarding /potrack/collect here), this answer is such a
// server, and the cookie lasts the program's cookie_days.
//
// Why only same-origin: the script's fetch uses the default credentials
// mode, same-origin, so a browser drops the Set-Cookie of a cross-origin
// answer; and a cookie set from another site (track.example) would be
// that site's, third-party, not the shop's. So the cookie is set only when
// the page's Origin is the very origin the request was made to (sentToOrigin).
// Otherwise cookie_set stays absent and the script writes the cookie.
func (s *Server) setReferralCookie(c *fiber.Ctx, p *store.Program, key string) bool {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || !s.sentToOrigin(c, origin) {
		return false
	}
	days := min(p.CookieDays, maxCookieDays)
	// decodeURIComponent in the script throws on bytes that are not UTF-8.
	if days < 1 || !utf8.ValidString(key) {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	secure := ""
	if u.Scheme == "https" {
		secure = "; Secure"
	}
	attrs := "; Path=/; SameSite=Lax" + secure
	host := strings.ToLower(u.Hostname())
	domain := strings.ToLower(p.CookieDomain)
	h := &c.Response().Header
	// Raw headers: fasthttp's SetCookie keeps one cookie per name, and
	// with a cookie_domain two cookies of this name are sent.
	if domain != "" && (host == domain || strings.HasSuffix(host, "."+domain)) {
		// The host-only cookie (an earlier setting's, or the script's)
		// goes: with two cookies of one name the page could read the
		// wrong one. The script does the same when it writes the cookie.
		h.Add(fiber.HeaderSetCookie, referralCookie+"=; Max-Age=0"+attrs)
		attrs += "; Domain=" + domain
	}
	h.Add(fiber.HeaderSetCookie, referralCookie+"="+encodeURIComponent(key)+
		"; Max-Age="+strconv.Itoa(days*86400)+attrs)
	return true
}

// sentToOrigin reports whether origin (the page's Origin header) is the
// origin this request was sent to, as the browser saw it: the scheme of the
// connection and the Host header, or, when the peer is a trusted proxy
// (--trusted-proxies, the same decision clientIP makes), the proxy's
// X-Forwarded-Proto and X-Forwarded-Host where it sends them. Forwarded
// headers from any other peer are ignored: a client could otherwise make
// a cross-origin call look same-origin. A forwarded header with several
// values (several headers, or a list) cannot say which hop saw the
// browser's request, so it sets no cookie.
func (s *Server) sentToOrigin(c *fiber.Ctx, origin string) bool {
	scheme := "http"
	if c.Context().IsTLS() {
		scheme = "https"
	}
	host := string(c.Request().Header.Host())
	if s.limits.proxies.contains(canonicalIP(c.Context().RemoteIP())) {
		proto, ok := forwardedValue(c, fiber.HeaderXForwardedProto)
		if !ok {
			return false
		}
		if proto != "" {
			scheme = strings.ToLower(proto)
		}
		fwdHost, ok := forwardedValue(c, fiber.HeaderXForwardedHost)
		if !ok {
			return false
		}
		if fwdHost != "" {
			host = fwdHost
		}
	}
	if (scheme != "http" && scheme != "https") || host == "" {
		return false
	}
	// A Host of anything but host[:port] is no origin.
	if u, err := url.Parse(scheme + "://" + host); err != nil || u.Host != host || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	want := urlOrigin(scheme + "://" + host)
	return want != "" && strings.EqualFold(urlOrigin(origin), want)
}

// forwardedValue is the one value of a forwarded header, "" when there is
// none; ok is false when it has several.
func forwardedValue(c *fiber.Ctx, name string) (v string, ok bool) {
	all := c.Request().Header.PeekAll(name)
	switch {
	case len(all) == 0:
		return "", true
	case len(all) > 1 || strings.Contains(string(all[0]), ","):
		return "", false
	}
	return strings.TrimSpace(string(all[0])), true
}

// encodeURIComponent escapes s as JavaScript's encodeURIComponent does,
// since the script reads the cookie with decodeURIComponent and writes it
// with encodeURIComponent. url.QueryEscape would write a space as "+",
// which decodeURIComponent leaves as "+".
func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' ||
			strings.IndexByte("-_.!~*'()", ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

// onOrigin reports whether rawURL is an absolute http(s) URL on origin:
// the same scheme, host and port (a scheme's default port written out or
// not). A URL that does not parse, or has no host, is on no origin.
func onOrigin(rawURL, origin string) bool {
	a := urlOrigin(rawURL)
	return a != "" && strings.EqualFold(a, urlOrigin(origin))
}

// referralKey reads the partner key from a landing URL: the program's
// referral parameters in their order, then the path form /aff/KEY.
func referralKey(raw string, params []string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	q := u.Query()
	for _, name := range params {
		if v := strings.TrimSpace(q.Get(name)); v != "" {
			return limitKey(v)
		}
	}
	segments := strings.Split(u.EscapedPath(), "/")
	for i := 0; i+1 < len(segments); i++ {
		if segments[i] == "aff" && segments[i+1] != "" {
			if v, err := url.PathUnescape(segments[i+1]); err == nil {
				return limitKey(v)
			}
		}
	}
	return ""
}

// limitKey drops keys no partner can have, sparing the lookup.
func limitKey(k string) string {
	if len(k) > maxKeyLen {
		return ""
	}
	return k
}

// collectPreflight answers OPTIONS /collect. The script avoids preflights
// (text/plain), but a merchant's own fetch may trigger one. It names no
// program, so an origin is allowed when any program allows it; the POST
// then checks the program's own list.
func (s *Server) collectPreflight(c *fiber.Ctx) error {
	c.Vary(fiber.HeaderOrigin)
	budget, checked := s.limits.perIP.take(c.UserContext(), ipLimitKey(s.clientIP(c)))
	if checked {
		setLimitHeaders(c, budget)
	}
	if budget.Reached {
		return errRateLimited
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin != "" {
		all, err := s.store.AllAllowedOrigins(c.UserContext())
		if err != nil {
			return err
		}
		if originAllowed(origin, all) {
			c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
			c.Set(fiber.HeaderAccessControlAllowMethods, "POST")
			c.Set(fiber.HeaderAccessControlAllowHeaders, "Content-Type")
			c.Set(fiber.HeaderAccessControlMaxAge, preflightMaxAge)
		}
	}
	return c.SendStatus(fiber.StatusNoContent)
}
