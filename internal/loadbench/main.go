// Command loadbench measures potrack's write path against the ceiling of
// its HTTP stack: it starts the real potrack binary and an empty Fiber
// handler (emptyserver), drives both with the same load from a fasthttp
// client on loopback, and prints req/s, p50/p99 latency, server CPU per
// request and peak RSS, with each path's ratio to the empty handler. Run it
// with `make bench`; compare ratios, not absolute figures: the machines are
// shared and noisy.
//
// Every request carries a key unique to its round, so every sale is a new
// row, durable before its 2xx. The pg- paths run the same sales on
// PostgreSQL, through one instance and through two sharing the load.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/valyala/fasthttp"

	"github.com/potrack/potrack/rules"
	"github.com/potrack/potrack/store"
)

const adminToken = "loadbench-admin-token"

func main() {
	rounds := flag.Int("rounds", 3, "rounds per path")
	duration := flag.Duration("duration", 5*time.Second, "load per round")
	conns := flag.Int("conns", 64, "concurrent connections")
	paths := flag.String("paths", "sale,click,signup,rest,pg-sale,pg-sale-2", "which paths to measure (pg-: on PostgreSQL, -2: two instances sharing the load)")
	pg := flag.String("postgres", envOr("POTRACK_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL database for the pg- paths (a schema of the bench's own is made in it and dropped)")
	stored := flag.Int("stored", 0, "transactions to store before the load (e.g. 1000000), to measure potrack with a large database")
	flag.Parse()
	if err := run(*rounds, *duration, *conns, strings.Split(*paths, ","), *stored, *pg); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

type result struct {
	path, target  string
	ok, failed    int
	reqPerSec     float64
	p50, p99      time.Duration
	cpuPerRequest time.Duration
	peakRSSMiB    float64
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(rounds int, duration time.Duration, conns int, paths []string, stored int, pgURL string) error {
	dir, err := os.MkdirTemp("", "loadbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	potrackBin := filepath.Join(dir, "potrack")
	emptyBin := filepath.Join(dir, "emptyserver")
	for bin, pkg := range map[string]string{potrackBin: "./cmd/potrack", emptyBin: "./internal/loadbench/emptyserver"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	}

	empty, err := start(emptyBin, nil)
	if err != nil {
		return err
	}
	defer empty.stop()
	db := filepath.Join(dir, "bench.db")
	serveArgs := []string{"serve", "--db", db,
		"--rate-limit-ip", "100000000-M", "--rate-limit-program", "100000000-M", "--max-conns-per-ip", "0"}
	pt, err := start(potrackBin, serveArgs, "POTRACK_ADMIN_TOKEN="+adminToken)
	if err != nil {
		return err
	}
	prog, err := setup(pt.addr)
	if err != nil {
		pt.stop()
		return err
	}
	if stored > 0 {
		// A large database: stop the server, store the rows directly, and
		// start it again on them, so its memory is measured as it would
		// run after months of sales.
		pt.stop()
		if err := preload(db, prog.id, stored); err != nil {
			return err
		}
		if pt, err = start(potrackBin, serveArgs, "POTRACK_ADMIN_TOKEN="+adminToken); err != nil {
			return err
		}
		fmt.Printf("loadbench: %d transactions stored before the load\n", stored)
	}
	defer pt.stop()

	// The PostgreSQL paths: one instance, and two sharing the load, on one
	// database.
	var pgServers []*server
	var pgProg program
	if slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(p, "pg-") }) {
		url, drop, err := benchSchema(pgURL)
		if err != nil {
			fmt.Printf("loadbench: no PostgreSQL paths: %v\n", err)
			paths = slices.DeleteFunc(paths, func(p string) bool { return strings.HasPrefix(p, "pg-") })
		} else {
			defer drop()
			pgArgs := slices.Clone(serveArgs)
			pgArgs[2] = url
			for range 2 {
				s, err := start(potrackBin, pgArgs, "POTRACK_ADMIN_TOKEN="+adminToken)
				if err != nil {
					return err
				}
				defer s.stop()
				pgServers = append(pgServers, s)
			}
			if pgProg, err = setup(pgServers[0].addr); err != nil {
				return err
			}
		}
	}

	fmt.Printf("loadbench: %d connections, %d rounds of %v per path; CPU is the server process's (user+system) per request\n\n",
		conns, rounds, duration)
	fmt.Printf("%-8s %-8s %5s %10s %9s %9s %10s %9s %8s\n", "path", "target", "round", "req/s", "p50", "p99", "CPU/req", "peak RSS", "ratio")
	for _, path := range paths {
		for round := 1; round <= rounds; round++ {
			e := load([]*server{empty}, strings.TrimSuffix(strings.TrimPrefix(path, "pg-"), "-2"), prog, round, duration, conns)
			e.path = path
			var p result
			switch path {
			case "pg-sale":
				p = load(pgServers[:1], "sale", pgProg, round, duration, conns)
			case "pg-sale-2":
				p = load(pgServers, "sale", pgProg, round, duration, conns)
			default:
				p = load([]*server{pt}, path, prog, round, duration, conns)
			}
			p.path = path
			for _, r := range []result{e, p} {
				ratio := ""
				if r.target == "potrack" && e.reqPerSec > 0 {
					ratio = fmt.Sprintf("%.2f×", r.reqPerSec/e.reqPerSec)
				}
				fail := ""
				if r.failed > 0 {
					fail = fmt.Sprintf("  (%d failed)", r.failed)
				}
				fmt.Printf("%-8s %-8s %5d %10.0f %9s %9s %10s %7.1fMB %8s%s\n", r.path, r.target, round, r.reqPerSec,
					r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.cpuPerRequest.Round(time.Microsecond),
					r.peakRSSMiB, ratio, fail)
			}
		}
	}
	for i, s := range pgServers {
		if _, body, err := do(s.addr, "GET", "/metrics", "", ""); err == nil {
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, "potrack_store_write_retries_total ") || strings.HasPrefix(line, "potrack_store_statements_total ") {
					fmt.Printf("loadbench: PostgreSQL instance %d: %s\n", i+1, line)
				}
			}
		}
	}
	return nil
}

type server struct {
	name string
	cmd  *exec.Cmd
	addr string
}

// stop asks the server to shut down (so POTRACK_CPUPROFILE is written),
// and kills it if it has not within ten seconds.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.AfterFunc(10*time.Second, func() { s.cmd.Process.Kill() })
	s.cmd.Wait()
	t.Stop()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func start(bin string, args []string, env ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	name := "empty"
	if filepath.Base(bin) == "potrack" {
		name = "potrack"
	}
	cmd := exec.Command(bin, append(args, "--addr", addr)...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, cmd: cmd, addr: addr}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _, err := fasthttp.Get(nil, "http://"+addr+"/healthz"); err == nil && code == 200 {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not start", bin)
		}
	}
}

type program struct{ id, apiKey string }

// setup creates a program with JS tracking on for the bench's origin, and
// its partner.
func setup(addr string) (program, error) {
	body := `{"name":"Bench","js_tracking":true,"allowed_origins":["https://shop.example"],"commission":{"type":"percent","value":20}}`
	code, resp, err := do(addr, "POST", "/admin/api/programs", adminToken, body)
	if err != nil || code != 201 {
		return program{}, fmt.Errorf("create program: %d %s %v", code, resp, err)
	}
	var out struct {
		Data struct {
			ID     string `json:"id"`
			APIKey string `json:"api_key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		return program{}, err
	}
	p := program{out.Data.ID, out.Data.APIKey}
	if code, resp, err := do(addr, "POST", "/v1/partners", p.apiKey, `{"key":"pat"}`); err != nil || code != 201 {
		return program{}, fmt.Errorf("create partner: %d %s %v", code, resp, err)
	}
	return p, nil
}

func do(addr, method, path, bearer, body string) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetMethod(method)
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.SetContentType("application/json")
	req.SetBodyString(body)
	err := fasthttp.DoTimeout(req, resp, 10*time.Second)
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), err
}

// request builds the path's request for key.
func request(req *fasthttp.Request, addr, path string, p program, key string) {
	req.Header.SetMethod("POST")
	req.Header.Set("Origin", "https://shop.example")
	req.Header.SetContentType("text/plain")
	switch path {
	case "sale":
		req.SetRequestURI("http://" + addr + "/collect")
		req.SetBodyString(`{"program":"` + p.id + `","type":"transactions.create","partner":{"key":"pat"},"data":{"key":"` + key +
			`","amount":"25.00","customer":{"key":"c` + key + `"}},"options":{"create_customer":true}}`)
	case "click":
		req.SetRequestURI("http://" + addr + "/collect")
		req.SetBodyString(`{"program":"` + p.id + `","type":"clicks.create","partner":{"key":"pat"},"url":"https://shop.example/?aff=pat&k=` + key + `"}`)
	case "signup":
		req.SetRequestURI("http://" + addr + "/collect")
		req.SetBodyString(`{"program":"` + p.id + `","type":"customers.signup","partner":{"key":"pat"},"data":{"key":"` + key + `"}}`)
	case "rest":
		req.SetRequestURI("http://" + addr + "/v1/transactions")
		req.Header.Del("Origin")
		req.Header.Set("Authorization", "Bearer "+p.apiKey)
		req.Header.SetContentType("application/json")
		req.SetBodyString(`{"key":"` + key + `","amount":"25.00","customer":{"key":"c` + key +
			`","partner":{"key":"pat"}},"options":{"create_customer":true}}`)
	}
}

// load drives the servers with conns clients for d, spread evenly over
// them, and measures; CPU is theirs together, RSS the largest one's.
func load(servers []*server, path string, p program, round int, d time.Duration, conns int) result {
	clients := make([]*fasthttp.HostClient, len(servers))
	var cpu0 time.Duration
	for i, s := range servers {
		clients[i] = &fasthttp.HostClient{Addr: s.addr, MaxConns: conns, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		cpu0 += cpuTime(s.cmd.Process.Pid)
	}
	var ok, failed atomic.Int64
	lat := make([][]time.Duration, conns)
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			s, client := servers[w%len(servers)], clients[w%len(servers)]
			for i := 0; time.Now().Before(stop); i++ {
				req.Reset()
				request(req, s.addr, path, p, fmt.Sprintf("%s-r%d-w%d-%d", path, round, w, i))
				t0 := time.Now()
				err := client.Do(req, resp)
				lat[w] = append(lat[w], time.Since(t0))
				if err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := -cpu0
	rss := 0.0
	for _, s := range servers {
		cpu += cpuTime(s.cmd.Process.Pid)
		rss = max(rss, peakRSS(s.cmd.Process.Pid))
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := result{path: path, target: servers[0].name, ok: int(ok.Load()), failed: int(failed.Load()), peakRSSMiB: rss}
	r.reqPerSec = float64(r.ok) / elapsed.Seconds()
	if n := len(all); n > 0 {
		r.p50, r.p99 = all[n/2], all[n*99/100]
		r.cpuPerRequest = cpu / time.Duration(n)
	}
	return r
}

// benchSchema makes a schema of the bench's own in the PostgreSQL database
// at base and returns a URL that works in it, and how to drop it.
func benchSchema(base string) (string, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: %v (set -postgres or POTRACK_BENCH_POSTGRES)", store.RedactURL(base), err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("potrack_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	drop := func() {
		ctx := context.Background()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// preload stores n transactions of program id in the database at path.
func preload(path, id string, n int) error {
	st, err := store.Open(path)
	if err != nil {
		return err
	}
	defer st.Close()
	const perWrite = 20000
	for done := 0; done < n; done += perWrite {
		err := st.Write(context.Background(), func(tx *store.Tx) error {
			for i := done; i < min(done+perWrite, n); i++ {
				if err := tx.InsertTransaction(&store.Transaction{ProgramID: id, Key: fmt.Sprintf("stored-%d", i),
					Amount: rules.Money{Minor: 2500, Currency: "USD"}, Action: "sale", Source: store.SourceAPI,
					Verified: true, Rewardable: true}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store transactions: %w", err)
		}
	}
	return nil
}

// cpuTime is the process's user+system CPU so far, from /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; count fields after ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
}

func peakRSS(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
