package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/gateway"
	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// Error is the one error type handlers return. errorHandler turns it (and
// any other error, through asError) into the JSON body of the API that was
// called.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// WithField returns a copy of e that names the offending field.
func (e *Error) WithField(field string) *Error {
	c := *e
	c.Field = field
	return &c
}

// WithMessage returns a copy of e with a more specific message.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

var (
	errBadRequest         = &Error{http.StatusBadRequest, "bad_request", "The request body is not valid JSON of the expected shape.", ""}
	errUnauthorized       = &Error{http.StatusUnauthorized, "unauthorized", "Send a valid key as 'Authorization: Bearer <key>'.", ""}
	errNotFound           = &Error{http.StatusNotFound, "not_found", "There is nothing at this address.", ""}
	errMethodNotAllowed   = &Error{http.StatusMethodNotAllowed, "method_not_allowed", "This address does not take that method.", ""}
	errBodyTooLarge       = &Error{http.StatusRequestEntityTooLarge, "body_too_large", "The request body is too large.", ""}
	errKeyConflict        = &Error{http.StatusConflict, "key_conflict", "This key is already used with different content; send a new key for a new record.", "key"}
	errCustomerNotFound   = &Error{http.StatusUnprocessableEntity, "customer_not_found", "The customer does not exist; create it first or pass options.create_customer.", "customer.key"}
	errPartnerNotFound    = &Error{http.StatusUnprocessableEntity, "partner_not_found", "No partner of this program matches.", "partner"}
	errProgramNotFound    = &Error{http.StatusNotFound, "program_not_found", "No program has this id.", ""}
	errPartnerMissing     = &Error{http.StatusNotFound, "partner_not_found", "No partner of this program has this key.", ""}
	errCustomerMissing    = &Error{http.StatusNotFound, "customer_not_found", "No customer of this program has this key.", ""}
	errTransactionMissing = &Error{http.StatusNotFound, "transaction_not_found", "No transaction of this program has this key.", ""}
	errUnavailable        = &Error{http.StatusServiceUnavailable, "unavailable", "The server is shutting down; try again shortly.", ""}

	// Request bodies (bodies.go).
	errUnsupportedEncoding = &Error{http.StatusUnsupportedMediaType, "unsupported_encoding",
		"Request bodies are never decompressed; send the body without Content-Encoding.", ""}
	errNotJSON = &Error{http.StatusUnsupportedMediaType, "unsupported_media_type",
		"The request body must be JSON, sent with Content-Type: application/json.", ""}
	errBodyTimeout = &Error{http.StatusRequestTimeout, "request_timeout",
		"The request body did not arrive in time.", ""}
	errInternal = &Error{http.StatusInternalServerError, "internal", "Something went wrong on our side; the error was logged.", ""}

	// POST /collect.
	errOriginNotAllowed = &Error{http.StatusForbidden, "origin_not_allowed",
		"This site's origin is not in the program's allowed_origins; add it in the admin.", ""}
	errJSTrackingDisabled = &Error{http.StatusForbidden, "js_tracking_disabled",
		"This program does not accept sales from the browser; turn on JS tracking in the admin, or use the REST API.", ""}
	errBadSignature = &Error{http.StatusForbidden, "bad_signature",
		"This program requires data.signature: the hex HMAC-SHA256, under the program's signing secret, of key|amount|CURRENCY|customer_key|product_id|product_type, made by your backend.", "data.signature"}
	errRateLimited = &Error{http.StatusTooManyRequests, "rate_limited", "Too many requests; try again after the time in Retry-After.", ""}

	// Stripe webhooks.
	errStripeBadSignature = &Error{http.StatusBadRequest, "bad_signature",
		"The Stripe-Signature header is missing, does not match the program's webhook secret, or is more than 5 minutes old.", ""}
	// Paddle webhooks.
	errPaddleBadSignature = &Error{http.StatusBadRequest, "bad_signature",
		"The Paddle-Signature header is missing, does not match the program's Paddle webhook secret, or is more than 5 seconds old.", ""}

	// The admin page.
	errForbidden = &Error{http.StatusForbidden, "forbidden", "You may not do this.", ""}
)

// invalid is a 422 for one field.
func invalid(field, msg string) *Error {
	return &Error{http.StatusUnprocessableEntity, "invalid_field", msg, field}
}

// asError maps any error a handler returns onto an *Error.
func asError(err error) *Error {
	var (
		e  *Error
		fe *fiber.Error
		ve *rules.FieldError
		be *gateway.BadEvent
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &ve):
		return invalid(ve.Field, ve.Message)
	case errors.As(err, &be):
		// A signed gateway payload that is not an event of the expected shape.
		return errBadRequest.WithMessage(be.Message)
	case errors.Is(err, tracking.ErrKeyConflict):
		return errKeyConflict
	case errors.Is(err, tracking.ErrCustomerNotFound):
		return errCustomerNotFound
	case errors.Is(err, tracking.ErrPartnerNotFound):
		return errPartnerNotFound
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrClosed):
		return errUnavailable
	case errors.Is(err, store.ErrBusy):
		return errUnavailable.WithMessage("The database is busy; nothing was stored. Try again shortly.")
	case store.Unreachable(err):
		return errUnavailable.WithMessage("The database cannot be reached; try again shortly (a sale sent again with its key is stored once).")
	case errors.As(err, &fe):
		switch fe.Code {
		case http.StatusNotFound:
			return errNotFound
		case http.StatusMethodNotAllowed:
			return errMethodNotAllowed
		case http.StatusRequestEntityTooLarge:
			return errBodyTooLarge
		case http.StatusInternalServerError:
			return errInternal
		case http.StatusRequestTimeout:
			return errBodyTimeout.WithMessage("The request did not arrive in time.")
		}
		// Fiber's errors for requests that are not valid HTTP carry
		// fasthttp's parser text, with the raw request echoed: never show
		// it, only the status's own words.
		text := http.StatusText(fe.Code)
		if text == "" || fe.Code == http.StatusBadRequest || fe.Code >= 500 {
			return errBadRequest.WithMessage("The request is not valid HTTP.")
		}
		return &Error{fe.Code, strings.ToLower(strings.ReplaceAll(text, " ", "_")), text + ".", ""}
	}
	return errInternal
}

// errorHandler is Fiber's ErrorHandler: the only place that writes error
// bodies. /v1 answers in Partnero's shape, everything else in ours.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	e := asError(err)
	if e.Status >= 500 {
		slog.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
		// A read that fails on the disk or a damaged file makes /healthz
		// say so (writes report their own failures).
		s.store.NoteReadError(err)
	}
	c.Status(e.Status)
	if isV1(c.Path()) {
		body := restError{Status: 0, Message: e.Message, Errors: map[string][]string{}}
		if e.Field != "" {
			body.Errors[e.Field] = []string{e.Message}
		}
		return c.JSON(body)
	}
	return c.JSON(errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field}})
}

type restError struct {
	Status  int                 `json:"status"`
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// decodeJSON reads the request body into v. Shape errors name the field so
// the caller can fix it. Unknown fields are ignored: Partnero clients send
// more than we read.
func decodeJSON(c *fiber.Ctx, v any) error { return decodeBody(c, v, false) }

// decodeStrictJSON is decodeJSON refusing unknown fields, for the admin API,
// where a misspelt setting silently ignored would be a trap.
func decodeStrictJSON(c *fiber.Ctx, v any) error { return decodeBody(c, v, true) }

func decodeBody(c *fiber.Ctx, v any, strict bool) error {
	// Never c.Body(): it inflates a Content-Encoding without a bound.
	body := c.Request().Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return errBadRequest.WithMessage("The request body is empty; send a JSON object.")
	}
	// Decoded values never point into body (strings and RawMessages are
	// copies), so Fiber may reuse its buffer afterwards.
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err, "")
	}
	if dec.More() {
		return errBadRequest.WithMessage("The request body has data after the JSON object.")
	}
	return nil
}

// jsonProblem explains a JSON decoding error in the merchant's terms: which
// field, and what it should be (never a Go type name). prefix names the
// part of the body that was decoded ("data" for a /collect call's data).
func jsonProblem(err error, prefix string) error {
	// maxEchoedField bounds what a message repeats of the request.
	const maxEchoedField = 100
	join := func(field string) string {
		switch {
		case prefix == "":
			return field
		case field == "":
			return prefix
		}
		return prefix + "." + field
	}
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
		ve *rules.FieldError
	)
	switch {
	case errors.As(err, &ve):
		return invalid(join(ve.Field), ve.Message)
	case errors.As(err, &te):
		field := join(te.Field)
		if field == "" {
			return errBadRequest.WithMessage("The request body must be a JSON object.")
		}
		return errBadRequest.WithMessage("Field '" + field + "' must be " + jsonKind(te.Type) + ".").WithField(field)
	case errors.As(err, &se):
		return errBadRequest.WithMessage(fmt.Sprintf("The request body is not valid JSON (error at byte %d).", se.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errBadRequest.WithMessage("The request body ends before its JSON does.")
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field = join(strings.Trim(field, `"`))
		if len(field) > maxEchoedField {
			return errBadRequest.WithMessage("The request body has an unknown field.")
		}
		return errBadRequest.WithMessage("Unknown field '" + field + "'.").WithField(field)
	}
	// Our own UnmarshalJSON methods speak plainly already. The JSON
	// library's other errors ("json: invalid number literal, trying to
	// unmarshal ...") name Go types and repeat the input: never shown.
	if msg := err.Error(); !strings.HasPrefix(msg, "json:") && len(msg) <= maxEchoedField {
		return errBadRequest.WithMessage("The request body is not valid: " + msg + ".").WithField(prefix)
	}
	return errBadRequest.WithField(prefix)
}

// jsonKind names what a Go type is in JSON.
func jsonKind(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(json.Number("")), reflect.TypeOf(rules.Decimal("")):
		return "a number"
	case reflect.TypeOf(flexString("")):
		return "a string or a number"
	}
	if t.Kind() == reflect.Pointer {
		return jsonKind(t.Elem())
	}
	return gateway.JSONKind(t)
}
