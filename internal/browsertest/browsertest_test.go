package browsertest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBrowser(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><title>hello</title><h1>Hello</h1>
<script>
document.cookie = "c=1; max-age=3600; path=/; SameSite=Lax";
setTimeout(() => { window.later = 42; fetch("/hit") }, 100);
</script>`)
		case "/broken":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><script>console.error("boom", 1); null.x</script>`)
		case "/hit":
			hits.Add(1)
		case "/favicon.ico":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	b := New(t)
	b.Navigate(srv.URL + "/")
	if got := Eval[string](b, `document.title`); got != "hello" {
		t.Errorf("title %q", got)
	}
	if got := Eval[int](b, `Promise.resolve(40 + 2)`); got != 42 {
		t.Errorf("awaited promise gave %d", got)
	}
	b.WaitJS(`window.later === 42`, 5*time.Second)
	WaitFor(t, 5*time.Second, "the page's fetch", func() bool { return hits.Load() == 1 })

	c := b.Cookie("", "c")
	if c == nil {
		t.Fatalf("cookie c not found in %v", b.Cookies())
	}
	if want := float64(time.Now().Unix() + 3600); c.Expires < want-60 || c.Expires > want+60 {
		t.Errorf("cookie expires %v, want about %v", c.Expires, want)
	}
	if len(b.AllCookies()) != 1 {
		t.Errorf("cookie store: %v", b.AllCookies())
	}
	if errs := b.ConsoleErrors(); len(errs) != 0 {
		t.Errorf("console errors on a clean page: %v", errs)
	}

	png := filepath.Join(t.TempDir(), "shots", "page.png")
	b.Screenshot(png)
	data, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Errorf("screenshot: %v, %d bytes", err, len(data))
	}

	b.Navigate(srv.URL + "/broken")
	var errs []string
	WaitFor(t, 5*time.Second, "two console errors", func() bool {
		errs = b.ConsoleErrors()
		return len(errs) == 2
	})
	if !strings.Contains(errs[0], "boom 1") || !strings.Contains(errs[1], "TypeError") {
		t.Errorf("console errors: %q", errs)
	}
}

func TestWaitJSTimesOut(t *testing.T) {
	b := New(t)
	ft := &fakeT{TB: t}
	b.t = ft
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.WaitJS(`false`, 200*time.Millisecond)
	}()
	<-done
	if !strings.Contains(ft.msg, "waited 200ms for false") {
		t.Errorf("WaitJS failure message: %q", ft.msg)
	}
}

// fakeT records a Fatalf and ends the goroutine, as testing.T does.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
