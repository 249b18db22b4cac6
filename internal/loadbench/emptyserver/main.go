// Command emptyserver is the ceiling loadbench compares potrack with: a
// Fiber app configured like potrack's (Immutable, streamed bodies) whose
// handlers read the body and answer 201 with a small JSON body, doing
// nothing else.
package main

import (
	"flag"
	"log"

	"github.com/gofiber/fiber/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()
	app := fiber.New(fiber.Config{Immutable: true, DisableStartupMessage: true, StreamRequestBody: true})
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Post("/*", func(c *fiber.Ctx) error {
		_ = c.Request().Body()
		return c.Status(fiber.StatusCreated).JSON(fiber.Map{"status": "created"})
	})
	log.Fatal(app.Listen(*addr))
}
