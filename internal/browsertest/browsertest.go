// Package browsertest drives a real, headless Chromium from Go tests with
// chromedp. Each Browser is a fresh Chromium process with its own profile
// (so cookies and storage never leak between tests), a deadline, and a record
// of what the page wrote to its console.
//
// Typical use:
//
//	b := browsertest.New(t)
//	b.Navigate(srv.URL + "/page.html")
//	b.WaitJS(`document.cookie.includes("x=")`, 5*time.Second)
//	title := browsertest.Eval[string](b, `document.title`)
//	if errs := b.ConsoleErrors(); len(errs) > 0 { t.Error(errs) }
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/potrack/potrack/internal/testenv"
)

// chromiumNames are the names Chromium goes by on PATH: Debian's and
// Fedora's package, Ubuntu's, and Google's builds.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"}

// Chromium returns the browser to drive: $CHROMIUM when set (the Makefile
// passes its own CHROMIUM through), else the first of the usual names on
// PATH. It returns "" when there is none.
func Chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if abs, err := exec.LookPath(p); err == nil {
			return abs
		}
		return ""
	}
	for _, name := range chromiumNames {
		if abs, err := exec.LookPath(name); err == nil {
			return abs
		}
	}
	return ""
}

// Require returns the browser's path, or skips t (fails it under CI) with
// one loud line saying what to install.
func Require(t testing.TB) string {
	t.Helper()
	path := Chromium()
	if path == "" {
		how := "install Chromium (Debian: apt-get install chromium) or put it on PATH"
		if p := os.Getenv("CHROMIUM"); p != "" {
			how = fmt.Sprintf("CHROMIUM=%s is not an executable; point it at a Chromium binary", p)
		}
		testenv.Missing(t, "a Chromium browser", how)
	}
	return path
}

// DefaultTimeout bounds a whole test's use of its browser, unless the test
// binary's own deadline (go test -timeout) comes sooner.
const DefaultTimeout = 60 * time.Second

// pollInterval is how often the Wait helpers look again.
const pollInterval = 25 * time.Millisecond

// Browser is one headless Chromium with one tab, owned by one test.
type Browser struct {
	// Ctx is the chromedp context of the tab, for actions the helpers
	// below do not cover: chromedp.Run(b.Ctx, ...).
	Ctx context.Context
	t   testing.TB

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// Option changes how New sets the browser up.
type Option func(*config)

type config struct {
	timeout time.Duration
}

// WithTimeout sets the deadline of the browser (DefaultTimeout otherwise).
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// New starts Chromium for t and closes it when t ends. Without a browser it
// skips t (see Require); a browser that does not start fails t.
func New(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	cfg := config{timeout: DefaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	chromium := Require(t)

	deadline := time.Now().Add(cfg.timeout)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		// Leave a little time for cleanup and a readable failure before
		// the test binary panics on its own deadline.
		if td, ok := d.Deadline(); ok && td.Add(-5*time.Second).Before(deadline) {
			deadline = td.Add(-5 * time.Second)
		}
	}
	// The deadline is on the root context on purpose: when it passes, the
	// whole browser stops and every pending action fails, so a hung page
	// cannot hang the test.
	root, cancelRoot := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancelRoot)

	b := &Browser{t: t}
	// A loaded machine now and then sees Chromium exit before it answers
	// its first command; one more try keeps the tests reliable without
	// hiding a browser that never starts.
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		if b.Ctx, err = start(t, root, chromium); err == nil {
			break
		}
		t.Logf("browsertest: starting %s (attempt %d): %v", chromium, attempt, err)
	}
	if err != nil {
		t.Fatalf("browsertest: %s does not start: %v", chromium, err)
	}
	// Subscribe after the tab exists; the browser reports console messages
	// only from then on.
	messages := chromedp.Console(b.Ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// start launches Chromium with a fresh profile and opens its tab. Whatever it
// started is stopped when t ends, or at once when it fails.
func start(t testing.TB, root context.Context, chromium string) (context.Context, error) {
	dir := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(dir),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	stop := func() {
		cancelCtx()
		cancelAlloc()
		// Chromium's helper processes can write into the profile for a
		// moment after the main process exits; empty it here, with retries,
		// so that t.TempDir's own cleanup finds nothing left to fail on.
		removeContents(dir, 5*time.Second)
	}
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, err
	}
	t.Cleanup(stop)
	return ctx, nil
}

func removeContents(dir string, patience time.Duration) {
	stop := time.Now().Add(patience)
	for {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			return
		}
		for _, e := range entries {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
		if time.Now().After(stop) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Do runs chromedp actions on the tab and fails the test on error.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.t.Fatalf("browsertest: %v", err)
	}
}

// Navigate loads url in the tab and waits for its load event.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("browsertest: navigating to %s: %v", url, err)
	}
}

// Eval evaluates the JavaScript expression in the page and decodes its value
// (by JSON) into T. Promises are awaited. It fails the test on an exception.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr, awaitPromise))
	if err != nil {
		b.t.Fatalf("browsertest: evaluating %s: %v", expr, err)
	}
	return v
}

// Run runs JavaScript statements in the page for their side effects.
func (b *Browser) Run(statements string) {
	b.t.Helper()
	Eval[chromedp.Void](b, "(() => {\n"+statements+"\n})()")
}

var awaitPromise chromedp.EvaluateOption = chromedp.EvalAwaitPromise

// WaitJS polls the JavaScript expression until it is truthy. It fails the test
// when timeout passes first. An exception (for example while the page
// navigates) counts as false.
func (b *Browser) WaitJS(expr string, timeout time.Duration) {
	b.t.Helper()
	var last error
	ok := poll(b.Ctx, timeout, func() bool {
		raw, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]byte]("!!("+expr+")", awaitPromise))
		last = err
		var v bool
		return err == nil && json.Unmarshal(raw, &v) == nil && v
	})
	if !ok {
		b.t.Fatalf("browsertest: waited %s for %s (last error: %v)", timeout, expr, last)
	}
}

// WaitFor polls cond (Go code, e.g. what a fake server recorded) until it is
// true, and fails the test with what when timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(context.Background(), timeout, cond) {
		t.Fatalf("browsertest: waited %s for %s", timeout, what)
	}
}

// poll calls cond until it is true, timeout passes or ctx ends.
func poll(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	stop := time.NewTimer(timeout)
	defer stop.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-stop.C:
			return cond()
		case <-tick.C:
		}
	}
}

// Console returns what the page wrote to the console so far: console API
// calls, uncaught exceptions and browser log entries.
func (b *Browser) Console() []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), b.console...)
}

// ConsoleErrors returns the console messages of type error and the uncaught
// exceptions, as text. Messages that arrive just after an action may not be
// here yet; call it after waiting for the page's work to finish.
func (b *Browser) ConsoleErrors() []string {
	var out []string
	for _, m := range b.Console() {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, m.String()+" ("+m.URL+")")
		}
	}
	return out
}

// Cookies returns the browser's cookies that apply to the URLs (the page's
// when none are given), with their expiry, flags and SameSite.
func (b *Browser) Cookies(urls ...string) []*network.Cookie {
	b.t.Helper()
	cookies, err := chromedp.Run(b.Ctx, func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: urls})
		return res.Cookies, err
	})
	if err != nil {
		b.t.Fatalf("browsertest: reading cookies: %v", err)
	}
	return cookies
}

// AllCookies returns every cookie in the browser's cookie store.
func (b *Browser) AllCookies() []*network.Cookie {
	b.t.Helper()
	cookies, err := chromedp.Run(b.Ctx, func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, storage.GetCookies, storage.GetCookiesParams{})
		return res.Cookies, err
	})
	if err != nil {
		b.t.Fatalf("browsertest: reading the cookie store: %v", err)
	}
	return cookies
}

// Cookie returns the named cookie that applies to url (the page's when url
// is empty), or nil.
func (b *Browser) Cookie(url, name string) *network.Cookie {
	b.t.Helper()
	var urls []string
	if url != "" {
		urls = []string{url}
	}
	for _, c := range b.Cookies(urls...) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Screenshot saves a full-page PNG of the tab to path, creating its folder.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o755)
	}
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		b.t.Fatalf("browsertest: screenshot to %s: %v", path, err)
	}
}

// BlockURLs makes the tab fail every request whose URL matches one of the
// patterns (URLPattern syntax, e.g. "http://127.0.0.1:8080/collect"), as
// an ad blocker does; no pattern lifts the block.
func (b *Browser) BlockURLs(patterns ...string) {
	b.t.Helper()
	block := []*network.BlockPattern{}
	for _, p := range patterns {
		block = append(block, &network.BlockPattern{URLPattern: p, Block: true})
	}
	_, err := chromedp.Run(b.Ctx, func(ctx context.Context, t *chromedp.Target) (cdp.Empty, error) {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return cdp.Empty{}, err
		}
		return cdp.Call(ctx, t, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: block})
	})
	if err != nil {
		b.t.Fatalf("browsertest: blocking %q: %v", patterns, err)
	}
}
