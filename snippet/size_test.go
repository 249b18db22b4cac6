package snippet

import (
	"fmt"
	"os"
	"testing"
)

// sizeBudget is the most the served script may weigh, gzip -9 compressed.
const sizeBudget = 1500

func buildForTest(t testing.TB) *Asset {
	t.Helper()
	a, err := Build(os.DirFS("."))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return a
}

func TestScriptSize(t *testing.T) {
	a := buildForTest(t)
	msg := fmt.Sprintf("po.js: raw %d B, gzip -9 %d B, brotli %d B (budget %d B gzipped)",
		len(a.Raw), len(a.Gzip), len(a.Brotli), sizeBudget)
	t.Log(msg)
	fmt.Println(msg)
	if len(a.Gzip) > sizeBudget {
		t.Fatalf("po.js is %d B gzipped, over the %d B budget", len(a.Gzip), sizeBudget)
	}
}
