package store

import (
	"context"
	"strings"
	"testing"
)

// explain returns SQLite's query plan for query, one step a line.
func explain(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, query)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// TestQueryPlans: the admin's numbers and exports read through indexes
// (SQLite's EXPLAIN QUERY PLAN): no table is scanned whole, and the
// exports stream in index order, with no sort of all rows first.
func TestQueryPlans(t *testing.T) {
	s, _ := openTest(t)
	fillReports(t, s)
	ctx := context.Background()
	from, to := reportRange.args()
	partnersQuery, partnersArgs, err := s.partnerNumbersQuery(ctx, &PartnerQuery{ProgramID: "prog", Range: reportRange, Search: "a"})
	if err != nil {
		t.Fatal(err)
	}
	txCond, txArgs := TransactionFilter{ProgramID: "prog", From: reportRange.From, To: reportRange.To, Source: SourceJS}.where()
	clickQuery, clickArgs := ClickFilter{ProgramID: "prog", From: reportRange.From, To: reportRange.To}.query()
	cuCond, cuArgs := CustomerFilter{ProgramID: "prog", From: reportRange.From, To: reportRange.To}.where()
	for _, c := range []struct {
		name    string
		query   string
		args    []any
		uses    []string
		streams bool // no sort of the result
	}{
		{"program numbers", seriesSQL, []any{"prog", from, to},
			[]string{"clicks_partner_created", "customers_program_created", "transactions_program_created", "rewards_transaction"}, false},
		{"partner numbers", partnersQuery, partnersArgs,
			[]string{"clicks_partner_created", "customers_program_created", "transactions_program_created", "rewards_transaction"}, false},
		{"partner funnel", partnerFunnelSQL, []any{1, from, to},
			[]string{"clicks_partner_created", "customers_partner_created", "transactions_customer"}, false},
		{"transaction list", transactionSelect + txCond + ` ORDER BY t.created_at DESC, t.id DESC LIMIT 25`, txArgs,
			[]string{"transactions_program_created"}, true},
		{"transaction export", transactionExportSQL + txCond + ` ORDER BY t.created_at, t.id`, txArgs,
			[]string{"transactions_program_created", "rewards_transaction"}, true},
		{"customer export", customerSelect + cuCond + ` ORDER BY c.created_at, c.id`, cuArgs,
			[]string{"customers_program_created"}, true},
		{"click export", clickQuery, clickArgs, []string{"clicks_partner_created"}, true},
	} {
		plan := explain(t, s, c.query, c.args...)
		for _, line := range strings.Split(plan, "\n") {
			if strings.HasPrefix(line, "SCAN ") && line != "SCAN x" {
				t.Errorf("%s scans a table (%s):\n%s", c.name, line, plan)
			}
		}
		for _, idx := range c.uses {
			if !strings.Contains(plan, idx) {
				t.Errorf("%s does not use %s:\n%s", c.name, idx, plan)
			}
		}
		if c.streams && strings.Contains(plan, "TEMP B-TREE FOR ORDER BY") {
			t.Errorf("%s sorts its rows before the first:\n%s", c.name, plan)
		}
	}
}
