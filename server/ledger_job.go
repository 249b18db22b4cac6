package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// The approval job (docs/payouts.md): every approvalEvery, each instance
// moves the rewards whose hold has passed from pending to approved, with
// their ledger entries, through the writer. It reads the due rewards from
// the read pool and approves them in writes of at most approvalBatch,
// each reward checked again inside the write, so instances running it at
// once on one PostgreSQL approve each reward once. Nothing waits for it:
// every read shows a due reward approved already, and a payout approves
// the due rewards it takes first.

var approvalEvery = time.Minute

const approvalBatch = 500

// ApproveDueRewards approves every reward due now and returns how many it
// moved.
func (s *Server) ApproveDueRewards(ctx context.Context) (int, error) {
	total := 0
	for {
		due, err := s.store.DueRewards(ctx, approvalBatch)
		if err != nil || len(due) == 0 {
			return total, err
		}
		var n int
		err = s.store.Write(ctx, func(tx *store.Tx) error {
			approved, err := tracking.ApproveDue(tx, due)
			n = len(approved)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if len(due) < approvalBatch || n == 0 {
			// n == 0: another instance approved these meanwhile; the next
			// round finds what is left.
			return total, nil
		}
	}
}

// runApprovals runs the approval job until ctx ends: once at start, then
// every approvalEvery.
func (s *Server) runApprovals(ctx context.Context) {
	t := time.NewTicker(approvalEvery)
	defer t.Stop()
	for {
		if n, err := s.ApproveDueRewards(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("approving rewards past their hold failed; trying again later", "err", err)
		} else if n > 0 {
			slog.Info("rewards past their hold approved", "rewards", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
