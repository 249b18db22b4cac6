package server

import (
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// readCSV parses an export, header first.
func readCSV(t *testing.T, body string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, body)
	}
	if len(rows) == 0 {
		t.Fatal("an export without a header")
	}
	return rows
}

// byColumn maps each data row's cells by the header's names.
func byColumn(rows [][]string) []map[string]string {
	out := []map[string]string{}
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, name := range rows[0] {
			m[name] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// unguard is what a guarded cell holds once the spreadsheet shows it.
func unguard(cell string) string {
	if len(cell) > 1 && cell[0] == '\'' && strings.IndexByte("=+-@\t\r", cell[1]) >= 0 {
		return cell[1:]
	}
	return cell
}

// TestExportTransactionsCSV: the transactions export, parsed back, holds
// every stored transaction the filter matches with its reward, amounts in
// the currency's units, formula cells guarded; streamed as an attachment.
func TestExportTransactionsCSV(t *testing.T) {
	ts, p := reportFixture(t)
	r := ts.admin("GET", "/admin/api/programs/"+p.ID+"/export/transactions.csv?"+reportQuery, "")
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd, want := r.Header.Get("Content-Disposition"), `attachment; filename="potrack-`+p.ID+`-transactions-2026-03-01-to-2026-03-03.csv"`; cd != want {
		t.Errorf("Content-Disposition %q, want %q", cd, want)
	}
	if te := r.Header.Get("Transfer-Encoding"); r.Header.Get("Content-Length") != "" {
		t.Errorf("an export with a length (%s, %q): not streamed", r.Header.Get("Content-Length"), te)
	}
	rows := readCSV(t, r.Body)
	if want := "created_at,key,customer_key,customer_email,partner_key,amount,currency,refunded_amount,net_amount,action,product_id,product_type,source,verified,status,attributed_by,discount_code,reward_amount,reward_reversed,reward_net,reward_status,reward_partner_key"; strings.Join(rows[0], ",") != want {
		t.Errorf("header %v", rows[0])
	}
	got := byColumn(rows)

	stored, _, err := ts.store.Transactions(context.Background(), store.TransactionFilter{ProgramID: p.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(stored) {
		t.Fatalf("%d rows exported, %d stored", len(got), len(stored))
	}
	byKey := map[string]*store.Transaction{}
	for _, tr := range stored {
		byKey[tr.Key] = tr
	}
	prev := ""
	for _, row := range got {
		tr := byKey[unguard(row["key"])]
		if tr == nil {
			t.Fatalf("exported %q is not stored", row["key"])
		}
		if row["created_at"] < prev {
			t.Errorf("not oldest first: %s after %s", row["created_at"], prev)
		}
		prev = row["created_at"]
		want := map[string]string{
			"created_at": tr.CreatedAt.Format("2006-01-02T15:04:05Z"), "customer_key": tr.Customer.Key, "customer_email": tr.Customer.Email,
			"amount": tr.Amount.String(), "currency": tr.Amount.Currency, "action": tr.Action, "product_id": tr.ProductID,
			"refunded_amount": rules.Money{Minor: tr.RefundedMinor, Currency: tr.Amount.Currency}.String(),
			"net_amount":      rules.Money{Minor: tr.Amount.Minor - tr.RefundedMinor, Currency: tr.Amount.Currency}.String(),
			"source":          tr.Source, "verified": fmt.Sprint(tr.Verified), "status": tr.Status, "attributed_by": tr.AttributedBy,
			"reward_amount": rules.Money{Minor: 0, Currency: tr.Amount.Currency}.String(), "reward_status": "", "reward_partner_key": "",
		}
		if len(tr.Rewards) == 1 {
			rw := tr.Rewards[0]
			want["reward_amount"], want["reward_status"], want["reward_partner_key"] = rw.Amount.String(), rw.Status, rw.Partner.Key
			want["reward_net"] = rw.Net().String()
		}
		for col, v := range want {
			if unguard(row[col]) != v {
				t.Errorf("%s %s: %q, stored %q", tr.Key, col, row[col], v)
			}
		}
	}
	// Formulas are shown, never run.
	var inj map[string]string
	for _, row := range got {
		if row["customer_key"] == "'"+injectCustomer {
			inj = row
		}
	}
	if inj == nil {
		t.Fatalf("the formula customer's sale is not exported as guarded: %v", got)
	}
	for col, v := range map[string]string{"key": injectKey, "customer_email": injectEmail, "product_id": injectProduct} {
		if inj[col] != "'"+v {
			t.Errorf("%s: %q, want %q", col, inj[col], "'"+v)
		}
	}
	if row := got[0]; row["key"] != "t1" || row["amount"] != "100.00" || row["reward_amount"] != "20.00" || row["partner_key"] != "alice" {
		t.Errorf("first row %v", row)
	}
	for _, row := range got {
		if row["key"] == "t2" && (row["status"] != "refunded" || row["net_amount"] != "0.00" || row["reward_reversed"] != "10.00" || row["reward_net"] != "0.00") {
			t.Errorf("the refunded sale: %v", row)
		}
	}
}

// TestExports: each export and its filters, from the admin API and the
// admin page (the page's session; without one, the sign-in page), and the
// errors made before the first byte.
func TestExports(t *testing.T) {
	ts, p := reportFixture(t)
	api := func(path string) *response {
		t.Helper()
		return ts.admin("GET", "/admin/api/programs/"+p.ID+"/export/"+path, "")
	}
	keys := func(r *response, col string) string {
		t.Helper()
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		var out []string
		for _, row := range byColumn(readCSV(t, r.Body)) {
			out = append(out, unguard(row[col]))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct{ path, col, want string }{
		{"transactions.csv?source=js", "key", "t3"},
		{"transactions.csv?status=refunded", "key", "t2"},
		{"transactions.csv?verified=true&source=gateway", "key", "eur1"},
		{"transactions.csv?partner=bob", "key", "t3 eur1"},
		{"transactions.csv?from=2026-03-02&to=2026-03-03&currency=ignored", "key", "t2 t3 " + injectKey + " eur1"},
		{"customers.csv", "key", "c1 c3 c2 " + injectCustomer},
		{"customers.csv?q=ann@", "key", "c1"},
		{"customers.csv?partner=alice", "key", "c1 " + injectCustomer},
		{"customers.csv?from=2026-03-02", "key", "c2 " + injectCustomer},
		{"clicks.csv", "partner_key", "alice alice alice bob"},
		{"clicks.csv?partner=bob", "partner_key", "bob"},
		{"clicks.csv?to=2026-03-02", "partner_key", "alice alice alice"},
		{"partners.csv?" + reportQuery, "key", "alice bob a_b%"},
		{"partners.csv?sort=key&" + reportQuery, "key", "a_b% alice bob"},
		{"partners.csv?q=smith", "key", "alice"},
	} {
		if got := keys(api(c.path), c.col); got != c.want {
			t.Errorf("%s: %q, want %q", c.path, got, c.want)
		}
	}

	partners := readCSV(t, api("partners.csv?"+reportQuery).Body)
	if want := "key,name,email,created_at,clicks,customers,sales,conversion_rate,revenue_USD,rewards_USD,revenue_EUR,rewards_EUR"; strings.Join(partners[0], ",") != want {
		t.Errorf("partners header %v", partners[0])
	}
	if want := "bob,Bob,,1,1,2,1.0000,10.00,2.00,30.00,3.00"; strings.Join(slices.Delete(slices.Clone(partners[2]), 3, 4), ",") != want {
		t.Errorf("bob's row %v, want %s", partners[2], want)
	}
	if partners[3][7] != "" {
		t.Errorf("a partner without clicks has a conversion rate: %v", partners[3])
	}
	customers := byColumn(readCSV(t, api("customers.csv?q=c1").Body))
	if len(customers) != 1 || customers[0]["email"] != "Ann@Example.com" || customers[0]["partner_key"] != "alice" ||
		customers[0]["partner_name"] != "Alice Smith" || customers[0]["attributed_by"] != "partner" {
		t.Errorf("customers.csv: %v", customers)
	}
	inj := byColumn(readCSV(t, api("customers.csv?partner=alice&from=2026-03-02").Body))
	if len(inj) != 1 || inj[0]["key"] != "'"+injectCustomer || inj[0]["email"] != "'"+injectEmail || inj[0]["name"] != "'=2+5" {
		t.Errorf("formula customer: %v", inj)
	}
	clicks := byColumn(readCSV(t, api("clicks.csv").Body))
	if len(clicks) != 4 || clicks[1]["referrer"] != "'"+injectReferrer || !strings.HasPrefix(clicks[0]["url"], "https://shop.example/?aff=alice") ||
		clicks[0]["created_at"] != "2026-03-01T10:00:00Z" {
		t.Errorf("clicks.csv: %v", clicks)
	}

	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"orders.csv", 404, `"code":"not_found"`},
		{"transactions.json", 404, `"code":"not_found"`},
		{"transactions.csv?source=stripe", 422, `"field":"source"`},
		{"transactions.csv?from=2026-03-04&to=2026-03-01", 422, `"field":"to"`},
		{"customers.csv?q=" + strings.Repeat("q", 300), 422, `"field":"q"`},
		{"partners.csv?sort=email", 422, `"field":"sort"`},
		{"partners.csv?days=800", 422, `"field":"days"`},
		{"clicks.csv?from=soon", 422, `"field":"from"`},
	} {
		r := api(c.path)
		if r.Status != c.status || !strings.Contains(r.Body, c.want) || strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
			t.Errorf("%s: %d %s %s, want %d with %s", c.path, r.Status, r.Header.Get("Content-Type"), r.Body, c.status, c.want)
		}
	}
	if r := ts.request("GET", "/admin/api/programs/"+p.ID+"/export/transactions.csv", ""); r.Status != 401 {
		t.Errorf("an export without the token: %d", r.Status)
	}
	if r := ts.admin("GET", "/admin/api/programs/nope/export/transactions.csv", ""); r.Status != 404 {
		t.Errorf("an export of no program: %d", r.Status)
	}

	// The admin page's link: the same file, with the session.
	page := "/admin/programs/" + p.ID + "/export/transactions.csv?" + reportQuery
	if r := ts.request("GET", page, ""); r.Status != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/admin/login?next=") {
		t.Errorf("the page's export without a session: %d %s", r.Status, r.Header.Get("Location"))
	}
	w := ts.signIn()
	fromPage, fromAPI := w.get(page), api("transactions.csv?"+reportQuery)
	if fromPage.Status != 200 || fromPage.Body != fromAPI.Body || fromPage.Header.Get("Content-Disposition") != fromAPI.Header.Get("Content-Disposition") {
		t.Errorf("the page's export: %d %q\n%s\nthe API's:\n%s", fromPage.Status, fromPage.Header.Get("Content-Disposition"), fromPage.Body, fromAPI.Body)
	}
	if r := w.get("/admin/programs/" + p.ID + "/export/partners.csv?order=up"); r.Status != 422 || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("the page's export with a bad filter: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
}

func TestCSVCellGuard(t *testing.T) {
	for in, want := range map[string]string{
		"":            "",
		"plain":       "plain",
		"=1+1":        "'=1+1",
		"+1":          "'+1",
		"-1":          "'-1",
		"@SUM(A1)":    "'@SUM(A1)",
		"\tx":         "'\tx",
		"\rx":         "'\rx",
		"a=1":         "a=1",
		"'=already":   "'=already",
		"https://x/=": "https://x/=",
	} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDecimalFormat: the exports' amounts are what rules.Money.String
// writes, for every currency's digits.
func TestDecimalFormat(t *testing.T) {
	var d decimal
	for _, cur := range []string{"USD", "JPY", "KWD", "EUR", "CLF"} {
		for _, minor := range []int64{0, 1, 9, 10, 99, 100, 101, 12345, 1_000_000_000_000_000, -5, -12345} {
			want := rules.Money{Minor: minor, Currency: cur}.String()
			if got := d.format(minor, cur); got != want {
				t.Errorf("%d %s: %q, want %q", minor, cur, got, want)
			}
		}
	}
}

func TestExportFilename(t *testing.T) {
	r := store.Range{From: march1, To: march2}
	for _, c := range []struct {
		id   string
		r    store.Range
		want string
	}{
		{"prog_1", store.Range{}, "potrack-prog_1-clicks-all.csv"},
		{`a"b/c`, store.Range{}, "potrack-a_b_c-clicks-all.csv"},
		{"p", r, "potrack-p-clicks-2026-03-01-to-2026-03-02.csv"},
		{"p", store.Range{From: march1}, "potrack-p-clicks-from-2026-03-01.csv"},
	} {
		if got := exportFilename(c.id, "clicks", c.r); got != c.want {
			t.Errorf("%q: %s, want %s", c.id, got, c.want)
		}
	}
}
