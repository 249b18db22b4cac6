package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/webhooks"
)

// TestAdminWebhooksAPI: endpoints over the admin API: created with a
// Standard Webhooks secret shown once, validated (https, or http for
// loopback; known events; no unknown fields), listed without secrets,
// changed, rotated (a new secret, shown once), their deliveries listed
// and resent, deleted; another program's endpoint is not found.
func TestAdminWebhooksAPI(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	other := ts.createProgram(`{"name":"Other"}`)
	base := "/admin/api/programs/" + p.ID + "/webhooks"

	for _, c := range []struct{ body, field string }{
		{`{"url":"http://example.com/hook"}`, "url"},
		{`{"url":"ftp://example.com/hook"}`, "url"},
		{`{"url":"/relative"}`, "url"},
		{`{"url":"https://example.com/#frag"}`, "url"},
		{`{}`, "url"},
		{`{"url":"https://example.com/hook","events":[]}`, "events"},
		{`{"url":"https://example.com/hook","events":["transaction.created","sale.made"]}`, "events[1]"},
	} {
		r := ts.admin("POST", base, c.body)
		if r.Status != 422 || !strings.Contains(r.Body, `"field":"`+c.field+`"`) {
			t.Errorf("POST %s: %d %s, want 422 on %s", c.body, r.Status, r.Body, c.field)
		}
	}
	if r := ts.admin("POST", base, `{"url":"https://example.com/hook","secret":"mine"}`); r.Status != 400 {
		t.Errorf("unknown field: %d %s, want 400", r.Status, r.Body)
	}
	for _, u := range []string{"http://localhost:9000/hook", "http://127.0.0.1/hook", "http://[::1]:8080/x"} {
		if r := ts.admin("POST", base, `{"url":"`+u+`","events":["partner.created"]}`); r.Status != 201 {
			t.Errorf("POST %s: %d %s, want 201 (loopback over http)", u, r.Status, r.Body)
		}
	}

	r := ts.admin("POST", base, `{"url":"https://Hooks.Example/potrack","events":["transaction.refunded","transaction.created","transaction.created"]}`)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var created struct {
		Data endpointView `json:"data"`
	}
	json.Unmarshal([]byte(r.Body), &created)
	e := created.Data
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(e.Secret, "whsec_"))
	if !strings.HasPrefix(e.Secret, "whsec_") || err != nil || len(key) < 24 {
		t.Fatalf("secret %q: want whsec_ and the base64 of 24 or more bytes", e.Secret)
	}
	if e.URL != "https://hooks.example/potrack" || strings.Join(e.Events, ",") != "transaction.created,transaction.refunded" ||
		!e.Enabled || e.Status != "healthy" || e.FailingSince != nil {
		t.Fatalf("created %+v", e)
	}
	id := base + "/" + itoa(e.ID)
	if r := ts.admin("GET", base, ""); r.Status != 200 || strings.Contains(r.Body, "whsec_") || !strings.Contains(r.Body, "hooks.example") {
		t.Fatalf("list: %d %s: want the endpoints without secrets", r.Status, r.Body)
	}
	if r := ts.admin("GET", id, ""); r.Status != 200 || strings.Contains(r.Body, "whsec_") {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	if r := ts.admin("PATCH", id, `{"enabled":false,"events":["customer.created"]}`); r.Status != 200 ||
		!strings.Contains(r.Body, `"enabled":false`) || !strings.Contains(r.Body, `"events":["customer.created"]`) {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	if r := ts.admin("PATCH", id, `{"url":"http://example.com/"}`); r.Status != 422 {
		t.Fatalf("patch to plain http: %d %s, want 422", r.Status, r.Body)
	}
	r = ts.admin("POST", id+"/rotate", "")
	if r.Status != 200 || !strings.Contains(r.Body, `"secret":"whsec_`) || strings.Contains(r.Body, e.Secret) {
		t.Fatalf("rotate: %d %s: want a new secret", r.Status, r.Body)
	}
	if n := ts.count(`SELECT count(*) FROM webhook_endpoints WHERE id = ? AND old_secret = ? AND old_secret_until > 0`, e.ID, e.Secret); n != 1 {
		t.Fatal("the rotated-out secret is not kept for the grace period")
	}

	// A delivery to list and resend: switch the endpoint on for partners.
	ts.admin("PATCH", id, `{"enabled":true,"events":["partner.created"]}`)
	if r := ts.api(p, "POST", "/v1/partners", `{"key":"jane"}`); r.Status != 201 {
		t.Fatalf("partner: %d %s", r.Status, r.Body)
	}
	r = ts.admin("GET", id+"/deliveries", "")
	var list struct {
		Data []deliveryView `json:"data"`
	}
	json.Unmarshal([]byte(r.Body), &list)
	if r.Status != 200 || len(list.Data) != 1 || list.Data[0].EventType != "partner.created" || list.Data[0].Status != "pending" ||
		!strings.HasPrefix(list.Data[0].EventID, "msg_") || list.Data[0].NextAttemptAt == nil {
		t.Fatalf("deliveries: %d %s", r.Status, r.Body)
	}
	if r := ts.admin("GET", id+"/deliveries?status=sent", ""); r.Status != 422 {
		t.Fatalf("deliveries?status=sent: %d, want 422", r.Status)
	}
	if r := ts.admin("POST", id+"/deliveries/"+itoa(list.Data[0].ID)+"/resend", ""); r.Status != 202 || !strings.Contains(r.Body, list.Data[0].EventID) {
		t.Fatalf("resend: %d %s", r.Status, r.Body)
	}
	if r := ts.admin("POST", id+"/deliveries/999999/resend", ""); r.Status != 404 {
		t.Fatalf("resend of no delivery: %d", r.Status)
	}

	// Another program does not see it.
	if r := ts.admin("GET", "/admin/api/programs/"+other.ID+"/webhooks/"+itoa(e.ID), ""); r.Status != 404 {
		t.Fatalf("another program's endpoint: %d, want 404", r.Status)
	}
	if r := ts.admin("DELETE", "/admin/api/programs/"+other.ID+"/webhooks/"+itoa(e.ID), ""); r.Status != 404 {
		t.Fatalf("delete through another program: %d, want 404", r.Status)
	}
	if r := ts.admin("DELETE", id, ""); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := ts.admin("GET", id, ""); r.Status != 404 || !strings.Contains(r.Body, "webhook_not_found") {
		t.Fatalf("after delete: %d %s", r.Status, r.Body)
	}
	if n := ts.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = ?`, e.ID); n != 0 {
		t.Fatalf("%d deliveries of a deleted endpoint", n)
	}
	if r := ts.admin("GET", "/admin/api/programs/nope/webhooks", ""); r.Status != 404 {
		t.Fatalf("unknown program: %d", r.Status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// hookReceiver is a real receiver on 127.0.0.1 that verifies each request
// with the Standard Webhooks library and keeps the bodies by type.
type hookReceiver struct {
	mu     sync.Mutex
	secret string
	events []receivedEvent
	bad    []string
}

type receivedEvent struct {
	ID, Type string
	Data     json.RawMessage
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.secret == "" {
		http.Error(w, "not yet", 503)
		return
	}
	wh, _ := standardwebhooks.NewWebhook(h.secret)
	if err := wh.Verify(body, r.Header); err != nil {
		h.bad = append(h.bad, err.Error())
		http.Error(w, "bad signature", 400)
		return
	}
	var ev struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Timestamp.IsZero() {
		h.bad = append(h.bad, "body: "+string(body))
	}
	h.events = append(h.events, receivedEvent{r.Header.Get("webhook-id"), ev.Type, ev.Data})
	w.WriteHeader(200)
}

func (h *hookReceiver) byType() map[string][]receivedEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]receivedEvent{}
	for _, e := range h.events {
		out[e.Type] = append(out[e.Type], e)
	}
	return out
}

// sameJSON compares two JSON documents by value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// restData is the "data" of a REST answer.
func restData(t *testing.T, r *response) []byte {
	t.Helper()
	var m struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("answer %d %s", r.Status, r.Body)
	}
	return m.Data
}

// TestWebhooksDeliverTheRESTViews: a running server sends partner.created,
// customer.created, transaction.created and transaction.refunded to a
// real receiver on 127.0.0.1, signed (checked with the library's
// verifier), each event's data equal to what the REST API answers for the
// object at that moment; a replayed sale announces nothing.
func TestWebhooksDeliverTheRESTViews(t *testing.T) {
	rcv := &hookReceiver{}
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()
	ts, _ := liveServer(t, func(c *Config) {
		c.Webhooks = webhooks.Options{Poll: 50 * time.Millisecond, Backoff: []time.Duration{time.Second}}
	})
	p := ts.createProgram("")
	r := ts.admin("POST", "/admin/api/programs/"+p.ID+"/webhooks", `{"url":"`+hooks.URL+`/in"}`)
	if r.Status != 201 {
		t.Fatalf("create endpoint: %d %s", r.Status, r.Body)
	}
	var ep struct {
		Data endpointView `json:"data"`
	}
	json.Unmarshal([]byte(r.Body), &ep)
	rcv.mu.Lock()
	rcv.secret = ep.Data.Secret
	rcv.mu.Unlock()

	partner := ts.api(p, "POST", "/v1/partners", `{"key":"jane","email":"jane@example.com"}`)
	sale := `{"key":"order-1","amount":"40.00","customer":{"key":"cust-1","email":"c@example.com","partner":{"key":"jane"}},"options":{"create_customer":true}}`
	if r := ts.api(p, "POST", "/v1/transactions", sale); r.Status != 201 {
		t.Fatalf("sale: %d %s", r.Status, r.Body)
	}
	if r := ts.api(p, "POST", "/v1/transactions", sale); r.Status != 200 {
		t.Fatalf("replayed sale: %d %s", r.Status, r.Body)
	}
	customer := ts.api(p, "GET", "/v1/customers/cust-1", "")
	saleView := ts.api(p, "GET", "/v1/transactions/order-1", "")
	if r := ts.api(p, "DELETE", "/v1/transactions/order-1", ""); r.Status != 200 {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	refunded := ts.api(p, "GET", "/v1/transactions/order-1", "")

	deadline := time.Now().Add(20 * time.Second)
	for len(rcv.byType()[webhookTypeRefunded]) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := rcv.byType()
	if len(rcv.bad) > 0 {
		t.Fatalf("bad deliveries: %v", rcv.bad)
	}
	for typ, want := range map[string][]byte{
		"partner.created":      restData(t, partner),
		"customer.created":     restData(t, customer),
		"transaction.created":  restData(t, saleView),
		"transaction.refunded": restData(t, refunded),
	} {
		if len(got[typ]) != 1 {
			t.Errorf("%d %s events, want 1", len(got[typ]), typ)
			continue
		}
		if !sameJSON(t, got[typ][0].Data, want) {
			t.Errorf("%s data\n%s\nwant the REST view\n%s", typ, got[typ][0].Data, want)
		}
	}
	if m := ts.request("GET", "/metrics", ""); !strings.Contains(m.Body, `potrack_webhook_attempts_total{result="delivered"}`) {
		t.Error("no potrack_webhook_attempts_total{result=\"delivered\"} on /metrics")
	}
	ids := map[string]bool{}
	for _, evs := range got {
		for _, e := range evs {
			if ids[e.ID] {
				t.Errorf("id %s twice", e.ID)
			}
			ids[e.ID] = true
		}
	}
}

const webhookTypeRefunded = "transaction.refunded"

// TestAdminWebWebhooks: the Webhooks tab adds an endpoint and shows its
// secret once, asks before rotating and before deleting, switches an
// endpoint off, lists deliveries with their status and resends one.
func TestAdminWebWebhooks(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	w := ts.signIn()
	tab := "/admin/programs/" + p.ID + "/webhooks"
	if r := w.get(tab); r.Status != 200 || !strings.Contains(r.Body, "No endpoints yet") || !strings.Contains(r.Body, `name="event.payout.paid"`) {
		t.Fatalf("empty tab: %d", r.Status)
	}
	r := w.post(tab, url.Values{"url": {"http://example.com/x"}, "event.transaction.created": {"1"}})
	if r.Status != 422 || !strings.Contains(r.Body, "https") {
		t.Fatalf("plain http: %d, want 422 with the reason", r.Status)
	}
	if r := w.post(tab, url.Values{"url": {"https://hooks.example/x"}}); r.Status != 422 || !strings.Contains(r.Body, "Tick at least one event") {
		t.Fatalf("no event: %d", r.Status)
	}
	r = w.post(tab, url.Values{"url": {"https://hooks.example/x"}, "event.transaction.created": {"1"}, "event.partner.created": {"1"}})
	if r.Status != 201 || !strings.Contains(r.Body, "shown only once") || !strings.Contains(r.Body, "whsec_") {
		t.Fatalf("create: %d", r.Status)
	}
	list, _ := ts.store.WebhookEndpoints(context.Background(), p.ID)
	if len(list) != 1 || strings.Join(list[0].Events, ",") != "transaction.created,partner.created" {
		t.Fatalf("stored %+v", list)
	}
	id := list[0].ID
	page := w.get(tab)
	if strings.Contains(page.Body, list[0].Secret) || !strings.Contains(page.Body, "healthy") {
		t.Fatal("the secret is shown again, or no status")
	}
	// Rotate and delete ask first.
	ep := tab + "/" + itoa(id)
	if r := w.get(ep + "/rotate"); r.Status != 200 || !strings.Contains(r.Body, `id="confirm-rotate"`) {
		t.Fatalf("rotate asks: %d", r.Status)
	}
	if r := w.post(ep+"/rotate", nil); r.Status != 200 || !strings.Contains(r.Body, "whsec_") || strings.Contains(r.Body, list[0].Secret) {
		t.Fatalf("rotate: %d", r.Status)
	}
	// A delivery, shown with a resend button.
	if r := ts.api(p, "POST", "/v1/partners", `{"key":"jane"}`); r.Status != 201 {
		t.Fatal(r.Body)
	}
	page = w.get(tab + "?endpoint=" + itoa(id))
	if !strings.Contains(page.Body, "partner.created") || !strings.Contains(page.Body, "queued") || !strings.Contains(page.Body, ">Resend<") {
		t.Fatalf("deliveries: %s", page.Body)
	}
	ds, _ := ts.store.WebhookDeliveries(context.Background(), store.DeliveryFilter{ProgramID: p.ID})
	if r := w.post(tab+"/deliveries/"+itoa(ds[0].ID)+"/resend", nil); r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "saved=resent") {
		t.Fatalf("resend: %d %v", r.Status, r.Header)
	}
	if r := w.post(ep+"/enabled", url.Values{"enabled": {"false"}}); r.Status != 303 {
		t.Fatalf("switch off: %d", r.Status)
	}
	if e, _ := ts.store.WebhookEndpoint(context.Background(), p.ID, id); e.Enabled {
		t.Fatal("still enabled")
	}
	if r := w.get(ep + "/delete"); r.Status != 200 || !strings.Contains(r.Body, `id="confirm-delete"`) {
		t.Fatalf("delete asks: %d", r.Status)
	}
	if r := w.post(ep+"/delete", nil); r.Status != 303 {
		t.Fatalf("delete: %d", r.Status)
	}
	if list, _ := ts.store.WebhookEndpoints(context.Background(), p.ID); len(list) != 0 {
		t.Fatal("not deleted")
	}
	if r := w.get(ep + "/delete"); r.Status != 404 {
		t.Fatalf("a deleted endpoint's page: %d", r.Status)
	}
}

// TestWebhooksDeliverLedgerEvents: with a hold of 0 days, a payout batch
// approves the sale's reward (reward.approved: the transaction with its
// reward approved, as it was then: the batch holds it now) and marking it paid sends payout.paid (the batch as
// the admin API shows it, less each item's reward list), once however
// often it is marked with the same reference.
func TestWebhooksDeliverLedgerEvents(t *testing.T) {
	rcv := &hookReceiver{}
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()
	ts, _ := liveServer(t, func(c *Config) {
		c.Webhooks = webhooks.Options{Poll: 50 * time.Millisecond, Backoff: []time.Duration{time.Second}}
	})
	p := ts.createProgram(`{"name":"Ledger","hold_days":0}`)
	r := ts.admin("POST", "/admin/api/programs/"+p.ID+"/webhooks", `{"url":"`+hooks.URL+`/in","events":["reward.approved","payout.paid"]}`)
	if r.Status != 201 {
		t.Fatalf("create endpoint: %d %s", r.Status, r.Body)
	}
	var ep struct {
		Data endpointView `json:"data"`
	}
	json.Unmarshal([]byte(r.Body), &ep)
	rcv.mu.Lock()
	rcv.secret = ep.Data.Secret
	rcv.mu.Unlock()
	ts.api(p, "POST", "/v1/partners", `{"key":"jane"}`)
	if r := ts.api(p, "POST", "/v1/transactions", `{"key":"o1","amount":"50.00","customer":{"key":"c1","partner":{"key":"jane"}},"options":{"create_customer":true}}`); r.Status != 201 {
		t.Fatalf("sale: %d %s", r.Status, r.Body)
	}
	r = ts.admin("POST", "/admin/api/programs/"+p.ID+"/payouts", "")
	if r.Status != 201 {
		t.Fatalf("payout: %d %s", r.Status, r.Body)
	}
	var po struct {
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	json.Unmarshal([]byte(r.Body), &po)
	for range 2 {
		if r := ts.admin("POST", "/admin/api/programs/"+p.ID+"/payouts/"+itoa(po.Data.ID)+"/paid", `{"reference":"PP-1"}`); r.Status != 200 {
			t.Fatalf("mark paid: %d %s", r.Status, r.Body)
		}
	}
	paid := ts.admin("GET", "/admin/api/programs/"+p.ID+"/payouts/"+itoa(po.Data.ID), "")
	deadline := time.Now().Add(20 * time.Second)
	for len(rcv.byType()["payout.paid"]) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a second payout.paid would have come by now
	got := rcv.byType()
	if len(rcv.bad) > 0 || len(got["reward.approved"]) != 1 || len(got["payout.paid"]) != 1 {
		t.Fatalf("events %v, bad %v: want one reward.approved and one payout.paid", got, rcv.bad)
	}
	var ev struct {
		Key     string `json:"key"`
		Rewards []struct {
			State string `json:"state"`
		} `json:"rewards"`
	}
	json.Unmarshal(got["reward.approved"][0].Data, &ev)
	if ev.Key != "o1" || len(ev.Rewards) != 1 || ev.Rewards[0].State != "approved" {
		t.Errorf("reward.approved data %s: want o1 with its reward approved", got["reward.approved"][0].Data)
	}
	// The admin API's batch, less each item's list of rewards.
	var want map[string]any
	json.Unmarshal(restData(t, paid), &want)
	for _, it := range want["items"].([]any) {
		delete(it.(map[string]any), "rewards")
	}
	wantJSON, _ := json.Marshal(want)
	if !sameJSON(t, got["payout.paid"][0].Data, wantJSON) {
		t.Errorf("payout.paid data\n%s\nwant\n%s", got["payout.paid"][0].Data, wantJSON)
	}
}
