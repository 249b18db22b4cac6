package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Coupon is a discount code that belongs to a partner: a sale naming it
// attributes a new customer to that partner (SPEC.md "Coupon codes").
// Codes are unique per program whatever their case.
type Coupon struct {
	ID        int64
	ProgramID string
	Partner   *Partner
	Code      string // as the merchant typed it
	CreatedAt time.Time
}

// NormalizeCode is the form a code is compared in: trimmed and lower-cased.
func NormalizeCode(code string) string { return strings.ToLower(strings.TrimSpace(code)) }

const couponSelect = `SELECT k.id, k.program_id, k.code, k.created_at,
	p.id, p.program_id, p.key, p.email, p.name, p.created_at
	FROM coupons k JOIN partners p ON p.id = k.partner_id`

// InsertCoupon stores a new code for c.Partner (which must exist);
// ErrExists when the program has the code already, in any case.
func (t *Tx) InsertCoupon(c *Coupon) error {
	c.CreatedAt = t.now
	c.Code = strings.TrimSpace(c.Code)
	wasDirty := t.dirty
	id, created, err := t.insert(`INSERT INTO coupons (program_id, partner_id, code, code_norm, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (program_id, code_norm) DO NOTHING`,
		c.ProgramID, c.Partner.ID, c.Code, NormalizeCode(c.Code), unix(c.CreatedAt))
	t.claimed(created, err, wasDirty)
	if err != nil {
		return err
	}
	if !created {
		return ErrExists
	}
	c.ID = id
	return nil
}

// DeleteCoupon removes a program's code (any case); ErrNotFound when it
// has none. Sales that named it keep their discount_code and attribution.
func (t *Tx) DeleteCoupon(programID, code string) error {
	res, err := t.exec(`DELETE FROM coupons WHERE program_id = ? AND code_norm = ?`, programID, NormalizeCode(code))
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// Coupon finds a program's code, whatever its case; ErrNotFound when the
// program has none.
func (s *Store) Coupon(ctx context.Context, programID, code string) (*Coupon, error) {
	return scanCoupon(s.read.QueryRowContext(ctx, couponSelect+` WHERE k.program_id = ? AND k.code_norm = ?`,
		programID, NormalizeCode(code)))
}

// Coupon finds a program's code inside the write, whatever its case;
// ErrNotFound when the program has none. This is what attribution asks.
func (t *Tx) Coupon(programID, code string) (*Coupon, error) {
	norm := NormalizeCode(code)
	if norm == "" {
		return nil, ErrNotFound
	}
	return scanCoupon(t.queryRow(couponSelect+` WHERE k.program_id = ? AND k.code_norm = ?`, programID, norm))
}

// CouponFilter narrows a list of codes; PartnerID 0 lists every partner's.
type CouponFilter struct {
	ProgramID string
	PartnerID int64
	Limit     int // 0: all
	Offset    int
}

// Coupons lists a program's codes (or one partner's), in code order, with
// the number of all that match.
func (s *Store) Coupons(ctx context.Context, f CouponFilter) ([]*Coupon, int, error) {
	cond := ` WHERE k.program_id = ?`
	args := []any{f.ProgramID}
	if f.PartnerID != 0 {
		cond += ` AND k.partner_id = ?`
		args = append(args, f.PartnerID)
	}
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM coupons k`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	q := couponSelect + cond + ` ORDER BY k.code_norm`
	if f.Limit > 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, f.Offset)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []*Coupon{}
	for rows.Next() {
		c, err := scanCoupon(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, total, rows.Err()
}

// PartnerCoupons lists the codes of a page of partners at once, by
// partner id, each partner's in code order (for the admin page's list).
func (s *Store) PartnerCoupons(ctx context.Context, programID string, partnerIDs []int64) (map[int64][]*Coupon, error) {
	out := map[int64][]*Coupon{}
	if len(partnerIDs) == 0 {
		return out, nil
	}
	args := []any{programID}
	for _, id := range partnerIDs {
		args = append(args, id)
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(partnerIDs)), ",")
	rows, err := s.read.QueryContext(ctx, couponSelect+` WHERE k.program_id = ? AND k.partner_id IN (`+marks+`) ORDER BY k.code_norm`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCoupon(rows)
		if err != nil {
			return nil, err
		}
		out[c.Partner.ID] = append(out[c.Partner.ID], c)
	}
	return out, rows.Err()
}

func scanCoupon(row scanner) (*Coupon, error) {
	var (
		c                Coupon
		p                Partner
		created, pCreate int64
	)
	err := row.Scan(&c.ID, &c.ProgramID, &c.Code, &created, &p.ID, &p.ProgramID, &p.Key, &p.Email, &p.Name, &pCreate)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt, p.CreatedAt = fromUnix(created), fromUnix(pCreate)
	c.Partner = &p
	return &c, nil
}
