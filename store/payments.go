package store

import (
	"database/sql"
	"errors"
)

// LinkPayment records that a payment (a Stripe charge or PaymentIntent id)
// paid an invoice, whose transaction key is the invoice id. A payment pays
// one invoice; a repeated link changes nothing.
func (t *Tx) LinkPayment(programID, payment, invoice string) error {
	_, err := t.exec(`INSERT INTO payment_links (program_id, payment, invoice, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (program_id, payment) DO NOTHING`, programID, payment, invoice, unix(t.now))
	return err
}

// LinkedInvoice returns the invoice the first linked payment paid; ok is
// false when none of them is linked. Empty ids are skipped.
func (t *Tx) LinkedInvoice(programID string, payments ...string) (invoice string, ok bool, err error) {
	for _, p := range payments {
		if p == "" {
			continue
		}
		err := t.queryRow(`SELECT invoice FROM payment_links WHERE program_id = ? AND payment = ?`, programID, p).Scan(&invoice)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		return invoice, true, nil
	}
	return "", false, nil
}
