package store

import (
	"context"
	"time"
)

// CountForTest runs a read-only counting query. It exists for tests in other
// packages, which assert on stored rows; production code never calls it.
func (s *Store) CountForTest(ctx context.Context, query string, args ...any) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}

// BreakWritesForTest makes every later write fail as on a read-only
// database (PRAGMA query_only on the writer's one connection), for tests of
// what the server says when writes fail.
func (s *Store) BreakWritesForTest() error {
	_, err := s.write.Exec("PRAGMA query_only = ON")
	return err
}

// UnbreakWritesForTest undoes BreakWritesForTest.
func (s *Store) UnbreakWritesForTest() error {
	_, err := s.write.Exec("PRAGMA query_only = OFF")
	return err
}

// SetHealthFreshForTest sets how recent a commit must be for Health to
// trust it; 0 makes every Health call commit a probe.
func (s *Store) SetHealthFreshForTest(d time.Duration) { s.healthFresh = d }
