package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

const adminTokenSetting = "admin_token_hash"

// minAdminTokenLen refuses configured tokens short enough to guess.
const minAdminTokenLen = 16

// ensureAdminToken returns the hash of the admin token. A configured token
// wins; otherwise the stored hash is used, and on a first start a token is
// generated and only its hash stored. The hash of the token in use is
// stored either way, so that a start with another configured token sees the
// change and ends every admin session.
func ensureAdminToken(ctx context.Context, st *store.Store, configured string) (hash, generated string, err error) {
	stored, err := st.Setting(ctx, adminTokenSetting)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", "", err
	}
	if configured != "" {
		if len(configured) < minAdminTokenLen {
			return "", "", fmt.Errorf("the admin token must be at least %d characters; leave it unset to have a strong one generated", minAdminTokenLen)
		}
		hash = hashSecret(configured)
		if stored == hash {
			return hash, "", nil
		}
		err = st.Write(ctx, func(tx *store.Tx) error {
			if err := tx.SetSetting(adminTokenSetting, hash); err != nil {
				return err
			}
			return tx.DeleteAdminSessions()
		})
		return hash, "", err
	}
	if stored != "" {
		return stored, "", nil
	}
	// A first start. Several processes may start together on the new
	// database: the one whose write comes first generates the token, and
	// the others find it under the write lock and print nothing.
	candidate := newAdminToken()
	err = st.Write(ctx, func(tx *store.Tx) error {
		switch existing, err := tx.Setting(adminTokenSetting); {
		case err == nil:
			hash, generated = existing, ""
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		hash, generated = hashSecret(candidate), candidate
		if err := tx.SetSetting(adminTokenSetting, hash); err != nil {
			return err
		}
		return tx.DeleteAdminSessions()
	})
	if err != nil {
		return "", "", err
	}
	return hash, generated, nil
}

func bearer(c *fiber.Ctx) string {
	h := c.Get(fiber.HeaderAuthorization)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// requireAPIKey finds the program whose API key the request carries; every
// /v1 handler works inside that program only.
func (s *Server) requireAPIKey(c *fiber.Ctx) error {
	key := bearer(c)
	if key == "" {
		return errUnauthorized
	}
	p, err := s.store.CachedProgramByAPIKeyHash(c.UserContext(), hashSecret(key))
	if errors.Is(err, store.ErrNotFound) {
		return errUnauthorized.WithMessage("The API key is not valid. Use the key shown when the program was created or rotated.")
	}
	if err != nil {
		return err
	}
	c.Locals(programLocal, p)
	return c.Next()
}

func (s *Server) requireAdminToken(c *fiber.Ctx) error {
	if err := s.checkAdminToken(c, bearer(c)); err != nil {
		return err
	}
	return c.Next()
}

// checkAdminToken accepts the admin token, always, and counts wrong ones
// per client IP: the first adminGuessRate.Limit of a minute get 401, later
// ones 429 with Retry-After until the minute is over. The right token is
// never refused, so a guesser cannot lock out a merchant behind the same
// address. Counting is the limiter's atomic increment, so parallel guesses
// cannot overshoot the budget. A request with no token at all is no guess
// and is not counted.
func (s *Server) checkAdminToken(c *fiber.Ctx, presented string) error {
	if presented == "" {
		return errUnauthorized.WithMessage("Send the admin token as 'Authorization: Bearer <token>'.")
	}
	if secretMatches(presented, s.adminHash) {
		return nil
	}
	lc, _ := s.limits.adminGuess.take(c.UserContext(), "admin:"+ipLimitKey(s.clientIP(c)))
	if lc.Reached {
		setLimitHeaders(c, lc)
		return errRateLimited.WithMessage("Too many wrong admin tokens from your address; try again after the time in Retry-After.")
	}
	return errUnauthorized.WithMessage("Send the admin token as 'Authorization: Bearer <token>'.")
}

const programLocal = "program"

func programOf(c *fiber.Ctx) *store.Program { return c.Locals(programLocal).(*store.Program) }
