package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Request bodies. Whoever can reach /collect can send anything, so a body
// is never trusted before it is read, and never read beyond what its route
// takes:
//   - No body is ever inflated: a Content-Encoding other than identity is
//     refused before the body is read (c.Body() would gunzip without a
//     bound; handlers read c.Request().Body(), which is the bytes received).
//   - Each route has its own limit (bodyLimitFor). A declared
//     Content-Length over it is refused at once; a chunked body is cut off
//     at it.
//   - fasthttp streams bodies (StreamRequestBody), so a declared length
//     reserves nothing: guardBody reads what arrives into a buffer that
//     grows with the bytes received, within the body timeout that
//     HeaderReceived sets when the headers are in.

const (
	collectBodyLimit = 16 << 10  // POST /collect: a po() call
	apiBodyLimit     = 256 << 10 // /v1 and /admin/api: JSON, batches of 100
	webhookBodyLimit = 1 << 20   // payment gateway events
	smallBodyLimit   = 64 << 10  // admin forms, and everything else

	// maxBodyLimit is the server-wide limit: no larger than the largest
	// route's.
	maxBodyLimit = webhookBodyLimit
)

// routeKey is a request path as Fiber routes it: without case and without
// trailing slashes ("/Collect/" reaches the /collect handler). Every check
// that depends on the route reads the path through it, so no spelling of a
// path escapes its route's rules.
func routeKey(path string) string {
	p := strings.ToLower(path)
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

// isV1 reports whether the path is under the REST API.
func isV1(path string) bool {
	k := routeKey(path)
	return k == "/v1" || strings.HasPrefix(k, "/v1/")
}

// bodyLimitFor is the largest body the route at path takes.
func bodyLimitFor(path string) int {
	path = routeKey(path)
	switch {
	case path == "/collect":
		return collectBodyLimit
	case strings.HasPrefix(path, "/webhooks/"):
		return webhookBodyLimit
	case path == "/v1" || strings.HasPrefix(path, "/v1/"), strings.HasPrefix(path, "/admin/api/"):
		return apiBodyLimit
	}
	return smallBodyLimit
}

// tooLarge is the 413 for a route's limit.
func tooLarge(limit int) *Error {
	return errBodyTooLarge.WithMessage("The request body is too large: this address takes at most " + strconv.Itoa(limit>>10) + " KiB.")
}

// requestConfig is fasthttp's HeaderReceived hook: once the headers are in,
// the rest of the request (its body) has the body timeout, and the route's
// own size limit.
func (s *Server) requestConfig(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	path, _, _ := strings.Cut(string(h.RequestURI()), "?")
	limit := bodyLimitFor(path)
	if h.ContentLength() > limit || !identityEncoding(string(h.Peek(fiber.HeaderContentEncoding))) {
		// fasthttp reads up to 8 KiB of a streamed body before the
		// handler runs; for a body guardBody will refuse anyway, two bytes
		// (fasthttp reads one past the limit) are enough, so the 413 or
		// 415 goes out at once.
		limit = 1
	}
	cfg := fasthttp.RequestConfig{ReadTimeout: s.cfg.BodyTimeout, MaxRequestBodySize: limit}
	if isExportPath(path) {
		// A CSV export streams for as long as its rows take (export.go).
		cfg.WriteTimeout = exportWriteTimeout
	}
	return cfg
}

// guardBody runs before every handler: it refuses encoded and oversized
// bodies, then reads the body within its route's limit.
func (s *Server) guardBody(c *fiber.Ctx) error {
	err := s.readBody(c)
	if err != nil && routeKey(c.Path()) == "/collect" {
		// /collect's refusals are readable by the page and counted, like
		// the ones its handler makes (collect).
		c.Vary(fiber.HeaderOrigin)
		if o := c.Get(fiber.HeaderOrigin); o != "" {
			c.Set(fiber.HeaderAccessControlAllowOrigin, o)
		}
		s.metrics.collected.WithLabelValues("unknown", asError(err).Code).Inc()
	}
	if err != nil {
		return err
	}
	return c.Next()
}

func (s *Server) readBody(c *fiber.Ctx) error {
	req := c.Request()
	if ce := req.Header.Peek(fiber.HeaderContentEncoding); len(ce) > 0 && !identityEncoding(string(ce)) {
		// The body is left unread, so the connection cannot serve another
		// request.
		c.Context().SetConnectionClose()
		return errUnsupportedEncoding
	}
	limit := bodyLimitFor(c.Path())
	if req.Header.ContentLength() > limit {
		c.Context().SetConnectionClose()
		return tooLarge(limit)
	}
	if stream := req.BodyStream(); stream != nil {
		var buf bytes.Buffer
		n, err := buf.ReadFrom(io.LimitReader(stream, int64(limit)+1))
		req.CloseBodyStream()
		switch {
		case err != nil:
			c.Context().SetConnectionClose()
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return errBodyTimeout
			}
			return errBadRequest.WithMessage("The request body could not be read.")
		case n > int64(limit):
			c.Context().SetConnectionClose()
			return tooLarge(limit)
		}
		req.SetBodyRaw(buf.Bytes())
	}
	if isV1(c.Path()) && len(req.Body()) > 0 && !jsonContentType(string(req.Header.ContentType())) {
		return errNotJSON
	}
	return nil
}

// identityEncoding reports whether a Content-Encoding value names no
// encoding but identity ("identity", "Identity, identity").
func identityEncoding(v string) bool {
	for _, part := range strings.Split(v, ",") {
		if p := strings.TrimSpace(part); p != "" && !strings.EqualFold(p, "identity") {
			return false
		}
	}
	return true
}

// jsonContentType accepts what JSON clients send: application/json, any
// application/*+json, or no type at all. Anything else, text/plain and
// multipart/form-data included, is another type (SPEC.md: 415).
func jsonContentType(v string) bool {
	if strings.TrimSpace(v) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
