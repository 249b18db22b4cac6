package server

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/potrack/potrack/gateway"
	"github.com/potrack/potrack/store"
)

// Stripe webhooks: sales, refunds and attributions reported by the payment
// gateway itself, so sales are stored as verified. The signature is
// checked here with Stripe's own library; package gateway reads the event
// (gateway/stripe.go says which event means what) and applyGatewayEvent
// records it.

// stripeTolerance is how old a signature may be; older ones may be replays.
const stripeTolerance = 5 * time.Minute

func (s *Server) stripeWebhook(c *fiber.Ctx) error {
	p, err := s.store.CachedProgram(c.UserContext(), c.Params("program"))
	if errors.Is(err, store.ErrNotFound) {
		return errProgramNotFound
	}
	if err != nil {
		return err
	}
	if p.WebhookSecret == "" {
		return errStripeBadSignature
	}
	event, err := webhook.ConstructEventWithOptions(c.Request().Body(), c.Get("Stripe-Signature"), p.WebhookSecret,
		webhook.ConstructEventOptions{
			Tolerance: stripeTolerance,
			// Stripe renders events in the endpoint's API version, which is
			// rarely the library's. package gateway decodes only the few
			// fields it uses, and those read the same across versions.
			IgnoreAPIVersionMismatch: true,
		})
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader),
		errors.Is(err, webhook.ErrNoValidSignature), errors.Is(err, webhook.ErrTooOld):
		return errStripeBadSignature
	case err != nil:
		// The signature is checked first, so this payload is genuine but
		// not an event object. The decoder's text names Go types: not shown.
		return errBadRequest.WithMessage("The signed payload is not a Stripe event object of the expected shape.")
	}
	if event.Data == nil || len(event.Data.Raw) == 0 {
		return errBadRequest.WithMessage("The event has no data.object.")
	}
	ev, err := gateway.ParseStripe(event.ID, string(event.Type), event.Created, event.Data.Raw)
	if err != nil {
		return err
	}
	ans, err := s.applyGatewayEvent(c.UserContext(), p, ev)
	if err != nil {
		return err
	}
	return c.JSON(ans)
}
