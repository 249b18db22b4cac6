package store

import (
	"database/sql"
	"errors"
)

// Payment gateways deliver events in no guaranteed order, so a refund can
// arrive before the sale it refunds. It is kept here, by transaction key,
// until the sale is stored.

// FullRefund as a pending total means the whole amount, whatever it is.
const FullRefund int64 = -1

// The stored total only grows: a late, smaller refund event must not undo a
// larger one, and a full refund wins over any partial one.
const savePendingRefundSQL = `INSERT INTO pending_refunds (program_id, key, refunded_minor, created_at)
	VALUES (?, ?, ?, ?)
	ON CONFLICT (program_id, key) DO UPDATE SET refunded_minor =
		CASE WHEN pending_refunds.refunded_minor < 0 OR excluded.refunded_minor < 0 THEN -1
		     WHEN pending_refunds.refunded_minor > excluded.refunded_minor THEN pending_refunds.refunded_minor
		     ELSE excluded.refunded_minor END`

// SavePendingRefund records that refundedTotal minor units (FullRefund: all
// of it) of the not yet stored transaction key are refunded.
func (t *Tx) SavePendingRefund(programID, key string, refundedTotal int64) error {
	if refundedTotal < 0 {
		refundedTotal = FullRefund
	}
	_, err := t.exec(savePendingRefundSQL, programID, key, refundedTotal, unix(t.now))
	return err
}

// TakePendingRefund returns and forgets the pending refund total of key;
// ok is false when there is none.
func (t *Tx) TakePendingRefund(programID, key string) (refundedTotal int64, ok bool, err error) {
	err = t.queryRow(`DELETE FROM pending_refunds WHERE program_id = ? AND key = ? RETURNING refunded_minor`,
		programID, key).Scan(&refundedTotal)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return refundedTotal, true, nil
}
