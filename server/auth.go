package server

import (
	"context"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

const adminTokenSetting = "admin_token_hash"

// ensureAdminToken returns the hash of the admin token. A configured token
// wins; otherwise the stored hash is used, and on a first start a token is
// generated and only its hash stored.
func ensureAdminToken(ctx context.Context, st *store.Store, configured string) (hash, generated string, err error) {
	if configured != "" {
		return hashSecret(configured), "", nil
	}
	hash, err = st.Setting(ctx, adminTokenSetting)
	if err == nil {
		return hash, "", nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", "", err
	}
	generated = newAdminToken()
	hash = hashSecret(generated)
	err = st.Write(ctx, func(tx *store.Tx) error { return tx.SetSetting(adminTokenSetting, hash) })
	return hash, generated, err
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
	p, err := s.store.ProgramByAPIKeyHash(c.UserContext(), hashSecret(key))
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
	if !secretMatches(bearer(c), s.adminHash) {
		return errUnauthorized.WithMessage("Send the admin token as 'Authorization: Bearer <token>'.")
	}
	return c.Next()
}

const programLocal = "program"

func programOf(c *fiber.Ctx) *store.Program { return c.Locals(programLocal).(*store.Program) }
