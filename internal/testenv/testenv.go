// Package testenv decides what a test does when something it needs from the
// machine (a browser, later a database server) is not there: on a
// developer's machine it skips with one loud line naming what to install;
// with CI set it fails, so that CI can never go green by skipping.
package testenv

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

var told sync.Map // what -> struct{}: the loud line is printed once per test binary

// InCI reports whether the tests run under CI (the CI variable is set and
// not "false" or "0").
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Missing fails t under CI and skips it elsewhere. what names the missing
// thing; how says how to get it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is missing and CI is set, so this test fails instead of skipping: %s", what, how)
	}
	if _, seen := told.LoadOrStore(what, struct{}{}); !seen {
		fmt.Fprintf(os.Stderr, "\n*** SKIPPING tests that need %s: %s ***\n\n", what, how)
	}
	t.Skipf("%s is missing: %s", what, how)
}
