package server

import "github.com/gofiber/fiber/v2"

// collect is POST /collect (issue 3).
func (s *Server) collect(c *fiber.Ctx) error { return errNotFound }

// collectPreflight answers OPTIONS /collect (issue 3).
func (s *Server) collectPreflight(c *fiber.Ctx) error { return errNotFound }
