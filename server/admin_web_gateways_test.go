package server

import (
	"net/url"
	"strings"
	"testing"
)

// TestAdminWebGatewaySecrets: the setup page shows both webhook URLs and
// takes the secret each gateway shows (Stripe's whsec_…, Paddle's secret
// key), which is stored and never shown again.
func TestAdminWebGatewaySecrets(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	p := ts.createProgram("")
	page := w.get("/admin/programs/" + p.ID)
	page.expectBody(t, []string{
		`<code id="webhook-url">http://example.com/webhooks/stripe/` + p.ID + `</code>`,
		`<code id="paddle-webhook-url">http://example.com/webhooks/paddle/` + p.ID + `</code>`,
		`action="/admin/programs/` + p.ID + `/settings/stripe-secret"`,
		`action="/admin/programs/` + p.ID + `/settings/paddle-secret"`,
		`checkout.session.completed`, `adjustment.updated`,
	}, nil)

	for _, tc := range []struct {
		section, secret, column, saved string
	}{
		{"stripe-secret", "whsec_pasted_from_stripe_123", "webhook_secret", "stripe"},
		{"paddle-secret", "pdl_ntfset_01hv_pasted_from_paddle", "paddle_webhook_secret", "paddle"},
	} {
		r := w.post("/admin/programs/"+p.ID+"/settings/"+tc.section, url.Values{"secret": {"  " + tc.secret + " "}})
		if r.Status != 303 || r.Header.Get("Location") != "/admin/programs/"+p.ID+"?saved="+tc.saved+"#"+tc.saved {
			t.Fatalf("%s: %d %q %s", tc.section, r.Status, r.Header.Get("Location"), r.Body)
		}
		if n := ts.count(`SELECT count(*) FROM programs WHERE id = ? AND `+tc.column+` = ?`, p.ID, tc.secret); n != 1 {
			t.Errorf("%s: the secret is not stored", tc.section)
		}
		after := w.get("/admin/programs/" + p.ID + "?saved=" + tc.saved)
		after.expectBody(t, []string{savedMessages[tc.saved]}, []string{tc.secret})

		r = w.post("/admin/programs/"+p.ID+"/settings/"+tc.section, url.Values{"secret": {" "}})
		if r.Status != 422 || !strings.Contains(r.Body, `class="field-error" role="alert" id="`+tc.section+`-error"`) {
			t.Errorf("%s, empty: %d, want 422 with the error next to the field:\n%s", tc.section, r.Status, r.Body)
		}
		if n := ts.count(`SELECT count(*) FROM programs WHERE id = ? AND `+tc.column+` = ?`, p.ID, tc.secret); n != 1 {
			t.Errorf("%s: an empty form changed the secret", tc.section)
		}
	}
	// The pasted Stripe secret is the one that verifies.
	f := &stripeFixture{ts: ts, shop: p}
	if r := f.ts.api(p, "POST", "/v1/partners", `{"key":"bob"}`); r.Status != 201 {
		t.Fatalf("partner: %d %s", r.Status, r.Body)
	}
	sale := stripeTestEvent("customer.created", "", stripeTestCustomer("cus_W", map[string]string{"partnero_partner": "bob"}))
	if r := f.deliver(t, stripeStep{event: sale, secret: "whsec_pasted_from_stripe_123"}); r.Status != 200 {
		t.Errorf("an event signed with the pasted secret: %d %s", r.Status, r.Body)
	}
}
