package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/store"
)

const testAdminToken = "test-admin-token"

// testServer is a server on a fresh database in t.TempDir().
type testServer struct {
	*Server
	t     testing.TB
	store *store.Store
	dir   string
}

func newTestServer(t testing.TB, mutate ...func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{DB: testenv.Database(t, dir), AdminToken: testAdminToken}
	for _, m := range mutate {
		m(&cfg)
	}
	st, err := store.Open(cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: srv, t: t, store: st, dir: dir}
}

// response is what a test request got back.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// JSON decodes the body into a generic map (numbers kept exact).
func (r *response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// expectBody checks that the body holds every want and no notWant.
func (r *response) expectBody(t testing.TB, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.Body, w) {
			t.Errorf("body lacks %q: %s", w, r.Body)
		}
	}
	for _, w := range notWant {
		if strings.Contains(r.Body, w) {
			t.Errorf("body has %q: %s", w, r.Body)
		}
	}
}

// request sends one request through app.Test. headers are name, value pairs.
func (ts *testServer) request(method, path, body string, headers ...string) *response {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.app.Test(req, -1)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// admin sends a request with the admin token.
func (ts *testServer) admin(method, path, body string) *response {
	ts.t.Helper()
	return ts.request(method, path, body, "Authorization", "Bearer "+testAdminToken, "Content-Type", "application/json")
}

// testProgram is a program created through the admin API, with its secrets.
type testProgram struct {
	ID, APIKey, SigningSecret, WebhookSecret string
}

// createProgram creates a program from a JSON body (merged onto a name).
func (ts *testServer) createProgram(body string) testProgram {
	ts.t.Helper()
	if body == "" {
		body = `{"name":"Test shop"}`
	}
	r := ts.admin("POST", "/admin/api/programs", body)
	if r.Status != 201 {
		ts.t.Fatalf("create program: %d %s", r.Status, r.Body)
	}
	d := r.JSON(ts.t)["data"].(map[string]any)
	return testProgram{ID: d["id"].(string), APIKey: d["api_key"].(string),
		SigningSecret: d["signing_secret"].(string), WebhookSecret: d["webhook_secret"].(string)}
}

// api sends a /v1 request with a program's API key.
func (ts *testServer) api(p testProgram, method, path, body string) *response {
	ts.t.Helper()
	return ts.request(method, path, body, "Authorization", "Bearer "+p.APIKey, "Content-Type", "application/json")
}

// count runs a counting query straight on the database file, so tests
// assert on stored rows rather than on the API's own answers.
func (ts *testServer) count(query string, args ...any) int {
	ts.t.Helper()
	n, err := ts.store.CountForTest(context.Background(), query, args...)
	if err != nil {
		ts.t.Fatalf("count %q: %v", query, err)
	}
	return n
}
