package store

import "time"

// Now is the store's clock, in whole seconds (what rows store): the time
// of every write (Tx.Now) and the "now" of the ledger's reads, which
// count a reward past its hold as approved. Tests move it forward
// (AdvanceClockForTest) to see holds pass without waiting for them.
func (s *Store) Now() time.Time {
	return time.Now().Add(time.Duration(s.clockSkew.Load()) * time.Second).UTC().Truncate(time.Second)
}

// AdvanceClockForTest moves the store's clock forward by d (whole
// seconds), for tests of what happens as time passes; production code
// never calls it.
func (s *Store) AdvanceClockForTest(d time.Duration) {
	s.clockSkew.Add(int64(d / time.Second))
}
