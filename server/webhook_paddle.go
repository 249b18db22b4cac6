package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	paddle "github.com/PaddleHQ/paddle-go-sdk/v4"
	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/gateway"
	"github.com/potrack/potrack/store"
)

// Paddle Billing webhooks (docs/paddle.md): sales, refunds and
// attributions reported by Paddle, verified with the program's Paddle
// secret. package gateway reads the notification (gateway/paddle.go) and
// applyGatewayEvent records it, as for Stripe; the answers are the same.

// paddleTolerance is how far the signature's timestamp may be from now:
// the 5 seconds Paddle's own SDKs allow by default (which implies Paddle
// signs each delivery attempt when it sends it), so the server's clock
// must be right. Replays inside it are harmless: every event applies once.
const paddleTolerance = 5 * time.Second

func (s *Server) paddleWebhook(c *fiber.Ctx) error {
	p, err := s.store.CachedProgram(c.UserContext(), c.Params("program"))
	if errors.Is(err, store.ErrNotFound) {
		return errProgramNotFound
	}
	if err != nil {
		return err
	}
	body := c.Request().Body()
	if p.PaddleWebhookSecret == "" || !verifyPaddleSignature(body, c.Get("Paddle-Signature"), p.PaddleWebhookSecret, time.Now()) {
		return errPaddleBadSignature
	}
	ev, err := gateway.ParsePaddle(body)
	if err != nil {
		return err
	}
	ans, err := s.applyGatewayEvent(c.UserContext(), p, ev)
	if err != nil {
		return err
	}
	return c.JSON(ans)
}

// verifyPaddleSignature checks a Paddle-Signature header,
// "ts=UNIX;h1=HEX[;h1=HEX…]": the timestamp is within paddleTolerance of
// now, and one h1 is the HMAC-SHA256 of "ts:body" under the secret,
// compared in constant time by Paddle's Go SDK. Several h1 are tried one
// by one (the SDK takes one per header).
func verifyPaddleSignature(body []byte, header, secret string, now time.Time) bool {
	var (
		ts  string
		h1s []string
	)
	for _, part := range strings.Split(strings.TrimSpace(header), ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return false
		case k == "ts":
			ts = v
		case k == "h1":
			h1s = append(h1s, v)
		}
	}
	at, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(h1s) == 0 || len(h1s) > 4 {
		return false
	}
	if d := now.Sub(time.Unix(at, 0)); d > paddleTolerance || d < -paddleTolerance {
		return false
	}
	verifier := paddle.NewWebhookVerifier(secret)
	for _, h1 := range h1s {
		req := &http.Request{Method: http.MethodPost, Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(body))}
		req.Header.Set("Paddle-Signature", "ts="+ts+";h1="+h1)
		if ok, err := verifier.Verify(req); ok && err == nil {
			return true
		}
	}
	return false
}
