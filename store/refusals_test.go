package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/potrack/potrack/internal/testenv"
)

// engineDBs makes a new database on each engine: a SQLite file, and a
// PostgreSQL schema of the test's own. The same name opens it again.
func engineDBs() map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "p.db") },
		"postgres": func(t *testing.T) string { return testenv.Postgres(t) },
	}
}

func openDB(t *testing.T, db string) *Store {
	t.Helper()
	s, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRefusals: counts per reason over a window, the recent list capped at
// 50 newest first with what it keeps cleaned and cut, nothing for unknown
// programs; on both engines.
func TestRefusals(t *testing.T) {
	for name, db := range engineDBs() {
		t.Run(name, func(t *testing.T) {
			s := openDB(t, db(t))
			insertProgram(t, s, "prog")
			insertProgram(t, s, "other")
			ctx := context.Background()
			now := time.Now().UTC()
			s.NoteRefusal(Refusal{ProgramID: "prog", Reason: "rate_limited", At: now.Add(-30 * time.Hour)}) // outside 24 h
			for i := range 70 {
				s.NoteRefusal(Refusal{ProgramID: "prog", Reason: "origin_not_allowed", CallType: "transactions.create",
					Origin: "https://evil.example", Key: fmt.Sprint("order_", i), At: now.Add(-time.Duration(70-i) * time.Second)})
			}
			for i := range 5 {
				s.NoteRefusal(Refusal{ProgramID: "prog", Reason: "invalid_field", CallType: "transactions.create", Field: "data.amount",
					Origin: "https://shop.example", PartnerKey: "alice", Key: strings.Repeat("k", 300) + "\x00\xff\n" + fmt.Sprint(i), At: now})
			}
			s.NoteRefusal(Refusal{ProgramID: "other", Reason: "js_tracking_disabled", At: now})
			s.NoteRefusal(Refusal{ProgramID: "nope", Reason: "js_tracking_disabled", At: now}) // no such program

			rep, err := s.Refusals(ctx, "prog", now.Add(-24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			want := []RefusalCount{{"origin_not_allowed", 70}, {"invalid_field", 5}}
			if fmt.Sprint(rep.Counts) != fmt.Sprint(want) {
				t.Errorf("counts %v, want %v", rep.Counts, want)
			}
			if len(rep.Recent) != RefusalsKept {
				t.Fatalf("%d recent, want %d", len(rep.Recent), RefusalsKept)
			}
			first := rep.Recent[0]
			if first.Reason != "invalid_field" || first.Field != "data.amount" || first.PartnerKey != "alice" ||
				len(first.Key) != maxRefusalKey || strings.ContainsAny(first.Key, "\x00\n") {
				t.Errorf("newest refusal %+v", first)
			}
			if last := rep.Recent[RefusalsKept-1]; last.Key != "order_25" {
				t.Errorf("oldest kept is %q, want order_25 (the 50 newest)", last.Key)
			}
			all, err := s.Refusals(ctx, "prog", now.Add(-48*time.Hour))
			if err != nil || fmt.Sprint(all.Counts) != fmt.Sprint(append(want, RefusalCount{"rate_limited", 1})) {
				t.Errorf("48 h: %v (%v)", all.Counts, err)
			}
			if n := rowCount(t, s, `SELECT count(*) FROM refusals WHERE program_id = 'prog'`); n != RefusalsKept {
				t.Errorf("%d refusals stored for prog, want %d", n, RefusalsKept)
			}
			if n := rowCount(t, s, `SELECT count(*) FROM refusal_counts WHERE program_id = 'nope'`) +
				rowCount(t, s, `SELECT count(*) FROM refusals WHERE program_id = 'nope'`); n != 0 {
				t.Errorf("%d rows for an unknown program", n)
			}
			// More later: the list stays at 50, the newest ones.
			s.NoteRefusal(Refusal{ProgramID: "prog", Reason: "bad_signature", Key: "newest", At: now.Add(time.Second)})
			rep, err = s.Refusals(ctx, "prog", now.Add(-time.Hour))
			if err != nil || len(rep.Recent) != RefusalsKept || rep.Recent[0].Key != "newest" {
				t.Fatalf("after one more: %d recent, first %+v (%v)", len(rep.Recent), rep.Recent[0], err)
			}
			if n := rowCount(t, s, `SELECT count(*) FROM refusals WHERE program_id = 'prog'`); n != RefusalsKept {
				t.Errorf("%d refusals stored for prog, want %d", n, RefusalsKept)
			}
		})
	}
}

func rowCount(t *testing.T, s *Store, q string, args ...any) int {
	t.Helper()
	n, err := s.CountForTest(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestRefusalFloodIsFewWrites: 10,000 refused calls noted from 16
// goroutines make one write per flush interval (plus the one at Close),
// each of a bounded number of statements, and a clean Close loses none of
// them; on both engines, under -race in make test.
func TestRefusalFloodIsFewWrites(t *testing.T) {
	for name, db := range engineDBs() {
		t.Run(name, func(t *testing.T) {
			path := db(t)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			insertProgram(t, s, "prog")
			const every = 20 * time.Millisecond
			s.SetRefusalFlushEveryForTest(every)
			statementsBefore := s.Statements()
			start := time.Now()
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 625 {
						reason := []string{"rate_limited", "origin_not_allowed"}[i%2]
						s.NoteRefusal(Refusal{ProgramID: "prog", Reason: reason, CallType: "clicks.create",
							Origin: "https://x.example", Key: fmt.Sprint(g, "-", i)})
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			writes := s.RefusalFlushes()
			// A flush per tick at most, and the last one at Close.
			if max := int64(elapsed/every) + 2; writes < 1 || writes > max {
				t.Errorf("%d writes for 10,000 refusals in %v, want 1 to %d", writes, elapsed, max)
			}
			// Each write: an upsert per (hour, reason), at most 50 rows for
			// the list and its trim; the hour may turn during the test.
			if stmts, max := s.Statements()-statementsBefore, writes*(4+RefusalsKept+2); stmts > max {
				t.Errorf("%d statements in %d writes, want at most %d", stmts, writes, max)
			}
			t.Logf("10,000 refusals in %v: %d writes, %d statements", elapsed, writes, s.Statements()-statementsBefore)

			s2 := openDB(t, path)
			if n := rowCount(t, s2, `SELECT sum(n) FROM refusal_counts WHERE program_id = 'prog'`); n != 10000 {
				t.Errorf("%d refusals counted after Close, want 10000", n)
			}
			if n := rowCount(t, s2, `SELECT count(*) FROM refusals WHERE program_id = 'prog'`); n != RefusalsKept {
				t.Errorf("%d recent refusals kept, want %d", n, RefusalsKept)
			}
		})
	}
}

// TestRefusalsAddUpAcrossInstances: two stores on one database each flush
// their own increments, which add up.
func TestRefusalsAddUpAcrossInstances(t *testing.T) {
	for name, db := range engineDBs() {
		t.Run(name, func(t *testing.T) {
			path := db(t)
			a := openDB(t, path)
			insertProgram(t, a, "prog")
			b := openDB(t, path)
			at := time.Now().UTC()
			for range 30 {
				a.NoteRefusal(Refusal{ProgramID: "prog", Reason: "rate_limited", At: at})
				b.NoteRefusal(Refusal{ProgramID: "prog", Reason: "rate_limited", At: at})
			}
			ctx := context.Background()
			if err := a.FlushRefusals(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.FlushRefusals(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := a.Refusals(ctx, "prog", at.Add(-time.Hour))
			if err != nil || fmt.Sprint(rep.Counts) != "[{rate_limited 60}]" || len(rep.Recent) != RefusalsKept {
				t.Fatalf("counts %v, %d recent (%v), want 60 and %d", rep.Counts, len(rep.Recent), err, RefusalsKept)
			}
		})
	}
}

// TestRefusalCountsPruned: hourly counts older than 90 days go with the
// next flush; younger ones stay.
func TestRefusalCountsPruned(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Hour)
	old, young := now.Add(-RefusalCountsKept-time.Hour), now.Add(-RefusalCountsKept+time.Hour)
	for _, h := range []time.Time{old, young} {
		if err := s.ExecForTest(ctx, `INSERT INTO refusal_counts (program_id, hour, reason, n) VALUES ('prog', ?, 'rate_limited', 7)`, h.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	s.NoteRefusal(Refusal{ProgramID: "prog", Reason: "bad_signature"})
	if err := s.FlushRefusals(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, s, `SELECT count(*) FROM refusal_counts WHERE hour = ?`, old.Unix()); n != 0 {
		t.Errorf("the count of %v is kept", old)
	}
	if n := rowCount(t, s, `SELECT count(*) FROM refusal_counts`); n != 2 {
		t.Errorf("%d counts left, want the young one and the new one", n)
	}
}

// TestRefusalsKeptWhenTheWriteFails: a flush that cannot write keeps what
// it carried for the next one, counted once.
func TestRefusalsKeptWhenTheWriteFails(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	for range 3 {
		s.NoteRefusal(Refusal{ProgramID: "prog", Reason: "rate_limited"})
	}
	if err := s.BreakWritesForTest(); err != nil {
		t.Fatal(err)
	}
	if err := s.FlushRefusals(ctx); err == nil {
		t.Fatal("a flush on a read-only database succeeded")
	}
	s.NoteRefusal(Refusal{ProgramID: "prog", Reason: "rate_limited"})
	// A report still answers, with what is stored.
	if rep, err := s.Refusals(ctx, "prog", time.Now().Add(-time.Hour)); err != nil || len(rep.Counts) != 0 {
		t.Fatalf("report while writes fail: %v (%v), want none stored", rep, err)
	}
	if err := s.UnbreakWritesForTest(); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Refusals(ctx, "prog", time.Now().Add(-time.Hour))
	if err != nil || fmt.Sprint(rep.Counts) != "[{rate_limited 4}]" || len(rep.Recent) != 4 {
		t.Fatalf("counts %v, %d recent (%v), want 4 and 4", rep.Counts, len(rep.Recent), err)
	}
}

func TestCleanRefusalText(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"https://shop.example", 100, "https://shop.example"},
		{"a\x00b\nc\td\u2028", 100, "abcd\u2028"},
		{"\xff\xfeok", 100, "?ok"},         // a run of bad bytes is one '?'
		{strings.Repeat("é", 10), 5, "éé"}, // 5 bytes at most, cut on a character
	} {
		if got := clean(c.in, c.max); got != c.want {
			t.Errorf("clean(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
