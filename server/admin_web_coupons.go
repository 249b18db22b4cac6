package server

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// The admin page's coupon codes: each partner row on the Partners tab
// lists its codes with a button to delete one, and a form adds a code to
// a partner. Both post, then redirect back (post/redirect/get), through
// the same createCoupon and deleteCoupon as the APIs.

// couponFormData is the add-a-code form as entered, with its error.
type couponFormData struct {
	Code, Partner string
	Error         *Error
}

// couponSaved are the notices after a code form (?saved=…).
var couponSaved = map[string]string{
	"coupon":         "Code added. A new customer whose sale names it is attributed to its partner.",
	"coupon-deleted": "Code deleted. Sales that named it keep it; new sales naming it attribute nobody.",
}

// partnersWithCodes fills each row's codes, one query for the page.
func (s *Server) partnersWithCodes(c *fiber.Ctx, p *store.Program, rows []partnerRow) error {
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	codes, err := s.store.PartnerCoupons(c.UserContext(), p.ID, ids)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].Codes = codes[rows[i].ID]
	}
	return nil
}

// partnersBack is the Partners tab's address on the page the form came
// from, with a notice.
func partnersBack(p *store.Program, c *fiber.Ctx, saved string) string {
	u := "/admin/programs/" + url.PathEscape(p.ID) + "/partners?saved=" + saved
	if n, err := strconv.Atoi(c.FormValue("page")); err == nil && n > 1 && n <= 1_000_000 {
		u += "&page=" + strconv.Itoa(n)
	}
	return u + "#partners"
}

func (s *Server) createCouponForm(c *fiber.Ctx, sess *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	f := couponFormData{Code: strings.TrimSpace(c.FormValue("code")), Partner: strings.TrimSpace(c.FormValue("partner"))}
	if f.Partner == "" {
		err = invalid("partner", "Choose the partner who owns the code (their key).")
	} else if err = checkText("partner", f.Partner, maxKeyLen, true); err == nil {
		_, err = s.createCoupon(c.UserContext(), p, couponJSONIn{Code: flexString(f.Code), Partner: &partnerRefJSON{Key: flexString(f.Partner)}})
	}
	if e := formError(err); e != nil {
		if e.Code == errPartnerNotFound.Code {
			e = e.WithMessage("No partner of this program has the key " + f.Partner + ".")
		}
		f.Error = e
		return s.renderPartners(c, sess, e.Status, p, partnersData{Coupon: f}, "")
	}
	if err != nil {
		return err
	}
	return c.Redirect(partnersBack(p, c, "coupon"), fiber.StatusSeeOther)
}

func (s *Server) deleteCouponForm(c *fiber.Ctx, _ *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	code := strings.TrimSpace(c.FormValue("code"))
	if !couponCodeRe.MatchString(code) {
		return errCouponMissing
	}
	// A code already gone (another tab, a second click) is what was asked.
	if _, err := s.deleteCoupon(c.UserContext(), p, code); err != nil && !errors.Is(err, errCouponMissing) {
		return err
	}
	return c.Redirect(partnersBack(p, c, "coupon-deleted"), fiber.StatusSeeOther)
}

// attributionText is how the transactions table says a sale was
// attributed: "code SUMMER", "cookie", "partner", "metadata", or "" when
// nobody was (or before potrack kept it).
func attributionText(t *store.Transaction) string {
	switch t.AttributedBy {
	case "":
		return ""
	case store.AttributedCode:
		code := t.DiscountCode
		if t.Customer != nil && t.Customer.DiscountCode != "" {
			code = t.Customer.DiscountCode // the code that attributed the customer
		}
		return strings.TrimSpace("code " + code)
	}
	return t.AttributedBy
}

// unusedCode is the code a sale named when it is not what attributed it
// (an existing customer, an explicit partner, a code the program lacks).
func unusedCode(t *store.Transaction) string {
	if t.DiscountCode == "" {
		return ""
	}
	if t.AttributedBy == store.AttributedCode && (t.Customer == nil || t.Customer.DiscountCode == "" ||
		store.NormalizeCode(t.Customer.DiscountCode) == store.NormalizeCode(t.DiscountCode)) {
		return ""
	}
	return t.DiscountCode
}
