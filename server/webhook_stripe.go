package server

import "github.com/gofiber/fiber/v2"

// stripeWebhook is POST /webhooks/stripe/:program (issue 5).
func (s *Server) stripeWebhook(c *fiber.Ctx) error { return errNotFound }
