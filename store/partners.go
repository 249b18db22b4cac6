package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/potrack/potrack/rules"
)

// ErrExists is returned when inserting a row whose key is already taken.
var ErrExists = errors.New("already exists")

// Partner is an affiliate of one program.
type Partner struct {
	ID        int64
	ProgramID string
	Key       string
	Email     string
	Name      string
	CreatedAt time.Time
}

// PartnerTotals sums up a partner's results.
type PartnerTotals struct {
	Clicks       int
	Customers    int
	Transactions int
	// Rewards holds the net (not reversed) reward per currency.
	Rewards []rules.Money
}

const partnerColumns = `id, program_id, key, email, name, created_at`

// InsertPartner stores a new partner; ErrExists when the key is taken.
func (t *Tx) InsertPartner(p *Partner) error {
	p.CreatedAt = t.now
	id, _, err := t.insert(`INSERT INTO partners (program_id, key, email, name, created_at) VALUES (?, ?, ?, ?, ?)`,
		p.ProgramID, p.Key, p.Email, p.Name, unix(p.CreatedAt))
	p.ID = id
	if isUnique(err) {
		return ErrExists
	}
	if err != nil {
		return err
	}
	if t.newPartners == nil {
		t.newPartners = map[int64]bool{}
	}
	t.newPartners[p.ID] = true
	return nil
}

// PartnerRef names a partner by key, id or email; the first one set wins.
// By says where the reference came from, which decides its rank among a
// new customer's candidates (rules.ChooseAttribution) and what the
// customer's AttributedBy says: AttributedPartner (named in the request,
// also when By is ""), AttributedCookie (the browser's referral cookie)
// or AttributedMetadata (a payment gateway's customer metadata).
type PartnerRef struct {
	Key   string
	ID    int64
	Email string
	By    string
}

// IsZero reports whether the reference names nobody.
func (r PartnerRef) IsZero() bool { return r.Key == "" && r.ID == 0 && r.Email == "" }

// Partner finds a partner of a program by reference.
func (s *Store) Partner(ctx context.Context, programID string, ref PartnerRef) (*Partner, error) {
	return partnerByRef(ctx, s.read, programID, ref)
}

// Partner finds a partner of a program by reference, inside the write. A
// partner by key found before comes from memory (see CachedPartnerByKey);
// a miss reads inside the write, which also sees partners this batch
// created. A partner found that the batch did not create was committed
// before it, so it is kept in memory too; one the batch created is not
// (the batch may yet fail).
func (t *Tx) Partner(programID string, ref PartnerRef) (*Partner, error) {
	if ref.Key != "" {
		if p := t.s.partners.get(programID, ref.Key); p != nil {
			return p, nil
		}
	}
	ctx, q := t.q()
	p, err := partnerByRef(ctx, q, programID, ref)
	if err == nil && !t.newPartners[p.ID] {
		t.s.partners.put(p)
	}
	return p, err
}

func partnerByRef(ctx context.Context, q querier, programID string, ref PartnerRef) (*Partner, error) {
	var row *sql.Row
	switch {
	case ref.Key != "":
		row = q.QueryRowContext(ctx, `SELECT `+partnerColumns+` FROM partners WHERE program_id = ? AND key = ?`, programID, ref.Key)
	case ref.ID != 0:
		row = q.QueryRowContext(ctx, `SELECT `+partnerColumns+` FROM partners WHERE program_id = ? AND id = ?`, programID, ref.ID)
	case ref.Email != "":
		row = q.QueryRowContext(ctx, `SELECT `+partnerColumns+` FROM partners WHERE program_id = ? AND email = ? ORDER BY id LIMIT 1`, programID, ref.Email)
	default:
		return nil, ErrNotFound
	}
	return scanPartner(row)
}

func scanPartner(row scanner) (*Partner, error) {
	var p Partner
	var created int64
	err := row.Scan(&p.ID, &p.ProgramID, &p.Key, &p.Email, &p.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p.CreatedAt = fromUnix(created)
	return &p, nil
}

// Partners lists a program's partners, newest first, with the total count.
func (s *Store) Partners(ctx context.Context, programID string, limit, offset int) ([]*Partner, int, error) {
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM partners WHERE program_id = ?`, programID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+partnerColumns+` FROM partners WHERE program_id = ?
		ORDER BY id DESC LIMIT ? OFFSET ?`, programID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*Partner
	for rows.Next() {
		p, err := scanPartner(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, p)
	}
	return out, total, rows.Err()
}

const partnerTotalsSQL = `SELECT
	(SELECT count(*) FROM clicks WHERE partner_id = ?1),
	(SELECT count(*) FROM customers WHERE partner_id = ?1),
	(SELECT count(*) FROM transactions t JOIN customers c ON c.id = t.customer_id WHERE c.partner_id = ?1)`

// PartnerTotals counts a partner's clicks, customers and its customers'
// transactions (rewarded or not), and sums its net rewards per currency.
func (s *Store) PartnerTotals(ctx context.Context, partnerID int64) (*PartnerTotals, error) {
	var t PartnerTotals
	if err := s.read.QueryRowContext(ctx, partnerTotalsSQL, partnerID).Scan(&t.Clicks, &t.Customers, &t.Transactions); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT currency, sum((amount_minor - reversed_minor) / 1000000000),
		sum((amount_minor - reversed_minor) % 1000000000) FROM rewards
		WHERE partner_id = ? GROUP BY currency ORDER BY currency`, partnerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	t.Rewards = []rules.Money{}
	for rows.Next() {
		var (
			m              rules.Money
			billions, rest int64
		)
		if err := rows.Scan(&m.Currency, &billions, &rest); err != nil {
			return nil, err
		}
		m.Minor = joinSum(billions, rest)
		t.Rewards = append(t.Rewards, m)
	}
	return &t, rows.Err()
}
