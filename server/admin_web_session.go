package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// Admin sessions are rows (store/sessions.go). The cookie holds a random
// token; the database keeps only its SHA-256, the hash of the admin token
// the session was made under, and its times. So a copy of the database
// cannot sign anyone in, deleting the row ends the session on every
// instance, and a session made under another admin token is no session.
// Nothing about sessions is cached in memory: the row is the truth.

const (
	sessionCookie   = "potrack_admin"
	sessionLifetime = 12 * time.Hour
	// sessionTouchEvery is how stale last_seen_at may get before a page
	// view updates it, so page views do not each cost a write.
	sessionTouchEvery = 5 * time.Minute
	// sessionTokenBytes is the cookie token's randomness: 256 bits.
	sessionTokenBytes = 32
)

// session is a signed-in merchant's session.
type session struct {
	token string // the cookie's token
	csrf  string // the token every form of this session must carry
}

// sessionCSRF binds a form token to the session: it is keyed with the
// cookie's token, which only the browser holds, so nothing in the database
// lets a reader compute it.
func sessionCSRF(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("potrack admin csrf"))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *session) validCSRF(token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(s.csrf))
}

// newSession stores a session that ends after sessionLifetime (and clears
// expired ones).
func (s *Server) newSession(ctx context.Context) (*session, time.Time, error) {
	token := randomToken(sessionTokenBytes)
	var row *store.AdminSession
	err := s.store.Write(ctx, func(tx *store.Tx) (err error) {
		row, err = tx.InsertAdminSession(hashSecret(token), s.adminHash, sessionLifetime)
		return err
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return &session{token: token, csrf: sessionCSRF(token)}, row.ExpiresAt, nil
}

// currentSession returns the request's live session, or nil: the cookie's
// row must exist, be unexpired, and belong to the current admin token.
func (s *Server) currentSession(c *fiber.Ctx) (*session, error) {
	token := c.Cookies(sessionCookie)
	if token == "" {
		return nil, nil
	}
	ctx := c.UserContext()
	row, err := s.store.AdminSession(ctx, hashSecret(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if !now.Before(row.ExpiresAt) || !hmac.Equal([]byte(row.AdminHash), []byte(s.adminHash)) {
		return nil, nil
	}
	if now.Sub(row.LastSeenAt) >= sessionTouchEvery {
		// Best effort: a failed update of last_seen_at does not end the
		// session or fail the page.
		if err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.TouchAdminSession(row.TokenHash) }); err != nil {
			slog.Warn("admin session: update last_seen_at", "err", err)
		}
	}
	return &session{token: token, csrf: sessionCSRF(token)}, nil
}

func (s *Server) setSessionCookie(c *fiber.Ctx, value string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name: sessionCookie, Value: value, Path: "/admin", Expires: expires,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Secure: s.secureRequest(c),
	})
}

// secureRequest reports whether the browser reached us over https, directly
// or through a trusted proxy (or a public URL that says so).
func (s *Server) secureRequest(c *fiber.Ctx) bool {
	return c.Protocol() == "https" || strings.HasPrefix(s.cfg.PublicURL, "https://")
}

// sameOrigin rejects cross-site form posts: when the browser names the
// page the form came from (Origin, else Referer), its host must be ours.
// Browsers send Origin with every form POST; the CSRF token stays the main
// defence for the rare request without either.
func (s *Server) sameOrigin(c *fiber.Ctx) bool {
	from := c.Get(fiber.HeaderOrigin)
	if from == "" || from == "null" {
		from = c.Get(fiber.HeaderReferer)
	}
	if from == "" {
		return true
	}
	u, err := url.Parse(from)
	if err != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Host)
	if host == strings.ToLower(string(c.Request().Host())) || host == strings.ToLower(c.Hostname()) {
		return true
	}
	if pu, err := url.Parse(s.cfg.PublicURL); err == nil && pu.Host != "" && strings.ToLower(pu.Host) == host {
		return true
	}
	return false
}

// safeNext keeps the sign-in page's return address inside the admin page.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/admin") && !strings.HasPrefix(next, "/admin/login") &&
		!strings.ContainsAny(next, "\\\r\n") && !strings.HasPrefix(next, "//") {
		return next
	}
	return "/admin"
}

func (s *Server) loginPage(c *fiber.Ctx) error {
	setPageHeaders(c)
	sess, err := s.currentSession(c)
	if err != nil {
		return s.errorPage(c, err)
	}
	next := safeNext(c.Query("next"))
	if sess != nil {
		return c.Redirect(next, fiber.StatusSeeOther)
	}
	flash := ""
	if c.Query("signed_out") == "1" {
		flash = "You are signed out. Sign in again with the admin token."
	}
	return s.render(c, fiber.StatusOK, "login", nil, &pageData{Title: "Sign in", Flash: flash, Data: loginData{Next: next}})
}

type loginData struct {
	Next  string
	Error string
}

// login exchanges the admin token for a session cookie. There is no
// session yet to bind a CSRF token to; the same-origin check and the
// SameSite=Strict cookie keep other sites from signing a browser in.
func (s *Server) login(c *fiber.Ctx) error {
	setPageHeaders(c)
	if !s.sameOrigin(c) {
		return s.errorPage(c, errForbidden.WithMessage("This form was sent from another site. Open the sign-in page and try again."))
	}
	next := safeNext(c.FormValue("next"))
	if err := s.checkAdminToken(c, strings.TrimSpace(c.FormValue("token"))); err != nil {
		e := asError(err)
		msg := "That admin token is not right. Use the token printed when potrack first started, or the one in POTRACK_ADMIN_TOKEN."
		if e.Status != fiber.StatusUnauthorized {
			msg = e.Message
		}
		return s.render(c, e.Status, "login", nil, &pageData{Title: "Sign in", Data: loginData{Next: next, Error: msg}})
	}
	sess, expires, err := s.newSession(c.UserContext())
	if err != nil {
		return s.errorPage(c, err)
	}
	s.setSessionCookie(c, sess.token, expires)
	return c.Redirect(next, fiber.StatusSeeOther)
}

// logout ends the session: its row is deleted, so a copy of the cookie is
// refused everywhere from now on, and the cookie is dropped. It is not a
// s.form: signing out of a session that has already ended simply succeeds.
// A live session still needs its CSRF token, so another site cannot sign
// the merchant out.
func (s *Server) logout(c *fiber.Ctx) error {
	sess, err := s.formSession(c)
	if err != nil {
		return s.errorPage(c, err)
	}
	if sess != nil {
		hash := hashSecret(sess.token)
		err := s.store.Write(c.UserContext(), func(tx *store.Tx) error {
			if err := tx.DeleteShownOnceOf(hash); err != nil {
				return err
			}
			return tx.DeleteAdminSession(hash)
		})
		if err != nil {
			return s.errorPage(c, err)
		}
	}
	s.setSessionCookie(c, "", time.Unix(1, 0))
	return c.Redirect("/admin/login?signed_out=1", fiber.StatusSeeOther)
}
