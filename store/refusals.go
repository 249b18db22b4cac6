package store

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// What /collect refused, for the merchant: a count per program, UTC hour
// and reason (the error code), and the last RefusalsKept refused calls of
// each program. Refused calls are the cheapest thing anyone on the
// internet can send, so noting one must cost no write: NoteRefusal adds to
// counts and a ring of recent calls in memory, and a flush every
// refusalFlushEvery (and one when the store closes) writes them through
// the store's writer as one write: an upsert per (program, hour, reason)
// that adds this instance's increments (so several instances on one
// database add up), the recent calls, and a DELETE that keeps the last
// RefusalsKept per program. A flood of 10,000 refused calls is one write.
// Memory is bounded by programs × reasons × hours since the last flush:
// only calls naming an existing program are noted, and reasons are our
// error codes.

const (
	// RefusalsKept is how many refused calls a program keeps.
	RefusalsKept = 50
	// RefusalCountsKept is how long the hourly counts are kept.
	RefusalCountsKept = 90 * 24 * time.Hour
	// refusalFlushEvery is how often the counts in memory are written.
	refusalFlushEvery = 5 * time.Second

	maxRefusalOrigin = 200
	maxRefusalKey    = 64
	maxRefusalField  = 100
	maxRefusalText   = 40 // reason, call type
)

// Refusal is one refused /collect call as the merchant sees it: never the
// client's IP, never the body.
type Refusal struct {
	ProgramID  string
	Reason     string // the error code, e.g. origin_not_allowed
	CallType   string // clicks.create, customers.signup, transactions.create, or unknown
	Origin     string // the page's Origin (or the Referer's origin), truncated
	PartnerKey string // the partner the call named (cookie, or a click's landing URL), truncated
	Key        string // the transaction's or customer's key, truncated
	Field      string // the field an invalid_field or bad_request named
	At         time.Time
}

// RefusalCount is how many calls of a program were refused for a reason.
type RefusalCount struct {
	Reason string
	Count  int64
}

// RefusalHour is one hour's count of one reason.
type RefusalHour struct {
	Hour   time.Time // the start of the UTC hour
	Reason string
	Count  int64
}

// RefusalReport is what a program's refusals look like since a time.
type RefusalReport struct {
	Since  time.Time
	Counts []RefusalCount // by reason, most first
	Hours  []RefusalHour  // by hour, then reason; hours without refusals absent
	Recent []Refusal      // the last RefusalsKept, newest first (whatever their age)
}

type refusalKey struct {
	program string
	hour    int64
	reason  string
}

// refusalRing holds a program's last RefusalsKept refused calls, oldest
// first once read.
type refusalRing struct {
	buf   [RefusalsKept]Refusal
	start int
	n     int
}

func (r *refusalRing) push(x Refusal) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = x
		r.n++
		return
	}
	r.buf[r.start] = x
	r.start = (r.start + 1) % len(r.buf)
}

func (r *refusalRing) list() []Refusal {
	out := make([]Refusal, 0, r.n)
	for i := 0; i < r.n; i++ {
		out = append(out, r.buf[(r.start+i)%len(r.buf)])
	}
	return out
}

// refusalBuffer is what NoteRefusal keeps until the next flush.
type refusalBuffer struct {
	mu     sync.Mutex
	counts map[refusalKey]int64
	recent map[string]*refusalRing

	flushMu   sync.Mutex // one flush at a time
	lastPrune time.Time  // under flushMu
	every     time.Duration
	started   atomic.Bool
	start     sync.Once
	stop      chan struct{}
	stopped   chan struct{}
	flushes   atomic.Int64 // writes made by flushes
}

// NoteRefusal counts a refused call of an existing program, in memory; it
// never waits for the database. The caller makes sure the program exists
// (calls naming unknown programs are counted in /metrics only): a flush
// skips rows of programs it does not find.
func (s *Store) NoteRefusal(r Refusal) {
	if r.ProgramID == "" || r.Reason == "" {
		return
	}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	r.At = r.At.UTC().Truncate(time.Second)
	r.Reason = clean(r.Reason, maxRefusalText)
	r.CallType = clean(r.CallType, maxRefusalText)
	r.Origin = clean(r.Origin, maxRefusalOrigin)
	r.PartnerKey = clean(r.PartnerKey, maxRefusalKey)
	r.Key = clean(r.Key, maxRefusalKey)
	r.Field = clean(r.Field, maxRefusalField)
	b := &s.refusals
	b.start.Do(func() { s.startRefusalFlusher() })
	k := refusalKey{r.ProgramID, r.At.Truncate(time.Hour).Unix(), r.Reason}
	b.mu.Lock()
	if b.counts == nil {
		b.counts, b.recent = map[refusalKey]int64{}, map[string]*refusalRing{}
	}
	b.counts[k]++
	ring := b.recent[r.ProgramID]
	if ring == nil {
		ring = &refusalRing{}
		b.recent[r.ProgramID] = ring
	}
	ring.push(r)
	b.mu.Unlock()
}

// clean makes attacker-chosen text safe to keep and show: valid UTF-8
// (PostgreSQL refuses anything else), no control characters, at most max
// bytes, cut on a character boundary.
func clean(s string, max int) string {
	if len(s) > 4*max {
		s = s[:4*max] // before the work below
	}
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func (s *Store) startRefusalFlusher() {
	b := &s.refusals
	if b.every <= 0 {
		b.every = refusalFlushEvery
	}
	b.stop, b.stopped = make(chan struct{}), make(chan struct{})
	b.started.Store(true)
	go func() {
		defer close(b.stopped)
		t := time.NewTicker(b.every)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				if err := s.FlushRefusals(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
					slog.Warn("could not write the refused calls' counts; kept for the next try", "err", err)
				}
			}
		}
	}()
}

// stopRefusals ends the flusher and writes what it holds: Close calls it
// before the writer stops, so a clean shutdown loses no count.
func (s *Store) stopRefusals() error {
	b := &s.refusals
	b.start.Do(func() {}) // waits for a start under way; none after this
	if b.started.Load() {
		select {
		case <-b.stop:
		default:
			close(b.stop)
		}
		<-b.stopped
	}
	return s.FlushRefusals(context.Background())
}

// SetRefusalFlushEveryForTest sets how often refusals are flushed; call
// it before the first NoteRefusal.
func (s *Store) SetRefusalFlushEveryForTest(d time.Duration) { s.refusals.every = d }

// RefusalFlushes is how many writes refusal flushes have made.
func (s *Store) RefusalFlushes() int64 { return s.refusals.flushes.Load() }

// FlushRefusals writes the refusals noted in memory, as one write. Counts
// are added to what is stored (other instances add theirs), the recent
// calls appended and each program's list cut back to RefusalsKept; hourly
// counts older than RefusalCountsKept are deleted by the first flush of
// each hour. Nothing to write costs nothing. When the
// write fails, what it carried is kept in memory for the next flush.
func (s *Store) FlushRefusals(ctx context.Context) error {
	b := &s.refusals
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	counts, recent := b.counts, b.recent
	b.counts, b.recent = nil, nil
	b.mu.Unlock()
	if len(counts) == 0 && len(recent) == 0 {
		return nil
	}
	// Old counts go with the first flush of each hour: a database that
	// hears of no refusal has no new rows to bound.
	now := time.Now().UTC()
	prune := now.Sub(b.lastPrune) >= time.Hour
	keys := make([]refusalKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	// A fixed order: writes of several instances take their rows' locks
	// in the same order (PostgreSQL).
	sort.Slice(keys, func(i, j int) bool {
		a, c := keys[i], keys[j]
		if a.program != c.program {
			return a.program < c.program
		}
		if a.hour != c.hour {
			return a.hour < c.hour
		}
		return a.reason < c.reason
	})
	programs := make([]string, 0, len(recent))
	for p := range recent {
		programs = append(programs, p)
	}
	sort.Strings(programs)
	err := s.Write(ctx, func(tx *Tx) error {
		for _, k := range keys {
			if _, err := tx.exec(`INSERT INTO refusal_counts (program_id, hour, reason, n)
				SELECT CAST(?1 AS TEXT), CAST(?2 AS BIGINT), CAST(?3 AS TEXT), CAST(?4 AS BIGINT) WHERE EXISTS (SELECT 1 FROM programs WHERE id = ?1)
				ON CONFLICT (program_id, hour, reason) DO UPDATE SET n = refusal_counts.n + excluded.n`,
				k.program, k.hour, k.reason, counts[k]); err != nil {
				return err
			}
		}
		for _, p := range programs {
			for _, r := range recent[p].list() {
				if _, err := tx.exec(`INSERT INTO refusals (program_id, reason, call_type, origin, partner_key, key, field, created_at)
					SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS TEXT), CAST(?4 AS TEXT),
						CAST(?5 AS TEXT), CAST(?6 AS TEXT), CAST(?7 AS TEXT), CAST(?8 AS BIGINT) WHERE EXISTS (SELECT 1 FROM programs WHERE id = ?1)`,
					r.ProgramID, r.Reason, r.CallType, r.Origin, r.PartnerKey, r.Key, r.Field, unix(r.At)); err != nil {
					return err
				}
			}
			if _, err := tx.exec(`DELETE FROM refusals WHERE program_id = ?1 AND id NOT IN
				(SELECT id FROM refusals WHERE program_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2)`, p, RefusalsKept); err != nil {
				return err
			}
		}
		if prune {
			if _, err := tx.exec(`DELETE FROM refusal_counts WHERE hour < ?`, unix(now.Add(-RefusalCountsKept))); err != nil {
				return err
			}
		}
		return nil
	})
	b.flushes.Add(1)
	if err != nil {
		b.restore(counts, recent)
		return err
	}
	if prune {
		b.lastPrune = now
	}
	return nil
}

// restore puts back what a failed flush carried, under what was noted
// since (newer calls stay the newest of each ring).
func (b *refusalBuffer) restore(counts map[refusalKey]int64, recent map[string]*refusalRing) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.counts == nil {
		b.counts, b.recent = map[refusalKey]int64{}, map[string]*refusalRing{}
	}
	for k, n := range counts {
		b.counts[k] += n
	}
	for p, old := range recent {
		ring := &refusalRing{}
		for _, r := range old.list() {
			ring.push(r)
		}
		if newer := b.recent[p]; newer != nil {
			for _, r := range newer.list() {
				ring.push(r)
			}
		}
		b.recent[p] = ring
	}
}

// Refusals reports a program's refused calls since a time: the counts by
// reason and by hour (whole hours: since is rounded down to its hour), and
// the last RefusalsKept calls. What this instance holds in memory is
// flushed first, so the report includes it; other instances' last few
// seconds arrive with their next flush. A flush that fails (writes
// refused) keeps its counts for later, and the report shows what is
// stored.
func (s *Store) Refusals(ctx context.Context, programID string, since time.Time) (*RefusalReport, error) {
	if err := s.FlushRefusals(ctx); err != nil {
		slog.Warn("could not write the refused calls' counts before reading them", "err", err)
	}
	since = since.UTC().Truncate(time.Hour)
	rep := &RefusalReport{Since: since, Counts: []RefusalCount{}, Hours: []RefusalHour{}, Recent: []Refusal{}}
	rows, err := s.read.QueryContext(ctx, `SELECT hour, reason, n FROM refusal_counts
		WHERE program_id = ? AND hour >= ? ORDER BY hour, reason`, programID, unix(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byReason := map[string]int64{}
	for rows.Next() {
		var (
			h    RefusalHour
			hour int64
		)
		if err := rows.Scan(&hour, &h.Reason, &h.Count); err != nil {
			return nil, err
		}
		h.Hour = fromUnix(hour)
		rep.Hours = append(rep.Hours, h)
		byReason[h.Reason] += h.Count
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for r, n := range byReason {
		rep.Counts = append(rep.Counts, RefusalCount{r, n})
	}
	sort.Slice(rep.Counts, func(i, j int) bool {
		if rep.Counts[i].Count != rep.Counts[j].Count {
			return rep.Counts[i].Count > rep.Counts[j].Count
		}
		return rep.Counts[i].Reason < rep.Counts[j].Reason
	})
	recent, err := s.read.QueryContext(ctx, `SELECT reason, call_type, origin, partner_key, key, field, created_at
		FROM refusals WHERE program_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, programID, RefusalsKept)
	if err != nil {
		return nil, err
	}
	defer recent.Close()
	for recent.Next() {
		r := Refusal{ProgramID: programID}
		var at int64
		if err := recent.Scan(&r.Reason, &r.CallType, &r.Origin, &r.PartnerKey, &r.Key, &r.Field, &at); err != nil {
			return nil, err
		}
		r.At = fromUnix(at)
		rep.Recent = append(rep.Recent, r)
	}
	return rep, recent.Err()
}
