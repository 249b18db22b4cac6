package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Paddle Billing notifications, from the recorded shapes in
// testdata/paddle, edited per scenario and signed as Paddle signs them.

const (
	paddleTestSecret = "pdl_ntfset_01hv8x0000test_5bd1c6bb0d5d4bb8a6d2"
	paddleTxn        = "txn_01hv8wptq8987qeep44cyrewp9"
	paddleCustomer   = "ctm_01hv8wt8nffez4p2t6typn4a5j"
)

// paddleFixture is the stripe fixture's program (20 %, alice and bob,
// cus_A alice's), with a Paddle secret and Paddle customer ctm_A of alice.
type paddleFixture struct{ *stripeFixture }

func newPaddleFixture(t *testing.T) *paddleFixture {
	t.Helper()
	f := &paddleFixture{newStripeFixture(t)}
	if r := f.ts.admin("PATCH", "/admin/api/programs/"+f.shop.ID, `{"paddle_webhook_secret":"`+paddleTestSecret+`"}`); r.Status != 200 {
		t.Fatalf("set the Paddle secret: %d %s", r.Status, r.Body)
	}
	if r := f.ts.api(f.shop, "POST", "/v1/customers", `{"key":"ctm_A","partner":{"key":"alice"}}`); r.Status != 201 {
		t.Fatalf("customer: %d %s", r.Status, r.Body)
	}
	return f
}

// paddleEvent is a recorded notification with edits: each pair is a
// dotted path under data ("details.totals.grand_total") and its new value
// (paddleDelete removes the field), or "event_type" for the envelope's.
func paddleEvent(t *testing.T, name string, edits ...any) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "paddle", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(edits); i += 2 {
		path, v := edits[i].(string), edits[i+1]
		if path == "event_type" || path == "event_id" {
			env[path] = v
			continue
		}
		parts := strings.Split(path, ".")
		m := env["data"].(map[string]any)
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		if v == paddleDelete {
			delete(m, parts[len(parts)-1])
		} else {
			m[parts[len(parts)-1]] = v
		}
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var paddleDelete = &struct{}{}

// paddleSignature is a Paddle-Signature header for body at time at.
func paddleSignature(secret string, at time.Time, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d:%s", at.Unix(), body)
	return fmt.Sprintf("ts=%d;h1=%s", at.Unix(), hex.EncodeToString(mac.Sum(nil)))
}

func (f *paddleFixture) deliver(t *testing.T, st stripeStep) *response {
	t.Helper()
	secret := st.secret
	if secret == "" {
		secret = paddleTestSecret
	}
	at := st.signAt
	if at.IsZero() {
		at = time.Now().Add(-st.signAgo)
	}
	header := paddleSignature(secret, at, st.event)
	if st.header != nil {
		header = *st.header
	}
	payload := st.event
	if st.tamper != nil {
		payload = st.tamper(payload)
	}
	program := st.program
	if program == "" {
		program = f.shop.ID
	}
	return f.ts.request("POST", "/webhooks/paddle/"+program, payload,
		"Content-Type", "application/json", "Paddle-Signature", header)
}

func TestPaddleWebhook(t *testing.T) {
	sale := paddleEvent(t, "transaction_completed")
	saleStored := map[string]int{qTransactions: 1, qRewards: 1,
		qSale(paddleTxn, 11800, "ok", 0):                                                        1,
		qReward(paddleTxn, "bob", 2360, 0, "ok"):                                                1,
		qCustomer(paddleCustomer, "bob", "metadata"):                                            1,
		qSaleBy(paddleTxn, "metadata", ""):                                                      1,
		`SELECT count(*) FROM transactions WHERE product_id = 'pro_01gsz4t5hdjse780zja8vvr7jg'`: 1,
	}
	// Without custom_data, for a customer potrack does not know.
	plainSale := paddleEvent(t, "transaction_completed", "custom_data", nil)
	customer := paddleEvent(t, "customer_created")
	pendingRefund := paddleEvent(t, "adjustment_created")
	refund := func(id, total string, kv ...any) string {
		return paddleEvent(t, "adjustment_created", append([]any{"event_type", "adjustment.updated", "status", "approved",
			"id", id, "totals.total", total}, kv...)...)
	}
	nothing := map[string]int{qTransactions: 0, qRewards: 0, qPending: 0, qCustomers: 3, `SELECT count(*) FROM pending_sales`: 0}
	blank, garbage := "", "ts=1;h1=zz"

	tests := []struct {
		name  string
		steps []stripeStep
	}{
		{"a completed transaction with custom_data.partnero_partner is the partner's sale", []stripeStep{
			{event: sale, answer: "created", rows: saleStored},
		}},
		{"a replayed notification stores nothing new", []stripeStep{
			{event: sale, answer: "created"},
			{event: sale, answer: "duplicate", rows: saleStored},
			{event: paddleEvent(t, "transaction_completed", "event_id", "evt_other"), answer: "duplicate", rows: saleStored},
		}},
		{"the same transaction with another amount is acknowledged, not applied", []stripeStep{
			{event: sale, answer: "created"},
			{event: paddleEvent(t, "transaction_completed", "details.totals.grand_total", "99900"), answer: "conflict", rows: saleStored},
		}},
		{"a sale before the customer event that attributes it is recorded when it arrives", []stripeStep{
			{event: plainSale, answer: "ignored", rows: map[string]int{qTransactions: 0,
				`SELECT count(*) FROM pending_sales WHERE key = '` + paddleTxn + `'`: 1}},
			{event: customer, answer: "created", rows: map[string]int{qSale(paddleTxn, 11800, "ok", 0): 1,
				qReward(paddleTxn, "bob", 2360, 0, "ok"): 1, `SELECT count(*) FROM pending_sales`: 0,
				qCustomer(paddleCustomer, "bob", "metadata"): 1,
				`SELECT count(*) FROM customers WHERE key = '` + paddleCustomer + `' AND email = 'casey@example.com' AND name = 'Casey Jones'`: 1}},
			{event: plainSale, answer: "duplicate", rows: map[string]int{qTransactions: 1}},
			{event: customer, answer: "duplicate"},
		}},
		{"a customer known to potrack keeps its partner", []stripeStep{
			{event: paddleEvent(t, "transaction_completed", "customer_id", "ctm_A"), answer: "created", rows: map[string]int{
				qReward(paddleTxn, "alice", 2360, 0, "ok"): 1}},
			{event: paddleEvent(t, "customer_created", "id", "ctm_A"), answer: "duplicate"},
		}},
		{"custom_data naming no partner of the program keeps the sale for its customer", []stripeStep{
			{event: paddleEvent(t, "transaction_completed", "custom_data", map[string]any{"partnero_partner": "nobody"}), answer: "ignored",
				rows: map[string]int{qTransactions: 0, `SELECT count(*) FROM pending_sales`: 1}},
		}},
		{"a refund waiting for approval changes nothing; approved, it refunds part, once", []stripeStep{
			{event: sale, answer: "created"},
			{event: pendingRefund, answer: "ignored", rows: map[string]int{qSale(paddleTxn, 11800, "ok", 0): 1}},
			{event: refund("adj_01hv91kz5wxprvt5yqs4kqcm6t", "5900"), answer: "refunded", rows: map[string]int{
				qSale(paddleTxn, 11800, "ok", 5900): 1, qReward(paddleTxn, "bob", 2360, 1180, "ok"): 1}},
			{event: refund("adj_01hv91kz5wxprvt5yqs4kqcm6t", "5900"), answer: "duplicate", rows: map[string]int{
				qSale(paddleTxn, 11800, "ok", 5900): 1}},
			// A second refund adds to the first.
			{event: refund("adj_second", "2950"), answer: "refunded", rows: map[string]int{
				qSale(paddleTxn, 11800, "ok", 8850): 1, qReward(paddleTxn, "bob", 2360, 1770, "ok"): 1}},
			{event: refund("adj_third", "2950", "type", "full"), answer: "refunded", rows: map[string]int{
				qSale(paddleTxn, 11800, "refunded", 11800): 1, qReward(paddleTxn, "bob", 2360, 2360, "reversed"): 1}},
		}},
		{"a full refund reverses everything", []stripeStep{
			{event: sale, answer: "created"},
			{event: refund("adj_full", "11800", "type", "full"), answer: "refunded", rows: map[string]int{
				qSale(paddleTxn, 11800, "refunded", 11800): 1, qReward(paddleTxn, "bob", 2360, 2360, "reversed"): 1}},
		}},
		{"refunds before their sale are kept, added up, and applied when it arrives", []stripeStep{
			{event: refund("adj_1", "5900"), answer: "pending", rows: map[string]int{qTransactions: 0,
				`SELECT count(*) FROM pending_refunds WHERE key = '` + paddleTxn + `' AND refunded_minor = 5900`: 1}},
			{event: refund("adj_1", "5900"), answer: "duplicate", rows: map[string]int{
				`SELECT count(*) FROM pending_refunds WHERE key = '` + paddleTxn + `' AND refunded_minor = 5900`: 1}},
			{event: refund("adj_2", "1000"), answer: "pending", rows: map[string]int{
				`SELECT count(*) FROM pending_refunds WHERE key = '` + paddleTxn + `' AND refunded_minor = 6900`: 1}},
			{event: sale, answer: "created", rows: map[string]int{qPending: 0, qSale(paddleTxn, 11800, "ok", 6900): 1,
				qReward(paddleTxn, "bob", 2360, 1380, "ok"): 1}},
		}},
		{"a refund before a kept sale applies when the customer is attributed", []stripeStep{
			{event: plainSale, answer: "ignored"},
			{event: refund("adj_1", "11800", "type", "full"), answer: "pending"},
			{event: customer, answer: "created", rows: map[string]int{qSale(paddleTxn, 11800, "refunded", 11800): 1,
				qReward(paddleTxn, "bob", 2360, 2360, "reversed"): 1, qPending: 0}},
		}},
		{"rejected refunds, credits and chargebacks change nothing", []stripeStep{
			{event: sale, answer: "created"},
			{event: refund("adj_r", "5900", "status", "rejected"), answer: "ignored"},
			{event: refund("adj_c", "5900", "action", "credit"), answer: "ignored"},
			{event: refund("adj_k", "5900", "action", "chargeback"), answer: "ignored", rows: map[string]int{
				qSale(paddleTxn, 11800, "ok", 0): 1, qPending: 0}},
		}},
		{"amounts are the currency's minor units", []stripeStep{
			{event: paddleEvent(t, "transaction_completed", "id", "txn_jpy", "currency_code", "JPY", "details.totals.grand_total", "1500"),
				answer: "created", rows: map[string]int{`SELECT count(*) FROM transactions WHERE key = 'txn_jpy' AND amount_minor = 1500 AND currency = 'JPY'`: 1,
					`SELECT count(*) FROM rewards WHERE amount_minor = 300 AND currency = 'JPY'`: 1}},
			{event: paddleEvent(t, "transaction_completed", "id", "txn_kwd", "currency_code", "KWD", "details.totals.grand_total", "12345"),
				answer: "created", rows: map[string]int{`SELECT count(*) FROM transactions WHERE key = 'txn_kwd' AND amount_minor = 12345 AND currency = 'KWD'`: 1}},
			// grand_total, after credits, is what was paid.
			{event: paddleEvent(t, "transaction_completed", "id", "txn_credit", "details.totals.credit", "1800", "details.totals.grand_total", "10000"),
				answer: "created", rows: map[string]int{qSale("txn_credit", 10000, "ok", 0): 1}},
			{event: paddleEvent(t, "transaction_completed", "id", "txn_free", "details.totals.grand_total", "0"), answer: "ignored",
				rows: map[string]int{`SELECT count(*) FROM transactions WHERE key = 'txn_free'`: 0}},
		}},
		{"wrongly signed, tampered and stale notifications are refused and store nothing", []stripeStep{
			{event: sale, secret: "pdl_ntfset_not_the_programs", status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, tamper: func(p string) string { return strings.Replace(p, `"grand_total":"11800"`, `"grand_total":"99900"`, 1) },
				status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, tamper: func(p string) string {
				return strings.Replace(p, `"partnero_partner":"bob"`, `"partnero_partner":"alice"`, 1)
			},
				status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, signAgo: 10 * time.Second, status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, signAgo: -10 * time.Second, status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, header: &blank, status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, header: &garbage, status: 400, answer: "bad_signature", rows: nothing},
			{event: sale, program: "nosuchprogram", status: 404, answer: "program_not_found", rows: nothing},
			{event: sale, signAgo: 2 * time.Second, answer: "created", rows: saleStored},
		}},
		{"another program's Stripe secret does not sign Paddle notifications", []stripeStep{
			{event: sale, secret: "stripe", status: 400, answer: "bad_signature", rows: nothing},
		}},
		{"malformed signed notifications are 4xx and store nothing", []stripeStep{
			{event: `{"event_type":"transaction.completed","data":`, status: 400, answer: "bad_request", rows: nothing},
			{event: `{"event_type":"transaction.completed"}`, status: 400, answer: "bad_request", rows: nothing},
			{event: paddleEvent(t, "transaction_completed", "details.totals.grand_total", "118.00"), status: 422, answer: "invalid_field", rows: nothing},
			{event: paddleEvent(t, "transaction_completed", "details.totals.grand_total", 11800), status: 400, answer: "bad_request", rows: nothing},
			{event: paddleEvent(t, "transaction_completed", "currency_code", "XX1"), status: 422, answer: "invalid_field", rows: nothing},
			{event: paddleEvent(t, "transaction_completed", "id", ""), status: 422, answer: "invalid_field", rows: nothing},
			{event: paddleEvent(t, "adjustment_created", "transaction_id", paddleDelete), status: 422, answer: "invalid_field", rows: nothing},
		}},
		{"other notifications are acknowledged and ignored", []stripeStep{
			{event: paddleEvent(t, "transaction_completed", "event_type", "transaction.paid"), answer: "ignored", rows: nothing},
			{event: paddleEvent(t, "customer_created", "custom_data", nil), answer: "ignored", rows: nothing},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newPaddleFixture(t)
			for i, st := range tc.steps {
				if st.secret == "stripe" {
					st.secret = f.shop.WebhookSecret
				}
				r := f.deliver(t, st)
				want := st.status
				if want == 0 {
					want = 200
				}
				if r.Status != want {
					t.Fatalf("step %d: status %d, want %d: %s", i, r.Status, want, r.Body)
				}
				body := r.JSON(t)
				got, _ := body["status"].(string)
				if e, ok := body["error"].(map[string]any); ok {
					got, _ = e["code"].(string)
				}
				if got != st.answer {
					t.Fatalf("step %d: answer %q, want %q: %s", i, got, st.answer, r.Body)
				}
				f.assertRows(t, i, st.rows)
			}
		})
	}
}

// TestPaddleCoupons: a Paddle transaction's discount that is one of the
// program's codes attributes its new customer (attributed_by "code"),
// before custom_data's partner; webhooks carry the discount's id (dsc_…),
// which the merchant registers as the partner's code.
func TestPaddleCoupons(t *testing.T) {
	f := newPaddleFixture(t)
	if r := f.ts.api(f.shop, "POST", "/v1/coupons", `{"code":"dsc_01hv8alice","partner":{"key":"alice"}}`); r.Status != 201 {
		t.Fatalf("coupon: %d %s", r.Status, r.Body)
	}
	steps := []stripeStep{
		{event: paddleEvent(t, "transaction_completed", "discount_id", "DSC_01HV8ALICE"), answer: "created", rows: map[string]int{
			qCustomer(paddleCustomer, "alice", "code"): 1, qSaleBy(paddleTxn, "code", "DSC_01HV8ALICE"): 1,
			qReward(paddleTxn, "alice", 2360, 0, "ok"): 1}},
		// An existing customer keeps its partner; the sale keeps its code.
		{event: paddleEvent(t, "transaction_completed", "id", "txn_2", "customer_id", "ctm_A", "discount_id", "dsc_unknown"),
			answer: "created", rows: map[string]int{qReward("txn_2", "alice", 2360, 0, "ok"): 1,
				`SELECT count(*) FROM transactions WHERE key = 'txn_2' AND discount_code = 'dsc_unknown'`: 1}},
	}
	for i, st := range steps {
		r := f.deliver(t, st)
		if r.Status != 200 || !strings.Contains(r.Body, `"status":"`+st.answer+`"`) {
			t.Fatalf("step %d: %d %s, want %s", i, r.Status, r.Body, st.answer)
		}
		f.assertRows(t, i, st.rows)
	}
}

// TestPaddleSignatureCheck: the header's parts, several h1, and the
// 5-second tolerance either way.
func TestPaddleSignatureCheck(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := `{"event_type":"transaction.completed"}`
	good := paddleSignature("s3cret", now, body)
	_, h1, _ := strings.Cut(good, ";")
	other := paddleSignature("other", now, body)
	_, otherH1, _ := strings.Cut(other, ";")
	ts := fmt.Sprintf("ts=%d", now.Unix())
	for _, tc := range []struct {
		header string
		at     time.Time
		ok     bool
	}{
		{good, now, true},
		{good, now.Add(5 * time.Second), true},
		{good, now.Add(-5 * time.Second), true},
		{good, now.Add(6 * time.Second), false},
		{good, now.Add(-6 * time.Second), false},
		{h1 + ";" + ts, now, true},
		{ts + ";" + otherH1 + ";" + h1, now, true}, // one of several
		{ts + ";" + otherH1, now, false},
		{ts, now, false},
		{h1, now, false},
		{"ts=abc;" + h1, now, false},
		{ts + ";h1=" + strings.ToUpper(strings.TrimPrefix(h1, "h1=")), now, false},
		{"", now, false},
		{"garbage", now, false},
	} {
		if got := verifyPaddleSignature([]byte(body), tc.header, "s3cret", tc.at); got != tc.ok {
			t.Errorf("%q at %+ds: %v, want %v", tc.header, tc.at.Unix()-now.Unix(), got, tc.ok)
		}
	}
	if verifyPaddleSignature([]byte(body+" "), good, "s3cret", now) {
		t.Error("a changed body verifies")
	}
}

// TestPaddleSecretFromPaddle: the merchant pastes the destination's
// secret key; until then every notification is refused, and no read of
// the program shows it.
func TestPaddleSecretFromPaddle(t *testing.T) {
	f := newStripeFixture(t)
	sale := paddleEvent(t, "transaction_completed")
	pf := &paddleFixture{f}
	if r := pf.deliver(t, stripeStep{event: sale}); r.Status != 400 || !strings.Contains(r.Body, "bad_signature") {
		t.Fatalf("without a Paddle secret: %d %s", r.Status, r.Body)
	}
	r := f.ts.admin("PATCH", "/admin/api/programs/"+f.shop.ID, `{"paddle_webhook_secret":"`+paddleTestSecret+`"}`)
	if r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	for _, read := range []*response{r, f.ts.admin("GET", "/admin/api/programs/"+f.shop.ID, ""), f.ts.admin("GET", "/admin/api/programs", "")} {
		if strings.Contains(read.Body, paddleTestSecret) || strings.Contains(read.Body, `"paddle_webhook_secret"`) {
			t.Errorf("a program read shows the Paddle secret: %s", read.Body)
		}
		if !strings.Contains(read.Body, `"paddle_webhook_url":"`) || !strings.Contains(read.Body, `/webhooks/paddle/`+f.shop.ID+`"`) {
			t.Errorf("a program read lacks the Paddle webhook URL: %s", read.Body)
		}
	}
	if r := pf.deliver(t, stripeStep{event: sale}); r.Status != 200 || !strings.Contains(r.Body, `"created"`) {
		t.Fatalf("with the Paddle secret: %d %s", r.Status, r.Body)
	}
	if r := f.ts.admin("PATCH", "/admin/api/programs/"+f.shop.ID, `{"paddle_webhook_secret":""}`); r.Status != 422 {
		t.Errorf("an empty Paddle secret: %d %s, want 422", r.Status, r.Body)
	}
}
