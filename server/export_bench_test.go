package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/potrack/potrack/store"
)

// BenchmarkExportTransactions downloads the transactions export of a
// program holding 100,000 and 1,000,000 transactions (each with its
// customer, a tenth of the customers referred, their sales rewarded) over
// loopback HTTP from the real server on SQLite, and reports rows/s and the
// peak of the Go heap in use during the download (sampled every 5 ms) next
// to the heap before it: the same peak for ten times the rows shows the
// export holds a row at a time, not the list. docs/performance.md quotes
// a run.
func BenchmarkExportTransactions(b *testing.B) {
	for _, rows := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) { benchExport(b, rows) })
	}
}

func benchExport(b *testing.B, rows int) {
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv, err := New(Config{DB: filepath.Join(dir, "bench.db"), AdminToken: testAdminToken}, st)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	setup := time.Now()
	p, _, err := srv.createProgram(ctx, &programJSONIn{Name: ptr("Bench")})
	if err != nil {
		b.Fatal(err)
	}
	// Bulk rows, one statement (and transaction) per table.
	customers := max(rows/10, 1)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
			INSERT INTO partners (program_id, key, name, email, created_at) SELECT ?1, 'partner-' || i, 'Partner ' || i, '', 1767225600 FROM n`,
			[]any{p.ID, 100}},
		{`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
			INSERT INTO customers (program_id, key, email, partner_id, created_at)
			SELECT ?1, 'cust-' || i, 'cust-' || i || '@example.com',
				CASE WHEN i % 10 = 0 THEN (SELECT min(id) FROM partners) + i % 100 END, 1767225600 FROM n`,
			[]any{p.ID, customers}},
		{`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
			INSERT INTO transactions (program_id, key, customer_id, amount_minor, currency, action, product_id, source,
				verified, rewardable, status, created_at)
			SELECT ?1, 'order-' || i, (SELECT min(id) FROM customers) + i % ?3, 1000 + i % 9000, 'USD', 'sale', 'pro', 'api',
				TRUE, TRUE, 'ok', 1767225600 + i FROM n`,
			[]any{p.ID, rows, customers}},
		{`INSERT INTO rewards (transaction_id, partner_id, amount_minor, currency, status, created_at)
			SELECT t.id, c.partner_id, t.amount_minor / 5, t.currency, 'ok', t.created_at
			FROM transactions t JOIN customers c ON c.id = t.customer_id WHERE c.partner_id IS NOT NULL`, nil},
	} {
		if err := st.ExecForTest(ctx, q.sql, q.args...); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("setup: %d transactions in %v", rows, time.Since(setup).Round(time.Millisecond))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.app.Listener(ln)
	defer srv.app.Shutdown()
	url := "http://" + ln.Addr().String() + "/admin/api/programs/" + p.ID + "/export/transactions.csv"

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var m runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	var bytesRead int64
	for range b.N {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		lines := &lineCounter{}
		n, err := io.Copy(lines, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%d after %d bytes: %v", resp.StatusCode, n, err)
		}
		if lines.n != rows+1 {
			b.Fatalf("%d lines, want %d", lines.n, rows+1)
		}
		bytesRead += n
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	sampler.Wait()
	const mib = 1 << 20
	b.ReportMetric(float64(rows*b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(peak.Load())/mib, "peak-heap-MiB")
	b.ReportMetric(float64(before.HeapInuse)/mib, "heap-before-MiB")
	b.ReportMetric(float64(bytesRead)/float64(b.N)/mib, "csv-MiB")
}

type lineCounter struct{ n int }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

func ptr[T any](v T) *T { return &v }
