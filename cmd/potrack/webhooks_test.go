package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/webhooks"
)

// A child server started with this variable retries webhooks a second
// apart and takes back a dead worker's lease after 3 s (instead of 30),
// so a test of a crash mid-delivery takes seconds.
const fastWebhooksVar = "POTRACK_TEST_WEBHOOKS_FAST"

func init() {
	if os.Getenv(fastWebhooksVar) == "1" {
		webhooks.Defaults = webhooks.Options{Timeout: time.Second, Lease: 3 * time.Second, Poll: 100 * time.Millisecond,
			Backoff: []time.Duration{time.Second}}
	}
}

// killReceiver accepts deliveries slowly (so some are in flight when the
// server dies), checks each signature with the Standard Webhooks library,
// and keeps, per partner key, the webhook-ids it was sent under.
type killReceiver struct {
	mu       sync.Mutex
	secret   string
	ids      map[string]map[string]int // partner key -> webhook-id -> requests
	total    int
	inflight int
	bad      []string
}

func (k *killReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	k.mu.Lock()
	secret := k.secret
	k.total++
	k.inflight++
	k.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err == nil {
		err = wh.Verify(body, r.Header)
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			Key string `json:"key"`
		} `json:"data"`
	}
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	time.Sleep(150 * time.Millisecond)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.inflight--
	if err != nil || ev.Type != "partner.created" {
		k.bad = append(k.bad, fmt.Sprintf("%v %s", err, body))
		http.Error(w, "bad", 400)
		return
	}
	if k.ids[ev.Data.Key] == nil {
		k.ids[ev.Data.Key] = map[string]int{}
	}
	k.ids[ev.Data.Key][r.Header.Get("webhook-id")]++
	w.WriteHeader(http.StatusNoContent)
}

func (k *killReceiver) requests() (total, inflight int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.total, k.inflight
}

// TestKill9LosesNoWebhook (SQLite and PostgreSQL): partners are created
// through the real binary while a slow receiver takes their
// partner.created events; potrack is killed with SIGKILL mid-delivery and
// started again on the same database. Every partner whose creation was
// acknowledged is delivered (at least once), each under one webhook-id
// however often it was sent, and no event is lost. About 8 s an engine.
func TestKill9LosesNoWebhook(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "p.db")
			if engine == "postgres" {
				db = testenv.Postgres(t)
			}
			rcv := &killReceiver{ids: map[string]map[string]int{}}
			hooks := httptest.NewServer(rcv)
			defer hooks.Close()

			c := startServer(t, db, fastWebhooksVar+"=1")
			st, m := c.do(t, "POST", "/admin/api/programs", "durability-test-token", `{"name":"Hooks"}`)
			if st != 201 {
				t.Fatalf("create program: %d %v", st, m)
			}
			prog := m["data"].(map[string]any)
			id, apiKey := prog["id"].(string), prog["api_key"].(string)
			st, m = c.do(t, "POST", "/admin/api/programs/"+id+"/webhooks", "durability-test-token",
				`{"url":"`+hooks.URL+`/in","events":["partner.created"]}`)
			if st != 201 {
				t.Fatalf("create endpoint: %d %v", st, m)
			}
			rcv.mu.Lock()
			rcv.secret = m["data"].(map[string]any)["secret"].(string)
			rcv.mu.Unlock()

			var acked []string
			for i := range 40 {
				key := fmt.Sprint("p", i)
				if st, m := c.do(t, "POST", "/v1/partners", apiKey, `{"key":"`+key+`"}`); st != 201 {
					t.Fatalf("create partner: %d %v", st, m)
				}
				acked = append(acked, key)
			}
			// Kill it while deliveries are in flight: the receiver holds
			// them, so potrack has not heard their answer.
			deadline := time.Now().Add(20 * time.Second)
			for {
				total, inflight := rcv.requests()
				if total >= 6 && inflight > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("only %d deliveries before the kill\n%s", total, c.out)
				}
				time.Sleep(time.Millisecond)
			}
			if err := c.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			c.cmd.Wait()
			before, cut := rcv.requests()
			c = startServer(t, db, fastWebhooksVar+"=1")

			// potrack itself says every event is delivered: those cut
			// off by the kill were sent again once their lease ran out.
			endpoint := itoa(m["data"].(map[string]any)["id"])
			deadline = time.Now().Add(40 * time.Second)
			for {
				st, m := c.do(t, "GET", "/admin/api/programs/"+id+"/webhooks/"+endpoint+"/deliveries?status=delivered&limit=200", "durability-test-token", "")
				if st != 200 {
					t.Fatalf("deliveries: %d %v", st, m)
				}
				if n := len(m["data"].([]any)); n == len(acked) {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("%d of %d events delivered after the restart", n, len(acked))
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.bad) > 0 {
				t.Fatalf("bad deliveries: %v", rcv.bad)
			}
			seen, again := map[string]bool{}, 0
			for _, key := range acked {
				ids := rcv.ids[key]
				if len(ids) != 1 {
					t.Errorf("partner %s delivered under %d webhook-ids %v, want one", key, len(ids), ids)
				}
				for id, n := range ids {
					if seen[id] || !strings.HasPrefix(id, "msg_") {
						t.Errorf("webhook-id %q of %s: reused or malformed", id, key)
					}
					seen[id] = true
					again += n - 1
				}
			}
			if again < cut {
				t.Errorf("%d deliveries were cut off by the kill but only %d sent again", cut, again)
			}
			t.Logf("%d requests before the kill (%d cut off by it), %d in all; %d sent again after it, under the same id", before, cut, rcv.total, again)
		})
	}
}

// itoa prints a JSON number (an id) as decimal digits.
func itoa(v any) string { return fmt.Sprint(int64(v.(float64))) }
