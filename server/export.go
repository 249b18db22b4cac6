package server

import (
	"bufio"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

// CSV exports (issue 14, item 5): transactions with their rewards,
// customers, partners with their numbers, and clicks, each with the
// filters of its list. The rows stream from one database cursor through
// an io.Pipe into the response (chunked): memory holds a row and the
// buffers, whatever the row count. An export that fails after its first
// byte ends the response without its last chunk, so the download fails
// visibly rather than stopping short as a complete-looking file.
//
// Every cell that starts with = + - @, a tab or a carriage return is
// prefixed with ' so that a spreadsheet shows it as text and never runs it
// as a formula (OWASP, CSV injection); amounts are decimal strings in the
// currency's units ("25.00", "1000" JPY).

// exportWriteTimeout is how long an export's response may take to send,
// in place of --write-timeout (requestConfig).
const exportWriteTimeout = time.Hour

// exportBuffer is the buffer between the CSV writer and the pipe.
const exportBuffer = 64 << 10

// isExportPath reports whether a request path is a CSV export (the admin
// API's or the admin page's).
func isExportPath(path string) bool {
	return strings.HasPrefix(path, "/admin/") && strings.Contains(path, "/export/") && strings.HasSuffix(path, ".csv")
}

// exportKinds are the files an export can be.
var exportKinds = map[string]bool{"transactions.csv": true, "customers.csv": true, "partners.csv": true, "clicks.csv": true}

// exportJob is an export whose filters were read and checked: nothing is
// sent before that, so a bad filter is a plain 422.
type exportJob struct {
	filename string
	run      func(ctx context.Context, w *csvOut) error
}

// newExportJob reads the export's filters from the request.
func (s *Server) newExportJob(c *fiber.Ctx, p *store.Program, file string) (*exportJob, error) {
	if !exportKinds[file] {
		return nil, errNotFound.WithMessage("Exports are transactions.csv, customers.csv, partners.csv and clicks.csv.")
	}
	kind := strings.TrimSuffix(file, ".csv")
	var (
		r   store.Range
		run func(ctx context.Context, w *csvOut) error
	)
	switch kind {
	case "transactions":
		f, err := transactionFilterQuery(c, p)
		if err != nil {
			return nil, err
		}
		r = store.Range{From: f.From, To: f.To}
		run = func(ctx context.Context, w *csvOut) error { return s.exportTransactions(ctx, w, f) }
	case "customers":
		f, err := customerFilterQuery(c, p)
		if err != nil {
			return nil, err
		}
		r = store.Range{From: f.From, To: f.To}
		run = func(ctx context.Context, w *csvOut) error { return s.exportCustomers(ctx, w, f) }
	case "partners":
		q, err := partnerQuery(c, p)
		if err != nil {
			return nil, err
		}
		r = q.Range
		run = func(ctx context.Context, w *csvOut) error { return s.exportPartners(ctx, w, q) }
	case "clicks":
		f := store.ClickFilter{ProgramID: p.ID}
		var err error
		if f.PartnerKey, err = keyQuery(c, "partner"); err != nil {
			return nil, err
		}
		if r, err = dateRange(c, true); err != nil {
			return nil, err
		}
		f.From, f.To = r.From, r.To
		run = func(ctx context.Context, w *csvOut) error { return s.exportClicks(ctx, w, f) }
	}
	return &exportJob{filename: exportFilename(p.ID, kind, r), run: run}, nil
}

// exportFilename is potrack-PROGRAM-KIND-FROM-to-LAST.csv (the range's
// first and last days), or …-KIND-all.csv without a range.
func exportFilename(programID, kind string, r store.Range) string {
	id := strings.Map(func(ch rune) rune {
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' {
			return ch
		}
		return '_'
	}, programID)
	span := "all"
	switch {
	case !r.From.IsZero() && !r.To.IsZero():
		span = r.From.Format(time.DateOnly) + "-to-" + r.To.Add(-time.Second).Format(time.DateOnly)
	case !r.From.IsZero():
		span = "from-" + r.From.Format(time.DateOnly)
	case !r.To.IsZero():
		span = "to-" + r.To.Add(-time.Second).Format(time.DateOnly)
	}
	return "potrack-" + id + "-" + kind + "-" + span + ".csv"
}

// sendExport answers with the job's CSV, streamed.
func sendExport(c *fiber.Ctx, job *exportJob) error {
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+job.filename+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("X-Content-Type-Options", "nosniff")
	pr, pw := io.Pipe()
	go func() {
		// The request's context ends with the handler; the export runs
		// until it is done or the client stops reading (the pipe closes).
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := writeCSV(ctx, pw, job.run)
		if err != nil && err != io.ErrClosedPipe {
			slog.Error("export failed", "file", job.filename, "err", err)
		}
		pw.CloseWithError(err) // nil: the end of the body
	}()
	return c.SendStream(pr)
}

// writeCSV runs an export into w.
func writeCSV(ctx context.Context, w io.Writer, run func(ctx context.Context, w *csvOut) error) error {
	bw := bufio.NewWriterSize(w, exportBuffer)
	out := &csvOut{w: csv.NewWriter(bw)}
	if err := run(ctx, out); err != nil {
		return err
	}
	out.w.Flush()
	if err := out.w.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// csvOut writes guarded rows; its row buffer is reused.
type csvOut struct {
	w   *csv.Writer
	row []string
}

func (o *csvOut) header(cols ...string) error { return o.w.Write(cols) }

// write writes one row, guarding every cell.
func (o *csvOut) write(cells ...string) error {
	o.row = o.row[:0]
	for _, c := range cells {
		o.row = append(o.row, csvCell(c))
	}
	return o.w.Write(o.row)
}

// csvCell keeps a cell from being read as a formula: one starting with
// = + - @, a tab or a carriage return gets a leading '.
func csvCell(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// decimal formats an amount in minor units as the currency's units, as
// rules.Money.String does, without its allocations: the exports write
// millions of them.
type decimal struct {
	digits map[string]int
	buf    []byte
}

func (d *decimal) format(minor int64, currency string) string {
	if d.digits == nil {
		d.digits = map[string]int{}
	}
	digits, ok := d.digits[currency]
	if !ok {
		digits = rules.Digits(currency)
		d.digits[currency] = digits
	}
	neg := minor < 0
	if neg {
		if minor == -1<<63 {
			return rules.Money{Minor: minor, Currency: currency}.String()
		}
		minor = -minor
	}
	b := strconv.AppendInt(d.buf[:0], minor, 10)
	if digits > 0 {
		for len(b) <= digits {
			b = append([]byte{'0'}, b...)
		}
		point := len(b) - digits
		b = append(b, 0)
		copy(b[point+1:], b[point:])
		b[point] = '.'
	}
	d.buf = b
	if neg {
		return "-" + string(b)
	}
	return string(b)
}

func csvTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func csvBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (s *Server) exportTransactions(ctx context.Context, w *csvOut, f store.TransactionFilter) error {
	if err := w.header("created_at", "key", "customer_key", "customer_email", "partner_key", "amount", "currency",
		"refunded_amount", "net_amount", "action", "product_id", "product_type", "source", "verified", "status",
		"attributed_by", "discount_code", "reward_amount", "reward_reversed", "reward_net", "reward_status", "reward_partner_key"); err != nil {
		return err
	}
	var d decimal
	return s.store.EachTransaction(ctx, f, func(t *store.TransactionExport) error {
		cur, rcur := t.Amount.Currency, t.Reward.Currency
		return w.write(csvTime(t.CreatedAt), t.Key, t.CustomerKey, t.CustomerEmail, t.PartnerKey,
			d.format(t.Amount.Minor, cur), cur, d.format(t.RefundedMinor, cur), d.format(t.Amount.Minor-t.RefundedMinor, cur),
			t.Action, t.ProductID, t.ProductType, t.Source, csvBool(t.Verified), t.Status, t.AttributedBy, t.DiscountCode,
			d.format(t.Reward.Minor, rcur), d.format(t.RewardReversedMinor, rcur), d.format(t.Reward.Minor-t.RewardReversedMinor, rcur),
			t.RewardStatus, t.RewardPartnerKey)
	})
}

func (s *Server) exportCustomers(ctx context.Context, w *csvOut, f store.CustomerFilter) error {
	if err := w.header("created_at", "key", "name", "email", "partner_key", "partner_name", "attributed_by", "discount_code"); err != nil {
		return err
	}
	return s.store.EachCustomer(ctx, f, func(c *store.Customer) error {
		var pKey, pName string
		if c.Partner != nil {
			pKey, pName = c.Partner.Key, c.Partner.Name
		}
		return w.write(csvTime(c.CreatedAt), c.Key, c.Name, c.Email, pKey, pName, c.AttributedBy, c.DiscountCode)
	})
}

func (s *Server) exportPartners(ctx context.Context, w *csvOut, q store.PartnerQuery) error {
	currencies, err := s.store.PartnerCurrencies(ctx, q.ProgramID, q.Range)
	if err != nil {
		return err
	}
	cols := []string{"key", "name", "email", "created_at", "clicks", "customers", "sales", "conversion_rate"}
	for _, c := range currencies {
		cols = append(cols, "revenue_"+c, "rewards_"+c)
	}
	if err := w.header(cols...); err != nil {
		return err
	}
	var d decimal
	cells := make([]string, 0, len(cols))
	return s.store.EachPartnerNumbers(ctx, q, func(n *store.PartnerNumbers) error {
		conv := ""
		if n.Conversion != nil {
			conv = strconv.FormatFloat(*n.Conversion, 'f', 4, 64)
		}
		cells = append(cells[:0], n.Partner.Key, n.Partner.Name, n.Partner.Email, csvTime(n.Partner.CreatedAt),
			strconv.FormatInt(n.Clicks, 10), strconv.FormatInt(n.Customers, 10), strconv.FormatInt(n.Sales, 10), conv)
		for _, c := range currencies {
			cells = append(cells, d.format(sumIn(n.Revenue, c), c), d.format(sumIn(n.Rewards, c), c))
		}
		return w.write(cells...)
	})
}

func sumIn(ms []rules.Money, currency string) int64 {
	for _, m := range ms {
		if m.Currency == currency {
			return m.Minor
		}
	}
	return 0
}

func (s *Server) exportClicks(ctx context.Context, w *csvOut, f store.ClickFilter) error {
	if err := w.header("created_at", "partner_key", "url", "referrer"); err != nil {
		return err
	}
	return s.store.EachClick(ctx, f, func(k *store.ClickExport) error {
		return w.write(csvTime(k.CreatedAt), k.PartnerKey, k.URL, k.Referrer)
	})
}

// GET /admin/api/programs/{id}/export/{kind}.csv?… (the bearer token).
func (s *Server) adminExport(c *fiber.Ctx) error {
	p, err := s.programParam(c)
	if err != nil {
		return err
	}
	job, err := s.newExportJob(c, p, c.Params("file"))
	if err != nil {
		return err
	}
	return sendExport(c, job)
}

// GET /admin/programs/{id}/export/{kind}.csv?… (the admin page's session):
// the same export, for a link on the page. Like every page it needs a
// session (else the sign-in page) and is kept out of caches.
func (s *Server) exportPage(c *fiber.Ctx, _ *session) error {
	p, err := s.webProgram(c)
	if err != nil {
		return err
	}
	job, err := s.newExportJob(c, p, c.Params("file"))
	if err != nil {
		return err
	}
	return sendExport(c, job)
}

// reportPageRoutes mounts the admin page's exports; before
// adminWebRoutes, whose catch-all answers every other /admin path.
func (s *Server) reportPageRoutes(app *fiber.App) {
	app.Get("/admin/programs/:id/export/:file", s.page(s.exportPage))
}
