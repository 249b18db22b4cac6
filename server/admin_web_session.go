package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// Admin sessions are stateless: the cookie holds an expiry and a nonce,
// signed with a key derived from a random server key (kept in the settings
// table, so sessions survive restarts) and the admin token's hash, so that
// changing the admin token signs everyone out. No table, no migration.

const (
	sessionCookie     = "potrack_admin"
	sessionKeySetting = "admin_session_key"
	sessionLifetime   = 12 * time.Hour
)

// session is a signed-in merchant's session.
type session struct {
	value string // the cookie value
	csrf  string // the token every form of this session must carry
}

func (s *session) validCSRF(token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(s.csrf))
}

// signingKey returns the key sessions are signed with, creating the server
// key on first use.
func (s *Server) signingKey(ctx context.Context) ([]byte, error) {
	w := s.web
	w.keyMu.Lock()
	defer w.keyMu.Unlock()
	if w.sessionKey == nil {
		serverKey, err := s.store.Setting(ctx, sessionKeySetting)
		if errors.Is(err, store.ErrNotFound) {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			serverKey = hex.EncodeToString(b)
			// Keep a key another server process stored first, so both
			// accept the same cookies.
			err = s.store.Write(ctx, func(tx *store.Tx) error { return tx.SetSetting(sessionKeySetting, serverKey) })
			if err == nil {
				serverKey, err = s.store.Setting(ctx, sessionKeySetting)
			}
		}
		if err != nil {
			return nil, err
		}
		m := hmac.New(sha256.New, []byte(serverKey))
		m.Write([]byte("potrack admin session|"))
		w.sessionKey = m.Sum(nil)
	}
	// The admin hash is mixed in on every use, not cached, so the key
	// follows a change of the admin token.
	m := hmac.New(sha256.New, w.sessionKey)
	m.Write([]byte(s.adminHash))
	return m.Sum(nil), nil
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(m.Sum(nil))
}

// newSession signs a session that ends after sessionLifetime.
func (s *Server) newSession(ctx context.Context) (*session, time.Time, error) {
	key, err := s.signingKey(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	expires := time.Now().Add(sessionLifetime)
	exp := strconv.FormatInt(expires.Unix(), 10)
	nonce := randomToken(12)
	value := exp + "." + nonce + "." + mac(key, "session", exp, nonce)
	return &session{value: value, csrf: mac(key, "csrf", value)}, expires, nil
}

// currentSession returns the request's valid session, or nil.
func (s *Server) currentSession(c *fiber.Ctx) (*session, error) {
	value := c.Cookies(sessionCookie)
	parts := strings.Split(value, ".")
	if len(parts) != 3 {
		return nil, nil
	}
	key, err := s.signingKey(c.UserContext())
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(parts[2]), []byte(mac(key, "session", parts[0], parts[1]))) {
		return nil, nil
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || time.Now().Unix() >= exp {
		return nil, nil
	}
	return &session{value: value, csrf: mac(key, "csrf", value)}, nil
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
	return s.render(c, fiber.StatusOK, "login", nil, &pageData{Title: "Sign in", Data: loginData{Next: next}})
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
	s.setSessionCookie(c, sess.value, expires)
	return c.Redirect(next, fiber.StatusSeeOther)
}

// logout drops the session cookie. It is not a s.form: signing out of a
// session that has already ended simply succeeds. A live session still
// needs its CSRF token, so another site cannot sign the merchant out.
func (s *Server) logout(c *fiber.Ctx) error {
	if _, err := s.formSession(c); err != nil {
		return s.errorPage(c, err)
	}
	// A stateless session cannot be revoked on the server; the cookie is
	// dropped here, and changing the admin token ends every session.
	s.setSessionCookie(c, "", time.Unix(1, 0))
	return c.Redirect("/admin/login", fiber.StatusSeeOther)
}
