package store

import (
	"context"
	"database/sql"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CountForTest runs a read-only counting query. It exists for tests in other
// packages, which assert on stored rows; production code never calls it.
// Test tables hand every check the same arguments, used or not: SQLite
// ignores the ones a query does not name, PostgreSQL refuses them, so on
// PostgreSQL only the named ones are passed.
func (s *Store) CountForTest(ctx context.Context, query string, args ...any) (int, error) {
	var n int
	if s.pg != nil {
		query, args = namedArgs(query, args)
	}
	err := s.read.QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}

// namedArgs renumbers a query's ?N placeholders 1, 2, … in the order of
// their numbers and keeps only the arguments they name.
func namedArgs(query string, args []any) (string, []any) {
	re := regexp.MustCompile(`\?(\d+)`)
	if !strings.Contains(query, "?") {
		return query, nil
	}
	if !re.MatchString(query) {
		return query, args
	}
	used := map[int]int{}
	var nums []int
	for _, m := range re.FindAllStringSubmatch(query, -1) {
		n, _ := strconv.Atoi(m[1])
		if _, ok := used[n]; !ok {
			used[n] = 0
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	var kept []any
	for i, n := range nums {
		used[n] = i + 1
		if n-1 < len(args) {
			kept = append(kept, args[n-1])
		}
	}
	query = re.ReplaceAllStringFunc(query, func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		return "?" + strconv.Itoa(used[n])
	})
	return query, kept
}

// BreakWritesForTest makes every later write fail as on a read-only
// database (PRAGMA query_only on the writer's one connection; on
// PostgreSQL, READ ONLY transactions), for tests of
// what the server says when writes fail.
func (s *Store) BreakWritesForTest() error {
	if s.pg != nil {
		s.pg.readOnly.Store(true) // every write's transaction is READ ONLY
		return nil
	}
	_, err := s.write.Exec("PRAGMA query_only = ON")
	return err
}

// UnbreakWritesForTest undoes BreakWritesForTest.
func (s *Store) UnbreakWritesForTest() error {
	if s.pg != nil {
		s.pg.readOnly.Store(false)
		return nil
	}
	_, err := s.write.Exec("PRAGMA query_only = OFF")
	return err
}

// SetHealthFreshForTest sets how recent a commit must be for Health to
// trust it; 0 makes every Health call commit a probe.
func (s *Store) SetHealthFreshForTest(d time.Duration) { s.healthFresh = d }

// ExecForTest changes rows behind the store's back, in the store's own
// dialect on either engine: tests play someone who holds the database.
func (s *Store) ExecForTest(ctx context.Context, query string, args ...any) error {
	return s.Write(ctx, func(tx *Tx) error {
		_, err := tx.exec(query, args...)
		return err
	})
}

// StringsForTest returns the one column of a query's rows as text.
func (s *Store) StringsForTest(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// EveryValueForTest reads every value of every table, as text.
func (s *Store) EveryValueForTest(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if s.pg != nil {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	}
	tables, err := s.StringsForTest(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, table := range tables {
		rows, err := s.read.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			return nil, err
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			for _, v := range vals {
				out = append(out, v.String)
			}
		}
		rows.Close()
	}
	return out, nil
}
