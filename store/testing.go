package store

import "context"

// CountForTest runs a read-only counting query. It exists for tests in other
// packages, which assert on stored rows; production code never calls it.
func (s *Store) CountForTest(ctx context.Context, query string, args ...any) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}
