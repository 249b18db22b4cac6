package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The hostile-client tests run the real binary on loopback and attack it as
// the hardening issue did: a compressed body that inflates to gigabytes,
// thousands of bodies that never finish, and as many idle connections as
// this process may open. Each is bounded in count and time. They report
// the server's peak RSS and /healthz latency (go test -v, or the closing
// note), and fail when the server dies, stops answering, or grows past a
// generous bound.

// peakRSS is the child's peak resident set (VmHWM) in MiB.
func peakRSS(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("the server is gone: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// healthFrom times GET /healthz from another loopback address than the
// flood's, so the per-IP cap does not apply to it.
func healthFrom(base string) (time.Duration, error) {
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}
	defer tr.CloseIdleConnections()
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(base + "/healthz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("/healthz answered %d", resp.StatusCode)
	}
	return time.Since(start), nil
}

// gzipTwice is a body that inflates twice over to size zero bytes: the
// stacked "gzip, gzip" bomb. The inner layer is one compressed MiB of zeros
// repeated (gzip members concatenate), so building it is cheap even under
// the race detector.
func gzipTwice(size int64) []byte {
	var member bytes.Buffer
	w, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	w.Write(make([]byte, 1<<20))
	w.Close()
	inner := bytes.Repeat(member.Bytes(), int(size>>20))
	var outer bytes.Buffer
	w2, _ := gzip.NewWriterLevel(&outer, gzip.BestCompression)
	w2.Write(inner)
	w2.Close()
	return outer.Bytes()
}

// memoryBound is an RSS bound in MiB for a build without the race
// detector, scaled for one with it.
func memoryBound(mib float64) float64 {
	if raceEnabled {
		return mib * 8
	}
	return mib
}

func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the server; not in -short")
	}
	db := filepath.Join(t.TempDir(), "p.db")
	// No per-IP cap: every attacker here is 127.0.0.1, and the point is
	// what the process itself withstands (the per-IP cap has its own test).
	c := startServerArgs(t, "serve --db "+db+" --max-conns-per-ip 0 --body-timeout 20s --header-timeout 20s",
		"POTRACK_ADMIN_TOKEN=durability-test-token")
	pid := c.cmd.Process.Pid
	base := c.base
	addr := strings.TrimPrefix(base, "http://")
	report := func(what string) {
		lat, err := healthFrom(base)
		if err != nil {
			t.Fatalf("%s: /healthz: %v\n%s", what, err, c.out)
		}
		t.Logf("%-34s peak RSS %6.1f MiB, /healthz %v", what, peakRSS(t, pid), lat.Round(100*time.Microsecond))
	}
	report("at start")

	t.Run("gzip bomb", func(t *testing.T) {
		bomb := gzipTwice(1 << 30) // 1 GiB of zeros in a few KiB
		t.Logf("bomb: %d bytes inflating to 1 GiB", len(bomb))
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			for _, path := range []string{"/collect", "/webhooks/stripe/x", "/v1/transactions"} {
				wg.Add(1)
				go func(path string) {
					defer wg.Done()
					req, _ := http.NewRequest("POST", base+path, bytes.NewReader(bomb))
					req.Header.Set("Content-Encoding", "gzip, gzip")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Errorf("%s: %v", path, err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 415 {
						t.Errorf("%s: %d, want 415", path, resp.StatusCode)
					}
				}(path)
			}
		}
		wg.Wait()
		report("after 9 gzip bombs")
		if rss := peakRSS(t, pid); rss > memoryBound(300) {
			t.Errorf("peak RSS %.0f MiB after gzip bombs", rss)
		}
	})

	t.Run("3000 slow bodies", func(t *testing.T) {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < 3000; i++ {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, conn)
			fmt.Fprintf(conn, "POST /webhooks/stripe/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
		}
		for round := 0; round < 2; round++ {
			time.Sleep(time.Second)
			for _, conn := range conns {
				conn.Write([]byte(" "))
			}
		}
		report("holding 3000 slow bodies")
		if rss := peakRSS(t, pid); rss > memoryBound(400) {
			t.Errorf("peak RSS %.0f MiB with 3000 slow 1 MB bodies", rss)
		}
	})

	t.Run("idle connection flood", func(t *testing.T) {
		var lim syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		n := int(lim.Cur) - 500 // what this process may open, less a margin
		if n > 20000 {
			n = 20000
		}
		if raceEnabled {
			n = min(n, 5000) // each connection costs the race detector dearly
		}
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < n; i++ {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				break // the server's cap or the kernel's backlog: both fine
			}
			conns = append(conns, conn)
		}
		time.Sleep(500 * time.Millisecond)
		t.Logf("opened %d idle connections", len(conns))
		if rss := peakRSS(t, pid); rss > memoryBound(600) {
			t.Errorf("peak RSS %.0f MiB with %d idle connections", rss, len(conns))
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			t.Fatal("the server died under the flood")
		}
		lat, err := healthFrom(base)
		t.Logf("during the flood: /healthz %v (err %v)", lat, err)
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, err := healthFrom(base); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz does not answer after the flood ended\n%s", c.out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		report(fmt.Sprintf("after %d idle connections", n))
	})
}

// TestFloodUnderLowFileLimit: with an open-file limit of 512, a flood of
// 1,500 connections used to make accept fail with EMFILE, which ended the
// process. The connection cap stays under the limit and accept errors are
// retried: the server lives, and answers once the flood ends.
func TestFloodUnderLowFileLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the server; not in -short")
	}
	c := startServerArgs(t, "serve --db "+filepath.Join(t.TempDir(), "p.db")+" --max-conns 5000 --max-conns-per-ip 0",
		"POTRACK_ADMIN_TOKEN=durability-test-token", "POTRACK_TEST_NOFILE=512")
	addr := strings.TrimPrefix(c.base, "http://")
	var conns []net.Conn
	for i := 0; i < 1500; i++ {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, conn)
	}
	// Whether the process survived shows in /healthz once the flood ends
	// (a dead server would answer nothing).
	for _, conn := range conns {
		conn.Close()
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := healthFrom(c.base); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz does not answer after the flood\n%s", c.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d connections opened against a limit of 512 files; the server lives", len(conns))
}
