package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/store"
)

// runCLI runs `potrack ARGS` as a child process and returns its exit status
// and output.
func runCLI(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "POTRACK_TEST_ARGS="+strings.Join(args, " "))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("potrack %v did not exit; output:\n%s%s", args, out.String(), errOut.String())
	}
	return code, out.String(), errOut.String()
}

// TestCommandLine runs the binary's command line as a user would type it.
func TestCommandLine(t *testing.T) {
	everyFlag := []string{
		"--addr", "$POTRACK_ADDR", `":8080"`,
		"--db", "$POTRACK_DB", `"./data/potrack.db"`,
		"--public-url", "$POTRACK_PUBLIC_URL",
		"--trusted-proxies", "$POTRACK_TRUSTED_PROXIES",
		"--admin-token", "$POTRACK_ADMIN_TOKEN",
		"--rate-limit-ip", "$POTRACK_RATE_LIMIT_IP", `"120-M"`,
		"--rate-limit-program", "$POTRACK_RATE_LIMIT_PROGRAM", `"60000-M"`,
		"--demo", "$POTRACK_DEMO",
		"--max-conns", "$POTRACK_MAX_CONNS",
		"--max-conns-per-ip", "$POTRACK_MAX_CONNS_PER_IP", "(default: 256)",
		"--header-timeout", "$POTRACK_HEADER_TIMEOUT", "(default: 10s)",
		"--body-timeout", "$POTRACK_BODY_TIMEOUT", "(default: 30s)",
		"--write-timeout", "$POTRACK_WRITE_TIMEOUT",
		"--idle-timeout", "$POTRACK_IDLE_TIMEOUT", "(default: 1m0s)",
	}
	scenarios := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // each must appear
		stderr     []string
		noStdout   bool
		noDataDir  bool // nothing may be created in the working folder
		stderrLine int  // when > 0, stderr has exactly this many lines
	}{
		{name: "no command shows the commands", args: nil, stdout: []string{"potrack serve", "serve", "version"}},
		{name: "--help", args: []string{"--help"}, stdout: []string{"USAGE", "serve", "run the server", "version"}},
		{name: "help serve", args: []string{"help", "serve"}, stdout: everyFlag},
		{name: "serve --help lists every flag with its variable and default", args: []string{"serve", "--help"}, stdout: everyFlag, noDataDir: true},
		{name: "serve -h", args: []string{"serve", "-h"}, stdout: []string{"--addr", "$POTRACK_ADDR"}, noDataDir: true},
		{name: "version", args: []string{"version"}, stdout: []string{"potrack ", "go1."}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, noStdout: true, noDataDir: true,
			stderr: []string{`unknown command "frobnicate"`, "potrack --help"}, stderrLine: 2},
		{name: "a stray word before flags is an error, not the end of the flags", args: []string{"serve", "extra", "--db", "x.db", "--addr", "127.0.0.1:1"},
			code: 2, noStdout: true, noDataDir: true, stderr: []string{`"extra"`, "potrack serve --help"}, stderrLine: 2},
		{name: "a stray word after flags", args: []string{"serve", "--db", "x.db", "extra"},
			code: 2, noStdout: true, noDataDir: true, stderr: []string{`"extra"`}, stderrLine: 2},
		{name: "unknown flag", args: []string{"serve", "--frob"}, code: 2, noStdout: true, noDataDir: true,
			stderr: []string{"unknown flag --frob", "potrack serve --help"}, stderrLine: 2},
		{name: "flag without its value", args: []string{"serve", "--db"}, code: 2, noStdout: true, noDataDir: true,
			stderr: []string{"--db"}, stderrLine: 2},
		{name: "a number flag given a word", args: []string{"serve", "--max-conns", "abc"}, code: 2, noStdout: true, noDataDir: true,
			stderr: []string{"--max-conns must be a whole number", `"abc"`}, stderrLine: 2},
		{name: "a duration without its unit", args: []string{"serve", "--body-timeout", "5"}, code: 2, noStdout: true, noDataDir: true,
			stderr: []string{"--body-timeout must be a duration"}, stderrLine: 2},
		{name: "help for no such command", args: []string{"help", "bogus"}, code: 2, noStdout: true,
			stderr: []string{"no command", "potrack --help"}, stderrLine: 2},
		{name: "version takes no arguments", args: []string{"version", "now"}, code: 2, noStdout: true,
			stderr: []string{`"now"`}, stderrLine: 2},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			code, stdout, stderr := runCLI(t, dir, sc.args...)
			if code != sc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, sc.code, stdout, stderr)
			}
			for _, w := range sc.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range sc.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if sc.noStdout && stdout != "" {
				t.Errorf("stdout should be empty, got:\n%s", stdout)
			}
			if sc.stderrLine > 0 {
				if n := strings.Count(stderr, "\n"); n != sc.stderrLine {
					t.Errorf("stderr has %d lines, want %d:\n%s", n, sc.stderrLine, stderr)
				}
			}
			if sc.noDataDir {
				entries, _ := os.ReadDir(dir)
				if len(entries) > 0 {
					t.Errorf("the command created %s although it should not have run", entries[0].Name())
				}
			}
			for _, internal := range []string{"flag provided but not defined", "goroutine ", "panic", "strconv", "ParseInt"} {
				if strings.Contains(stderr, internal) {
					t.Errorf("stderr shows %q:\n%s", internal, stderr)
				}
			}
		})
	}
}

// TestServeFlagsAreUsed: flags in the GNU --flag=value form are
// read wherever they stand, and serve really uses them.
func TestServeFlagsAreUsed(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "chosen.db")
	c := startServerArgs(t, "serve --admin-token flags-test-token-123 --db="+db)
	if st, _ := c.do(t, "GET", "/admin/api/programs", "flags-test-token-123", ""); st != 200 {
		t.Fatalf("--admin-token not used: %d", st)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("--db= not used: %v", err)
	}
}

// TestCheckCommand: `potrack check` reads a database and says whether it is
// sound.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sound.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if code, out, errOut := runCLI(t, dir, "check", "--db", db); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("a sound database: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut := runCLI(t, dir, "check", "--db", filepath.Join(dir, "missing.db"))
	if code != 1 || !strings.Contains(errOut, "no database at") || strings.Contains(errOut, "stat ") {
		t.Fatalf("a missing database: exit %d\n%s", code, errOut)
	}
}

func TestFormatVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"},
		{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	want := "potrack v1.2.3 commit 0123456789ab (2026-11-30T10:00:00Z, with uncommitted changes) go1.26.8"
	if got := formatVersion(info); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	bare := &debug.BuildInfo{GoVersion: "go1.26.8"}
	if got := formatVersion(bare); got != "potrack (devel) go1.26.8" {
		t.Fatalf("without VCS information: %q", got)
	}
}

// TestBusyPortStoresNothing: on a port already taken, serve fails before it
// stores a generated admin token or prints that it runs.
func TestBusyPortStoresNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	code, out, errOut := runCLI(t, dir, "serve", "--db", filepath.Join(dir, "data", "p.db"), "--addr", busy.Addr().String())
	if code != 1 || !strings.Contains(errOut, "listen on") {
		t.Fatalf("exit %d, want 1 naming the address\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "running") || strings.Contains(out, "pat_") {
		t.Fatalf("printed a start banner on a busy port:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Fatal("created the data folder on a busy port")
	}
}

// TestServersStartTogether: several servers started at once on one new
// database all come up (migrations run once, under the write lock), and
// one admin token is generated: printed by one of them, valid on all.
func TestServersStartTogether(t *testing.T) {
	for round := 0; round < 3; round++ {
		db := filepath.Join(t.TempDir(), "shared.db")
		var wg sync.WaitGroup
		children := make([]*child, 4)
		for i := range children {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				children[i] = startServerArgs(t, "serve --db "+db)
			}(i)
		}
		wg.Wait()
		var tokens []string
		for _, c := range children {
			if c == nil {
				t.FailNow() // startServerArgs reported why
			}
			// Each prints its banner before it serves, but the copy of
			// its output into c.out may lag behind /healthz on a busy
			// machine: wait for the whole banner, which goes out in one
			// write.
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(c.out.String(), "potrack is running.") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(c.out.String(), "potrack is running.") {
				t.Fatalf("round %d: no banner from a server that answers /healthz:\n%s", round, c.out)
			}
			if i := strings.Index(c.out.String(), "pat_"); i >= 0 {
				tokens = append(tokens, strings.Fields(c.out.String()[i:])[0])
			}
		}
		if len(tokens) != 1 {
			t.Fatalf("round %d: %d admin tokens printed, want 1: %v", round, len(tokens), tokens)
		}
		for i, c := range children {
			if st, _ := c.do(t, "GET", "/admin/api/programs", tokens[0], ""); st != 200 {
				t.Errorf("round %d: server %d refuses the printed token: %d", round, i, st)
			}
		}
	}
}

// TestBackupWhileServing: `potrack backup` copies the database while a
// server writes to it, the copy holds every sale acknowledged before the
// back-up began and passes SQLite's check, and an existing file is never
// replaced.
func TestBackupWhileServing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "live.db")
	c := startServer(t, db)
	key := c.setup(t)
	stop := c.loadUntil(t, key, 500)
	// Every sale acknowledged so far must be in the copy; more keep coming.
	before := c.ackedSoFar()
	to := filepath.Join(dir, "copy.db")
	code, out, errOut := runCLI(t, dir, "backup", "--db", db, "--to", to)
	stop()
	if code != 0 || !strings.Contains(out, "checked") {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	problems, err := store.Check(to)
	if err != nil || len(problems) > 0 {
		t.Fatalf("the copy: %v %v", problems, err)
	}
	copied, err := store.Open(to)
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	for _, k := range before {
		if n, err := copied.CountForTest(context.Background(), `SELECT count(*) FROM transactions WHERE key = ?`, k); err != nil || n != 1 {
			t.Fatalf("acknowledged sale %s is not in the back-up (%d, %v)", k, n, err)
		}
	}
	t.Logf("%d sales acknowledged before the back-up began, all in it; %s", len(before), strings.TrimSpace(out))

	// Never over an existing file.
	info, _ := os.Stat(to)
	code, _, errOut = runCLI(t, dir, "backup", "--db", db, "--to", to)
	if code != 1 || !strings.Contains(errOut, "exists already") {
		t.Fatalf("backup over an existing file: exit %d\n%s", code, errOut)
	}
	if after, _ := os.Stat(to); !os.SameFile(info, after) || after.Size() != info.Size() {
		t.Fatal("the existing back-up was replaced")
	}
	if code, _, errOut := runCLI(t, dir, "backup", "--db", db); code != 2 || !strings.Contains(errOut, "--to") {
		t.Fatalf("backup without --to: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, dir, "backup", "--db", filepath.Join(dir, "none.db"), "--to", filepath.Join(dir, "x.db")); code != 1 || !strings.Contains(errOut, "no database at") {
		t.Fatalf("backup of a missing database: exit %d\n%s", code, errOut)
	}
}

// TestMigrateCommand: `potrack migrate` copies a database the server wrote
// into PostgreSQL and prints the counts; a second run is refused; a --to
// that is not a PostgreSQL URL is a usage error.
func TestMigrateCommand(t *testing.T) {
	url := testenv.Postgres(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "from.db")
	c := startServer(t, db)
	key := c.setup(t)
	for i := range 5 {
		body := fmt.Sprintf(`{"key":"m%d","amount":"3.00","customer":{"key":"mc%d","partner":{"key":"p"}},"options":{"create_customer":true}}`, i, i)
		if st, _ := c.do(t, "POST", "/v1/transactions", key, body); st != 201 {
			t.Fatalf("sale %d: %d", i, st)
		}
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
	code, out, errOut := runCLI(t, dir, "migrate", "--from", db, "--to", url)
	if code != 0 || !regexp.MustCompile(`transactions\s+5 rows`).MatchString(out) || !strings.Contains(out, "copied and counted") {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, dir, "migrate", "--from", db, "--to", url)
	if code != 1 || !strings.Contains(errOut, "already holds rows") {
		t.Fatalf("second migrate: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, dir, "migrate", "--from", db, "--to", filepath.Join(dir, "other.db")); code != 2 || !strings.Contains(errOut, "postgres://") {
		t.Fatalf("migrate to a file: exit %d\n%s", code, errOut)
	}
}
