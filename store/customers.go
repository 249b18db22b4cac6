package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Customer is a buyer of a program, attributed to at most one partner,
// fixed when the customer is created.
type Customer struct {
	ID        int64
	ProgramID string
	Key       string
	Name      string
	Email     string
	Partner   *Partner // nil when not referred
	// AttributedBy is how Partner was decided when the customer was
	// created: AttributedPartner, AttributedCookie, AttributedCode or
	// AttributedMetadata; "" for a customer without partner, or one
	// stored before this was kept (schema 8). DiscountCode is the code
	// whose partner it took, when AttributedBy is AttributedCode.
	AttributedBy string
	DiscountCode string
	// Flags are the customer's fraud flags (rules.Flag…, comma-separated;
	// "" for none), decided when it is created; its rewards stay pending
	// until the merchant approves them (FlagsApprovedAt, zero until then).
	Flags           string
	FlagsApprovedAt time.Time
	CreatedAt       time.Time
}

// HeldByFlags reports whether the customer's rewards are held: flagged,
// and not approved.
func (c *Customer) HeldByFlags() bool { return c.Flags != "" && c.FlagsApprovedAt.IsZero() }

const customerSelect = `SELECT c.id, c.program_id, c.key, c.name, c.email, c.created_at,
	c.attributed_by, c.discount_code, p.id, p.program_id, p.key, p.email, p.name, p.created_at,
	c.flags, c.flags_approved_at
	FROM customers c LEFT JOIN partners p ON p.id = c.partner_id`

// InsertCustomer stores a new customer; ErrExists when the key is taken.
func (t *Tx) InsertCustomer(c *Customer) error {
	created, err := t.ClaimCustomer(c)
	if err == nil && !created {
		return ErrExists
	}
	return err
}

// ClaimCustomer stores a new customer unless its key is taken, and says
// which: one statement for a new customer, where a lookup before the
// insert costs two. A taken key changes nothing.
func (t *Tx) ClaimCustomer(c *Customer) (created bool, err error) {
	c.CreatedAt = t.now
	var partnerID sql.NullInt64
	if c.Partner != nil {
		partnerID = sql.NullInt64{Int64: c.Partner.ID, Valid: true}
	}
	wasDirty := t.dirty
	c.ID, created, err = t.insert(`INSERT INTO customers (program_id, key, name, email, partner_id, attributed_by, discount_code, created_at, flags)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (program_id, key) DO NOTHING`,
		c.ProgramID, c.Key, c.Name, c.Email, partnerID, c.AttributedBy, c.DiscountCode, unix(c.CreatedAt), c.Flags)
	t.claimed(created, err, wasDirty)
	return created, err
}

// claimed notes the outcome of an INSERT … ON CONFLICT DO NOTHING: a
// taken key changed nothing, so the write is as clean as it was before
// (see runBatch), and a conflict, even a forged one, then costs no replay
// of its batch; so is a statement that failed on a constraint (it undid
// itself).
func (t *Tx) claimed(created bool, err error, wasDirty bool) {
	if (err == nil && !created) || (err != nil && isConstraint(err)) {
		t.dirty = wasDirty
	}
}

// Customer finds a customer of a program by key.
func (s *Store) Customer(ctx context.Context, programID, key string) (*Customer, error) {
	return scanCustomer(s.read.QueryRowContext(ctx, customerSelect+` WHERE c.program_id = ? AND c.key = ?`, programID, key))
}

// Customer finds a customer of a program by key, inside the write; a key
// that does not exist costs a join-free lookup only (see Tx.Transaction).
func (t *Tx) Customer(programID, key string) (*Customer, error) {
	var id int64
	err := t.queryRow(`SELECT id FROM customers WHERE program_id = ? AND key = ?`, programID, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return scanCustomer(t.queryRow(customerSelect+` WHERE c.id = ?`, id))
}

// Customers lists a program's customers, newest first, with the total count.
func (s *Store) Customers(ctx context.Context, programID string, limit, offset int) ([]*Customer, int, error) {
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM customers WHERE program_id = ?`, programID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.read.QueryContext(ctx, customerSelect+` WHERE c.program_id = ? ORDER BY c.id DESC LIMIT ? OFFSET ?`, programID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, total, rows.Err()
}

func scanCustomer(row scanner) (*Customer, error) {
	var (
		c                  Customer
		created            int64
		pID, pCreated      sql.NullInt64
		pProg, pKey, pMail sql.NullString
		pName              sql.NullString
		approved           int64
	)
	err := row.Scan(&c.ID, &c.ProgramID, &c.Key, &c.Name, &c.Email, &created,
		&c.AttributedBy, &c.DiscountCode, &pID, &pProg, &pKey, &pMail, &pName, &pCreated,
		&c.Flags, &approved)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt = fromUnix(created)
	if approved != 0 {
		c.FlagsApprovedAt = fromUnix(approved)
	}
	if pID.Valid {
		c.Partner = &Partner{ID: pID.Int64, ProgramID: pProg.String, Key: pKey.String,
			Email: pMail.String, Name: pName.String, CreatedAt: fromUnix(pCreated.Int64)}
	}
	return &c, nil
}
