package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// Coupon codes (SPEC.md "Coupon codes"): a partner's codes, managed over
// the REST API (/v1/coupons), the admin API (/admin/api/programs/{id}/coupons)
// and the admin page, all through the functions here. A code is unique in
// its program whatever its case; a sale naming one attributes a new
// customer to the code's partner (tracking.RecordTransaction).

const maxCodeLen = 64

// couponCodeRe is what a merchant may create. A sale may name any text as
// its discount_code (up to maxCodeLen): a code the program does not have
// is stored on the sale and attributes nothing.
var couponCodeRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

const couponCodeRule = "code must be 1 to 64 characters, each a letter (A-Z, any case), a digit, '-' or '_'."

var (
	errCouponMissing = &Error{http.StatusNotFound, "coupon_not_found", "No code of this program matches (codes are compared without case).", ""}
	errCouponTaken   = &Error{http.StatusConflict, "code_taken", "", "code"}
)

// checkCouponCode validates a code a merchant creates; field names it.
func checkCouponCode(field, code string) error {
	if !couponCodeRe.MatchString(code) {
		return invalid(field, couponCodeRule)
	}
	return nil
}

// checkDiscountCode validates the code a sale names: trimmed, at most
// maxCodeLen characters of printable text. "" is no code.
func checkDiscountCode(field, code string) (string, error) {
	code = strings.TrimSpace(code)
	if err := checkText(field, code, maxCodeLen, false); err != nil {
		if e := asError(err); strings.HasSuffix(e.Message, "longer than the limit.") {
			return "", invalid(field, field+" is at most 64 characters.")
		}
		return "", err
	}
	return code, nil
}

type couponView struct {
	Code      string       `json:"code"`
	Partner   *partnerView `json:"partner"`
	CreatedAt time.Time    `json:"created_at"`
}

func viewCoupon(k *store.Coupon) *couponView {
	return &couponView{Code: k.Code, Partner: viewPartner(k.Partner), CreatedAt: k.CreatedAt}
}

// couponJSONIn is a new code: {code, partner: {key | id | email}}.
type couponJSONIn struct {
	Code    flexString      `json:"code"`
	Partner *partnerRefJSON `json:"partner"`
}

// createCoupon stores a new code for a partner of p. The same code in any
// case is 409, whoever holds it.
func (s *Server) createCoupon(ctx context.Context, p *store.Program, in couponJSONIn) (*store.Coupon, error) {
	code := strings.TrimSpace(string(in.Code))
	if err := checkCouponCode("code", code); err != nil {
		return nil, err
	}
	ref, err := in.Partner.ref("partner")
	if err != nil {
		return nil, err
	}
	if ref.IsZero() {
		return nil, invalid("partner", "partner is required: the partner who owns the code, as {\"key\": …}, {\"id\": …} or {\"email\": …}.")
	}
	coupon := &store.Coupon{ProgramID: p.ID, Code: code}
	err = s.store.Write(ctx, func(tx *store.Tx) error {
		partner, err := tx.Partner(p.ID, ref)
		if errors.Is(err, store.ErrNotFound) {
			return errPartnerNotFound.WithField("partner")
		}
		if err != nil {
			return err
		}
		coupon.Partner = partner
		return tx.InsertCoupon(coupon)
	})
	if errors.Is(err, store.ErrExists) {
		msg := "The code " + code + " is already taken in this program (codes are compared without case); delete it first, or choose another."
		if held, herr := s.store.Coupon(ctx, p.ID, code); herr == nil {
			msg = "The code " + code + " is already taken in this program, as " + held.Code + " by partner " + held.Partner.Key +
				" (codes are compared without case); delete it first, or choose another."
		}
		return nil, errCouponTaken.WithMessage(msg)
	}
	if err != nil {
		return nil, err
	}
	return coupon, nil
}

// codeParam is the :code path segment, percent-decoded and validated.
func codeParam(c *fiber.Ctx) (string, error) {
	code, err := url.PathUnescape(c.Params("code"))
	if err != nil || !couponCodeRe.MatchString(code) {
		return "", invalid("code", "The code in the address is not valid: "+couponCodeRule)
	}
	return code, nil
}

func (s *Server) coupon(c *fiber.Ctx, p *store.Program) (*store.Coupon, error) {
	code, err := codeParam(c)
	if err != nil {
		return nil, err
	}
	k, err := s.store.Coupon(c.UserContext(), p.ID, code)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errCouponMissing
	}
	return k, err
}

// deleteCoupon removes a code; sales that named it keep it.
func (s *Server) deleteCoupon(ctx context.Context, p *store.Program, code string) (*store.Coupon, error) {
	k, err := s.store.Coupon(ctx, p.ID, code)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errCouponMissing
	}
	if err != nil {
		return nil, err
	}
	err = s.store.Write(ctx, func(tx *store.Tx) error { return tx.DeleteCoupon(p.ID, code) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, errCouponMissing
	}
	return k, err
}

// listCoupons is a page of p's codes, or of one partner's (by key; an
// unknown partner has none).
func (s *Server) listCoupons(c *fiber.Ctx, p *store.Program) ([]*couponView, int, int, int, error) {
	limit, err := intQuery(c, "limit", defaultLimit, 1, maxLimit)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	page, err := intQuery(c, "page", 1, 1, 1_000_000)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	f := store.CouponFilter{ProgramID: p.ID, Limit: limit, Offset: (page - 1) * limit}
	if key := c.Query("partner"); key != "" {
		partner, err := s.store.Partner(c.UserContext(), p.ID, store.PartnerRef{Key: key})
		if errors.Is(err, store.ErrNotFound) {
			return []*couponView{}, 0, page, limit, nil
		}
		if err != nil {
			return nil, 0, 0, 0, err
		}
		f.PartnerID = partner.ID
	}
	list, total, err := s.store.Coupons(c.UserContext(), f)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	out := make([]*couponView, len(list))
	for i, k := range list {
		out[i] = viewCoupon(k)
	}
	return out, total, page, limit, nil
}

// The REST API: /v1/coupons.

func (s *Server) v1CreateCoupon(c *fiber.Ctx) error {
	var in couponJSONIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	k, err := s.createCoupon(c.UserContext(), programOf(c), in)
	if err != nil {
		return err
	}
	return restOK(c, fiber.StatusCreated, viewCoupon(k))
}

func (s *Server) v1ListCoupons(c *fiber.Ctx) error {
	data, total, page, limit, err := s.listCoupons(c, programOf(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": data, "links": pageLinks(c, page, limit, total), "meta": pageMeta(c, page, limit, total, len(data)), "status": 1})
}

func (s *Server) v1GetCoupon(c *fiber.Ctx) error {
	k, err := s.coupon(c, programOf(c))
	if err != nil {
		return err
	}
	return restOK(c, fiber.StatusOK, viewCoupon(k))
}

func (s *Server) v1DeleteCoupon(c *fiber.Ctx) error {
	code, err := codeParam(c)
	if err != nil {
		return err
	}
	k, err := s.deleteCoupon(c.UserContext(), programOf(c), code)
	if err != nil {
		return err
	}
	return restOK(c, fiber.StatusOK, viewCoupon(k))
}

// The admin API: /admin/api/programs/{id}/coupons.

func (s *Server) adminCreateCoupon(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	var in couponJSONIn
	if err := decodeStrictJSON(c, &in); err != nil {
		return err
	}
	k, err := s.createCoupon(c.UserContext(), p, in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"data": viewCoupon(k)})
}

func (s *Server) adminListCoupons(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	data, total, page, limit, err := s.listCoupons(c, p)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": data, "links": pageLinks(c, page, limit, total), "meta": pageMeta(c, page, limit, total, len(data))})
}

func (s *Server) adminGetCoupon(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	k, err := s.coupon(c, p)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": viewCoupon(k)})
}

func (s *Server) adminDeleteCoupon(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	code, err := codeParam(c)
	if err != nil {
		return err
	}
	k, err := s.deleteCoupon(c.UserContext(), p, code)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"data": viewCoupon(k)})
}
