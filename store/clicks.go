package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/potrack/potrack/rules"
)

// Clicks are the most frequent write and the simplest: one row, one
// statement, no decision to make. They have their own queue, and every
// click waiting when the writer starts a batch joins it, ahead of the
// sales, so a click never waits behind a backlog of sales and never costs a
// commit of its own. Each is one prepared INSERT without a savepoint: a
// single statement that fails changes nothing by itself. A click is
// answered, like every write, once its batch is on disk.

// maxClickBatch bounds the clicks one commit carries.
const maxClickBatch = 1024

// Click is one referral landing. No client IP is stored. Its fraud flags
// are the paid-ad markers its URL carries (rules.ClickFlags), found as it
// is stored.
type Click struct {
	ProgramID string
	PartnerID int64
	URL       string
	Referrer  string
}

// RecordClick stores a click and returns once it is committed.
func (s *Store) RecordClick(ctx context.Context, c Click) error {
	if s.pg != nil {
		done, err := s.pgEnter()
		if err != nil {
			return err
		}
		defer done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.pg.timeout)
		defer cancel()
		// One statement is its own transaction, committed durably.
		_, err = s.read.ExecContext(ctx, insertClickSQL, c.ProgramID, c.PartnerID, c.URL, c.Referrer,
			unix(s.Now()), rules.ClickFlags(c.URL))
		s.statements.Add(1)
		s.noteCommit(storageErr(err))
		if isConnError(err) || errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return err
	}
	return s.submit(s.clicks, &writeReq{ctx: ctx, click: &c, done: make(chan error, 1)})
}

const insertClickSQL = `INSERT INTO clicks (program_id, partner_id, url, referrer, created_at, flags) VALUES (?, ?, ?, ?, ?, ?)`

func (t *Tx) insertClick(ctx context.Context, c *Click) error {
	t.ctx, t.now = ctx, t.s.Now()
	_, err := t.exec(insertClickSQL, c.ProgramID, c.PartnerID, c.URL, c.Referrer, unix(t.now), rules.ClickFlags(c.URL))
	return err
}
