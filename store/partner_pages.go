package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Partner pages (docs/partner-page.md): each partner may have one private
// link, /p/{token}. Only the token's SHA-256 hash is stored; a lookup
// finds the hash through its unique index, so no stored secret is ever
// compared byte by byte. Rotating replaces the hash (the old link stops
// working); revoking keeps the row, marked, and no token finds it.

// PartnerPage is the state of a partner's link.
type PartnerPage struct {
	PartnerID int64
	CreatedAt time.Time // when the current token was made
	RevokedAt time.Time // zero while the link works
}

// Active reports whether the link works.
func (p *PartnerPage) Active() bool { return p != nil && p.RevokedAt.IsZero() }

// SetPartnerPage gives a partner a new link token (by its hash): a first
// link, or a rotation that ends the old one. A revoked link comes back
// with the new token.
func (t *Tx) SetPartnerPage(partnerID int64, tokenHash string) error {
	_, err := t.exec(`INSERT INTO partner_pages (partner_id, token_hash, created_at, revoked_at) VALUES (?, ?, ?, 0)
		ON CONFLICT (partner_id) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at, revoked_at = 0`,
		partnerID, tokenHash, unix(t.now))
	return err
}

// RevokePartnerPage ends a partner's link; ErrNotFound when it has none
// that works.
func (t *Tx) RevokePartnerPage(partnerID int64) error {
	res, err := t.exec(`UPDATE partner_pages SET revoked_at = ? WHERE partner_id = ? AND revoked_at = 0`, unix(t.now), partnerID)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// PartnerPage returns the state of a partner's link; ErrNotFound when it
// never had one.
func (s *Store) PartnerPage(ctx context.Context, partnerID int64) (*PartnerPage, error) {
	var (
		p                PartnerPage
		created, revoked int64
	)
	err := s.read.QueryRowContext(ctx, `SELECT partner_id, created_at, revoked_at FROM partner_pages WHERE partner_id = ?`, partnerID).
		Scan(&p.PartnerID, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p.CreatedAt = fromUnix(created)
	if revoked != 0 {
		p.RevokedAt = fromUnix(revoked)
	}
	return &p, nil
}

// PartnerPages returns the link states of a program's partners, by id.
func (s *Store) PartnerPages(ctx context.Context, programID string) (map[int64]*PartnerPage, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT pp.partner_id, pp.created_at, pp.revoked_at FROM partner_pages pp
		JOIN partners p ON p.id = pp.partner_id WHERE p.program_id = ?`, programID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]*PartnerPage{}
	for rows.Next() {
		var (
			p                PartnerPage
			created, revoked int64
		)
		if err := rows.Scan(&p.PartnerID, &created, &revoked); err != nil {
			return nil, err
		}
		p.CreatedAt = fromUnix(created)
		if revoked != 0 {
			p.RevokedAt = fromUnix(revoked)
		}
		out[p.PartnerID] = &p
	}
	return out, rows.Err()
}

// PartnerByPageToken finds the partner whose working link has the token
// hashing to tokenHash; ErrNotFound for an unknown, rotated or revoked
// token.
func (s *Store) PartnerByPageToken(ctx context.Context, tokenHash string) (*Partner, error) {
	return scanPartner(s.read.QueryRowContext(ctx, `SELECT p.id, p.program_id, p.key, p.email, p.name, p.created_at
		FROM partner_pages pp JOIN partners p ON p.id = pp.partner_id WHERE pp.token_hash = ? AND pp.revoked_at = 0`, tokenHash))
}

// PartnerCustomers lists a partner's customers, newest first, at most
// limit.
func (s *Store) PartnerCustomers(ctx context.Context, partnerID int64, limit int) ([]*Customer, error) {
	rows, err := s.read.QueryContext(ctx, customerSelect+` WHERE c.partner_id = ? ORDER BY c.created_at DESC, c.id DESC LIMIT ?`, partnerID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
