package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// GET /aff/KEY?program=ID: a referral link on potrack's own host, for a
// partner who would rather share a link of the tracker than of the shop
// (or whose link must work before the shop's pages carry the script).
// potrack records the click and redirects (302) to the program's landing
// page with the referral parameter, where the script sets the referral
// cookie as after any referral link. The program may be left out while
// the server has one program only.
//
// The script on the landing page would record the click a second time, so
// the redirect adds po_click, a short token the server signed (HMAC under
// the program's signing secret, of the program, the key and the minute it
// was made); a click whose landing URL carries a valid one, for that
// partner and at most an hour old, is answered as recorded without
// storing another (affClickRecorded). A forged or stale token only means
// the click is stored once more, as without it.
//
// The visitor always gets the landing page: an unknown partner, an
// archived program or the per-IP rate limit reached only mean that no
// click is stored and the link carries no referral. A program with no
// landing page (no landing_url, no exact allowed origin) is a 404.

// affClickParam is the landing URL's parameter that says the click was
// recorded by /aff/KEY.
const affClickParam = "po_click"

// affClickMaxAge is how long after the redirect the landing page's click
// counts as the one already recorded.
const affClickMaxAge = time.Hour

var errNoLanding = errNotFound.WithMessage("This referral link's program has no landing page yet.")

func (s *Server) affRedirect(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer-when-downgrade")
	key, err := keyParam(c)
	if err != nil {
		return errNotFound.WithMessage("This referral link names no partner.")
	}
	p, err := s.affProgram(c)
	if err != nil {
		return err
	}
	landing := landingPage(p)
	if landing == "" {
		return errNoLanding
	}
	partner, err := s.store.CachedPartnerByKey(c.UserContext(), p.ID, key)
	if errors.Is(err, store.ErrNotFound) {
		return c.Redirect(landing, fiber.StatusFound)
	}
	if err != nil {
		return err
	}
	target := referralLink(landing, p, partner.Key)
	if c.Method() == fiber.MethodGet && s.affClickAllowed(c) {
		click := store.Click{ProgramID: p.ID, PartnerID: partner.ID, URL: s.publicURL(c) + c.OriginalURL(),
			Referrer: c.Get(fiber.HeaderReferer)}
		if len(click.URL) > maxURLLen {
			click.URL = click.URL[:maxURLLen]
		}
		if len(click.Referrer) > maxURLLen {
			click.Referrer = ""
		}
		if err := s.store.RecordClick(c.UserContext(), click); err != nil {
			// The visitor still reaches the shop, whose script records
			// the click: no token, so the landing's click is stored.
			slog.Warn("/aff: recording the click failed", "program", p.ID, "err", err)
		} else {
			target = withQuery(target, affClickParam, affClickToken(p, partner.Key, time.Now()))
		}
	}
	return c.Redirect(target, fiber.StatusFound)
}

// affProgram is the program the link names, or the only one there is.
func (s *Server) affProgram(c *fiber.Ctx) (*store.Program, error) {
	if id := c.Query("program"); id != "" {
		p, err := s.collectProgram(c, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errProgramNotFound
		}
		return p, err
	}
	list, err := s.store.Programs(c.UserContext())
	if err != nil {
		return nil, err
	}
	if len(list) != 1 {
		return nil, errNotFound.WithMessage("This referral link must name its program: /aff/KEY?program=ID.")
	}
	return list[0], nil
}

// affClickAllowed takes the click from the per-IP budget /collect uses.
func (s *Server) affClickAllowed(c *fiber.Ctx) bool {
	budget, _ := s.limits.perIP.take(c.UserContext(), ipLimitKey(s.clientIP(c)))
	return !budget.Reached
}

func withQuery(raw, name, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// affClickToken is MINUTE.MAC: the minute the click was recorded and the
// first 96 bits of its HMAC.
func affClickToken(p *store.Program, key string, at time.Time) string {
	minute := strconv.FormatInt(at.Unix()/60, 10)
	return minute + "." + affClickMAC(p, key, minute)
}

func affClickMAC(p *store.Program, key, minute string) string {
	m := hmac.New(sha256.New, []byte(p.SigningSecret))
	m.Write([]byte("potrack aff click\x00" + p.ID + "\x00" + key + "\x00" + minute))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// affClickRecorded reports whether a landing URL carries the token of a
// click /aff/KEY recorded for key within affClickMaxAge.
func affClickRecorded(p *store.Program, landing, key string, now time.Time) bool {
	u, err := url.Parse(landing)
	if err != nil {
		return false
	}
	minute, mac, ok := strings.Cut(u.Query().Get(affClickParam), ".")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(minute, 10, 64)
	if err != nil {
		return false
	}
	age := now.Sub(time.Unix(n*60, 0))
	if age < -time.Minute || age > affClickMaxAge {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(affClickMAC(p, key, minute)))
}
