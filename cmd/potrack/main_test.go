package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests run the real command line in a child process: the test binary
// re-executes itself with POTRACK_TEST_ARGS set and becomes `potrack ARGS`,
// so it can be killed with SIGKILL like a production process.
func TestMain(m *testing.M) {
	if n, err := strconv.ParseUint(os.Getenv("POTRACK_TEST_NOFILE"), 10, 64); err == nil {
		// A child with a low open-file limit, as a small host or
		// container has: soft and hard, so potrack cannot raise it.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			os.Exit(1)
		}
	}
	if args, ok := os.LookupEnv("POTRACK_TEST_ARGS"); ok {
		os.Exit(run(context.Background(), append([]string{"potrack"}, strings.Fields(args)...), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cleanEnv is the test's environment without potrack's own variables, so a
// developer's settings cannot change what the child server does.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POTRACK_") {
			out = append(out, kv)
		}
	}
	return out
}

type child struct {
	cmd  *exec.Cmd
	base string
	out  *syncBuffer

	ackMu sync.Mutex
	acks  []string // keys hammer got 2xx for, so far
}

// ackedSoFar is what hammer has seen acknowledged until now.
func (c *child) ackedSoFar() []string {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	return append([]string(nil), c.acks...)
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startServer(t *testing.T, db string, env ...string) *child {
	t.Helper()
	return startServerArgs(t, "serve --db "+db, append([]string{"POTRACK_ADMIN_TOKEN=durability-test-token"}, env...)...)
}

// startServerArgs runs `potrack ARGS --addr FREE_PORT` and waits for
// /healthz.
func startServerArgs(t *testing.T, args string, env ...string) *child {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(cleanEnv(), "POTRACK_TEST_ARGS="+args+" --addr "+addr)
	cmd.Env = append(cmd.Env, env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, base: "http://" + addr, out: out}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *child) do(t *testing.T, method, path, auth, body string) (int, map[string]any) {
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// setup creates a program and a partner, returning the API key.
func (c *child) setup(t *testing.T) string {
	t.Helper()
	st, m := c.do(t, "POST", "/admin/api/programs", "durability-test-token", `{"name":"Durable"}`)
	if st != 201 {
		t.Fatalf("create program: %d %v", st, m)
	}
	key := m["data"].(map[string]any)["api_key"].(string)
	if st, m := c.do(t, "POST", "/v1/partners", key, `{"key":"p"}`); st != 201 {
		t.Fatalf("create partner: %d %v", st, m)
	}
	return key
}

// hammer posts transactions from 64 goroutines (the load benchmark's
// connections) until stop is closed and returns the keys that were
// answered 2xx.
func (c *child) hammer(t *testing.T, key string, stop chan struct{}, started *atomic.Int64) []string {
	var (
		mu   sync.Mutex
		acks []string
		wg   sync.WaitGroup
	)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%d", w, i)
				body := fmt.Sprintf(`{"key":%q,"amount":"1.00","customer":{"key":"c%d","partner":{"key":"p"}},"options":{"create_customer":true}}`, k, w)
				started.Add(1)
				st, _ := c.do(t, "POST", "/v1/transactions", key, body)
				if st == 0 {
					return // the server is gone
				}
				if st == 201 || st == 200 {
					mu.Lock()
					acks = append(acks, k)
					mu.Unlock()
					c.ackMu.Lock()
					c.acks = append(c.acks, k)
					c.ackMu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	return acks
}

func countStored(t *testing.T, c *child, key string, keys []string) int {
	t.Helper()
	missing := 0
	for _, k := range keys {
		if st, _ := c.do(t, "GET", "/v1/transactions/"+k, key, ""); st != 200 {
			missing++
		}
	}
	return missing
}

// loadUntil starts hammer on c and returns once `after` requests have
// started; stop ends the load and returns the keys answered 2xx.
func (c *child) loadUntil(t *testing.T, key string, after int64) (stop func() []string) {
	halt := make(chan struct{})
	var started atomic.Int64
	done := make(chan []string)
	go func() { done <- c.hammer(t, key, halt, &started) }()
	for started.Load() < after {
		time.Sleep(5 * time.Millisecond)
	}
	return func() []string { close(halt); return <-done }
}

// signalUnderLoad starts a server, posts transactions from 64 clients,
// sends sig once `after` requests have started, and returns the keys
// answered 2xx, a restarted server on the same database, and the process's
// exit error.
func signalUnderLoad(t *testing.T, sig syscall.Signal, after int64) (acks []string, restarted *child, apiKey string, exitErr error) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "p.db")
	c := startServer(t, db)
	key := c.setup(t)
	stop := c.loadUntil(t, key, after)
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	exitErr = c.cmd.Wait()
	acks = stop()
	if len(acks) < 100 {
		t.Fatalf("only %d writes acknowledged before the signal", len(acks))
	}
	return acks, startServer(t, db), key, exitErr
}

// TestKill9KeepsAcknowledgedWrites: every transaction answered 2xx before
// a SIGKILL is in the database after a restart.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	acks, c, key, _ := signalUnderLoad(t, syscall.SIGKILL, 3000)
	if missing := countStored(t, c, key, acks); missing != 0 {
		t.Fatalf("%d of %d acknowledged transactions lost after kill -9", missing, len(acks))
	}
	t.Logf("%d acknowledged transactions all survived kill -9", len(acks))
}

// TestGracefulShutdown: SIGTERM lets requests in flight finish; the process
// exits cleanly and every acknowledged write is stored.
func TestGracefulShutdown(t *testing.T) {
	acks, c, key, exitErr := signalUnderLoad(t, syscall.SIGTERM, 2000)
	if exitErr != nil {
		t.Fatalf("potrack exited with %v after SIGTERM", exitErr)
	}
	if missing := countStored(t, c, key, acks); missing != 0 {
		t.Fatalf("%d of %d acknowledged transactions lost after SIGTERM", missing, len(acks))
	}
}

// TestConfigFromEnvironment: environment variables configure serve, and a
// generated admin token is printed once and works.
func TestConfigFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(cleanEnv(), "POTRACK_TEST_ARGS=serve --rate-limit-ip 5-S", "POTRACK_ADDR="+addr, "POTRACK_DB="+filepath.Join(dir, "x.db"))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c := &child{cmd: cmd, base: "http://" + addr, out: out}
	var token string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if i := strings.Index(out.String(), "pat_"); i >= 0 && len(out.String()) >= i+36 {
			token = strings.Fields(out.String()[i:])[0]
			break
		}
	}
	if token == "" {
		t.Fatalf("no generated admin token printed:\n%s", out.String())
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st, _ := c.do(t, "GET", "/admin/api/programs", token, ""); st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the printed token is refused:\n%s", out.String())
		}
	}
	if st, _ := c.do(t, "GET", "/admin/api/programs", "wrong", ""); st != 401 {
		t.Fatalf("a wrong token got %d", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.db")); err != nil {
		t.Fatalf("POTRACK_DB was not used: %v", err)
	}
}

// TestRacingClientsStoreOneRowPerKey: 64 clients of the real server send
// the same 16 sales at once, half through /collect and half through the
// REST API: each key is stored once, with one reward of the right amount,
// and every answer is a success.
func TestRacingClientsStoreOneRowPerKey(t *testing.T) {
	c := startServerArgs(t, "serve --db "+filepath.Join(t.TempDir(), "race.db")+" --rate-limit-ip 100000-M",
		"POTRACK_ADMIN_TOKEN=durability-test-token")
	id, apiKey := c.raceProgram(t)
	raceSales(t, []*child{c}, id, apiKey, 16)
	c.checkOneRowPerKey(t, apiKey, 16)
}

// raceProgram creates a program that takes browser sales from
// https://shop.example and pays 20%, with a partner p.
func (c *child) raceProgram(t *testing.T) (id, apiKey string) {
	t.Helper()
	st, m := c.do(t, "POST", "/admin/api/programs", "durability-test-token",
		`{"name":"Race","js_tracking":true,"allowed_origins":["https://shop.example"],"commission":{"type":"percent","value":20}}`)
	if st != 201 {
		t.Fatalf("create program: %d %v", st, m)
	}
	data := m["data"].(map[string]any)
	id, apiKey = data["id"].(string), data["api_key"].(string)
	if st, m := c.do(t, "POST", "/v1/partners", apiKey, `{"key":"p"}`); st != 201 {
		t.Fatalf("create partner: %d %v", st, m)
	}
	return id, apiKey
}

// raceSales sends the sales race-0 … race-(keys-1) of 10.00 from 64
// clients at once, every client every key, half through /collect and half
// through the REST API, spread over the servers; every answer must be a
// success.
func raceSales(t *testing.T, servers []*child, id, apiKey string, keys int) {
	t.Helper()
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for k := 0; k < keys; k++ {
				c := servers[(w+k)%len(servers)]
				key := fmt.Sprintf("race-%d", k)
				var req *http.Request
				if w%2 == 0 {
					req, _ = http.NewRequest("POST", c.base+"/collect", strings.NewReader(`{"program":"`+id+
						`","type":"transactions.create","partner":{"key":"p"},"data":{"key":"`+key+
						`","amount":"10.00","customer":{"key":"c-`+key+`"}},"options":{"create_customer":true}}`))
					req.Header.Set("Origin", "https://shop.example")
				} else {
					req, _ = http.NewRequest("POST", c.base+"/v1/transactions", strings.NewReader(`{"key":"`+key+
						`","amount":"10.00","customer":{"key":"c-`+key+`","partner":{"key":"p"}},"options":{"create_customer":true}}`))
					req.Header.Set("Authorization", "Bearer "+apiKey)
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 201 {
					failures.Add(1)
					t.Errorf("%s: %d %s", key, resp.StatusCode, body)
				}
			}
		}(w)
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d requests failed", n)
	}
}

// checkOneRowPerKey asserts that raceSales stored each key once, with one
// reward of 2.00, and nothing else.
func (c *child) checkOneRowPerKey(t *testing.T, apiKey string, keys int) {
	t.Helper()
	for k := 0; k < keys; k++ {
		st, m := c.do(t, "GET", fmt.Sprintf("/v1/transactions/race-%d", k), apiKey, "")
		if st != 200 {
			t.Fatalf("race-%d: %d", k, st)
		}
		rewards := m["data"].(map[string]any)["rewards"].([]any)
		if len(rewards) != 1 || fmt.Sprint(rewards[0].(map[string]any)["amount"]) != "2" {
			t.Errorf("race-%d: rewards %v, want one of 2.00", k, rewards)
		}
	}
	st, m := c.do(t, "GET", "/v1/transactions?limit=250", apiKey, "")
	if total := m["meta"].(map[string]any)["total"]; st != 200 || fmt.Sprint(total) != fmt.Sprint(keys) {
		t.Fatalf("%v transactions stored, want %d", total, keys)
	}
}
