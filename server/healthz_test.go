package server

import (
	"strings"
	"testing"
	"time"
)

// TestHealthTellsTheTruth: /healthz is 503 with a reason while writes fail,
// whether a request's write failed or only its own probe did.
func TestHealthTellsTheTruth(t *testing.T) {
	t.Run("a failed write", func(t *testing.T) {
		ts := newTestServer(t)
		p := ts.createProgram(`{"name":"Shop"}`)
		if r := ts.request("GET", "/healthz", ""); r.Status != 200 {
			t.Fatalf("healthy server: %d %s", r.Status, r.Body)
		}
		if err := ts.store.BreakWritesForTest(); err != nil {
			t.Fatal(err)
		}
		if r := ts.api(p, "POST", "/v1/partners", `{"key":"p1"}`); r.Status < 500 {
			t.Fatalf("a write on a read-only database: %d %s", r.Status, r.Body)
		}
		r := ts.request("GET", "/healthz", "")
		if r.Status != 503 || !strings.Contains(r.Body, "read-only") {
			t.Fatalf("after a failed write: %d %s, want 503 naming read-only", r.Status, r.Body)
		}
		// The disk recovers: the next probe (at most one a second)
		// brings the instance back without any other write.
		if err := ts.store.UnbreakWritesForTest(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for r = ts.request("GET", "/healthz", ""); r.Status != 200; r = ts.request("GET", "/healthz", "") {
			if time.Now().After(deadline) {
				t.Fatalf("still %d %s after writes work again", r.Status, r.Body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("the probe", func(t *testing.T) {
		ts := newTestServer(t)
		ts.store.SetHealthFreshForTest(0)
		if r := ts.request("GET", "/healthz", ""); r.Status != 200 {
			t.Fatalf("healthy server: %d %s", r.Status, r.Body)
		}
		if err := ts.store.BreakWritesForTest(); err != nil {
			t.Fatal(err)
		}
		r := ts.request("GET", "/healthz", "")
		if r.Status != 503 || !strings.Contains(r.Body, "writes are failing") {
			t.Fatalf("with no write yet: %d %s, want 503 from the probe", r.Status, r.Body)
		}
	})
}
