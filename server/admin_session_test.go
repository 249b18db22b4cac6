package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Admin sessions are rows keyed by the SHA-256 of a random cookie token:
// these tests read and change the database file directly, the way someone
// holding a copy of it could.

// exec changes the database behind the server's back.
func (ts *testServer) exec(query string, args ...any) {
	ts.t.Helper()
	if err := ts.store.ExecForTest(context.Background(), query, args...); err != nil {
		ts.t.Fatalf("exec %q: %v", query, err)
	}
}

// everyValue reads every value of every table, as text.
func (ts *testServer) everyValue() []string {
	ts.t.Helper()
	out, err := ts.store.EveryValueForTest(context.Background())
	if err != nil {
		ts.t.Fatal(err)
	}
	return out
}

// settingValues are the values of the settings table.
func (ts *testServer) settingValues() []string {
	ts.t.Helper()
	out, err := ts.store.StringsForTest(context.Background(), `SELECT value FROM settings`)
	if err != nil {
		ts.t.Fatal(err)
	}
	return out
}

// signInWith signs in with a given admin token (signIn uses testAdminToken).
func (ts *testServer) signInWith(token string) *webClient {
	ts.t.Helper()
	r := ts.request("POST", "/admin/login", "token="+url.QueryEscape(token), "Content-Type", "application/x-www-form-urlencoded")
	cookie := sessionCookieOf(r)
	if r.Status != 303 || cookie == "" {
		ts.t.Fatalf("sign in: %d, cookie %q", r.Status, cookie)
	}
	w := &webClient{ts: ts, cookie: cookie}
	m := csrfRe.FindStringSubmatch(w.get("/admin").Body)
	if m == nil {
		ts.t.Fatal("no CSRF token on the programs page")
	}
	w.csrf = m[1]
	return w
}

// signedIn reports whether the cookie opens the programs page (200), or
// sends the browser to the sign-in page.
func (w *webClient) signedIn() bool {
	w.ts.t.Helper()
	r := w.get("/admin")
	switch {
	case r.Status == 200:
		return true
	case r.Status == 303 && strings.HasPrefix(r.Header.Get("Location"), "/admin/login?next="):
		return false
	}
	w.ts.t.Fatalf("GET /admin: %d to %q", r.Status, r.Header.Get("Location"))
	return false
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestAdminSessionIsAHashedRow(t *testing.T) {
	ts := newTestServer(t)
	before := time.Now().Unix()
	w := ts.signIn()

	if n := ts.count(`SELECT count(*) FROM admin_sessions`); n != 1 {
		t.Fatalf("%d session rows after one sign-in, want 1", n)
	}
	if len(w.cookie) < 26 { // 128 bits in base32
		t.Errorf("cookie %q is too short to hold 128 random bits", w.cookie)
	}
	if n := ts.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = ?`, sha256Hex(w.cookie)); n != 1 {
		t.Errorf("no session row under the SHA-256 of the cookie")
	}
	lifetime := int64(sessionLifetime / time.Second)
	if n := ts.count(`SELECT count(*) FROM admin_sessions WHERE created_at BETWEEN ?1 AND ?2
		AND last_seen_at = created_at AND expires_at = created_at + ?3`, before, time.Now().Unix(), lifetime); n != 1 {
		t.Errorf("the session row's times are not sign-in time and sign-in time + %v", sessionLifetime)
	}
	for _, v := range ts.everyValue() {
		for name, secret := range map[string]string{"cookie": w.cookie, "CSRF token": w.csrf} {
			if strings.Contains(v, secret) {
				t.Errorf("the database holds the %s: %q", name, v)
			}
		}
	}
	if n := ts.count(`SELECT count(*) FROM settings WHERE key = 'admin_session_key'`); n != 0 {
		t.Errorf("the settings still hold a session key")
	}
	if w.csrf == "" || w.csrf == w.cookie {
		t.Errorf("CSRF token %q", w.csrf)
	}
}

func TestAdminSessionSignOutEndsIt(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	a, b := ts.signIn(), ts.signIn()

	if r := a.post("/admin/logout", nil); r.Status != 303 || r.Header.Get("Location") != "/admin/login?signed_out=1" {
		t.Fatalf("sign out: %d to %q", r.Status, r.Header.Get("Location"))
	}
	if n := ts.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = ?`, sha256Hex(a.cookie)); n != 0 {
		t.Fatalf("sign-out left the session row")
	}
	// A copy of the cookie (another tab, another instance, a thief).
	if a.signedIn() {
		t.Fatal("the signed-out cookie still opens the admin page")
	}
	if r := a.post("/admin/programs/"+p.ID+"/settings/tracking", url.Values{"js_tracking": {"on"}}); r.Status != 403 {
		t.Errorf("a form with the signed-out cookie and its CSRF token: %d, want 403", r.Status)
	}
	if ts.count(`SELECT CASE WHEN js_tracking THEN 1 ELSE 0 END FROM programs WHERE id = ?`, p.ID) != 0 {
		t.Errorf("a form of a signed-out session changed the program")
	}
	if r := ts.request("GET", "/admin/login", "", "Cookie", sessionCookie+"="+a.cookie); r.Status != 200 {
		t.Errorf("the sign-in page with a signed-out cookie: %d, want 200", r.Status)
	}
	// Signing out again (another tab) just goes to the sign-in page.
	if r := a.post("/admin/logout", nil); r.Status != 303 || r.Header.Get("Location") != "/admin/login?signed_out=1" {
		t.Errorf("signing out an ended session: %d to %q", r.Status, r.Header.Get("Location"))
	}
	if !b.signedIn() {
		t.Error("signing out one session ended another")
	}
}

func TestAdminSessionCSRFIsPerSession(t *testing.T) {
	ts := newTestServer(t)
	p := ts.createProgram("")
	a, b := ts.signIn(), ts.signIn()
	if a.csrf == b.csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	tests := []struct {
		name   string
		client *webClient
		csrf   string
		status int
	}{
		{"b's token with a's cookie", a, b.csrf, 403},
		{"a's token with b's cookie", b, a.csrf, 403},
		{"the cookie itself as token", a, a.cookie, 403},
		{"the cookie's hash as token", a, sha256Hex(a.cookie), 403},
		{"a's own token", a, a.csrf, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.exec(`UPDATE programs SET js_tracking = FALSE`)
			r := tt.client.post("/admin/programs/"+p.ID+"/settings/tracking", url.Values{"js_tracking": {"on"}, "csrf": {tt.csrf}})
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d", r.Status, tt.status)
			}
			if on := ts.count(`SELECT CASE WHEN js_tracking THEN 1 ELSE 0 END FROM programs WHERE id = ?`, p.ID); (on == 1) != (tt.status == 303) {
				t.Fatalf("js_tracking = %d after status %d", on, r.Status)
			}
		})
	}
}

// TestAdminSessionNotForgeableFromDatabase: with a copy of the database, a
// reader tries every value in it as a cookie, and the old stateless
// construction (HMAC cookies under a key derived from a settings value and
// the admin token's hash) with every settings value.
func TestAdminSessionNotForgeableFromDatabase(t *testing.T) {
	// A generated admin token: its hash is in the database, as it was
	// before configured tokens were stored too.
	ts := newTestServer(t, func(c *Config) { c.AdminToken = "" })
	w := ts.signInWith(ts.GeneratedAdminToken)
	ts.createProgramWith(ts.GeneratedAdminToken)

	values := ts.everyValue()
	settings := ts.settingValues()
	var forged []string
	for _, v := range values {
		if v != "" {
			forged = append(forged, v)
		}
	}
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	for _, serverKey := range settings {
		m := hmac.New(sha256.New, []byte(serverKey))
		m.Write([]byte("potrack admin session|"))
		sessionKey := m.Sum(nil)
		for _, adminHash := range settings {
			m := hmac.New(sha256.New, sessionKey)
			m.Write([]byte(adminHash))
			key := m.Sum(nil)
			m = hmac.New(sha256.New, key)
			m.Write([]byte("session|" + exp + "|nonce"))
			forged = append(forged, exp+".nonce."+hex.EncodeToString(m.Sum(nil)))
		}
	}
	if len(forged) < 10 {
		t.Fatalf("only %d candidates: the database read found too little", len(forged))
	}
	for _, cookie := range forged {
		f := &webClient{ts: ts, cookie: cookie}
		if f.signedIn() {
			t.Fatalf("a cookie built from the database signs in: %q", cookie)
		}
	}
	// The real session is still fine, and its CSRF token is not in there
	// either.
	if !w.signedIn() {
		t.Fatal("the real session does not sign in")
	}
	for _, v := range values {
		if v == w.csrf || v == w.cookie {
			t.Fatalf("the database holds a session secret: %q", v)
		}
	}
}

// createProgramWith creates a program with a given admin token.
func (ts *testServer) createProgramWith(token string) {
	ts.t.Helper()
	r := ts.request("POST", "/admin/api/programs", `{"name":"Shop"}`, "Authorization", "Bearer "+token, "Content-Type", "application/json")
	if r.Status != 201 {
		ts.t.Fatalf("create program: %d %s", r.Status, r.Body)
	}
}

func TestAdminSessionEndsWhenAdminTokenChanges(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	const other = "another-admin-token-0123"

	// Another start on the same database with the same token keeps it.
	same, err := New(Config{DB: ts.cfg.DB, AdminToken: testAdminToken}, ts.store)
	if err != nil {
		t.Fatal(err)
	}
	if !(&webClient{ts: &testServer{Server: same, t: t, store: ts.store, dir: ts.dir}, cookie: w.cookie}).signedIn() {
		t.Fatal("a restart with the same admin token ended the session")
	}

	srv, err := New(Config{DB: ts.cfg.DB, AdminToken: other}, ts.store)
	if err != nil {
		t.Fatal(err)
	}
	next := &testServer{Server: srv, t: t, store: ts.store, dir: ts.dir}
	if n := ts.count(`SELECT count(*) FROM admin_sessions`); n != 0 {
		t.Errorf("%d session rows after the admin token changed, want 0", n)
	}
	if n := ts.count(`SELECT count(*) FROM settings WHERE key = 'admin_token_hash' AND value = ?`, hashSecret(other)); n != 1 {
		t.Errorf("the new admin token's hash is not stored")
	}
	if (&webClient{ts: next, cookie: w.cookie}).signedIn() {
		t.Error("a session of the old admin token opens the restarted server")
	}
	// A server still running with the old token (another instance) finds
	// the row gone too.
	if w.signedIn() {
		t.Error("a session of the old admin token still opens the old server")
	}
	// A session the old instance makes after the change does not open the
	// new one.
	late := ts.signIn()
	if (&webClient{ts: next, cookie: late.cookie}).signedIn() {
		t.Error("a session made under the old admin token opens the server with the new one")
	}
	if !next.signInWith(other).signedIn() {
		t.Error("the new admin token does not sign in")
	}
}

func TestAdminSessionExpires(t *testing.T) {
	ts := newTestServer(t)
	w, live := ts.signIn(), ts.signIn()
	past := time.Now().Add(-time.Second).Unix()
	ts.exec(`UPDATE admin_sessions SET expires_at = ? WHERE token_hash = ?`, past, sha256Hex(w.cookie))
	if w.signedIn() {
		t.Fatal("an expired session signs in")
	}
	if r := w.post("/admin/programs", url.Values{"name": {"X"}}); r.Status != 403 {
		t.Errorf("a form of an expired session: %d, want 403", r.Status)
	}
	// The next sign-in clears expired rows.
	ts.signIn()
	if n := ts.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = ?`, sha256Hex(w.cookie)); n != 0 {
		t.Errorf("the expired row is still there after a sign-in")
	}
	if !live.signedIn() {
		t.Error("clearing expired rows ended a live session")
	}
}

func TestAdminSessionLastSeenIsThrottled(t *testing.T) {
	ts := newTestServer(t)
	w := ts.signIn()
	hash := sha256Hex(w.cookie)
	old := time.Now().Add(-time.Minute).Unix()
	ts.exec(`UPDATE admin_sessions SET created_at = ?1, last_seen_at = ?1 WHERE token_hash = ?2`, old, hash)
	for i := 0; i < 5; i++ {
		w.get("/admin")
	}
	if n := ts.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = ? AND last_seen_at = ?`, hash, old); n != 1 {
		t.Errorf("page views a minute after the last one updated last_seen_at")
	}
	stale := time.Now().Add(-sessionTouchEvery - time.Minute).Unix()
	ts.exec(`UPDATE admin_sessions SET last_seen_at = ? WHERE token_hash = ?`, stale, hash)
	now := time.Now().Unix()
	w.get("/admin")
	if n := ts.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = ? AND last_seen_at >= ?`, hash, now); n != 1 {
		t.Errorf("a page view %v after the last one did not update last_seen_at", sessionTouchEvery)
	}
	if n := ts.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = ? AND created_at = ?`, hash, old); n != 1 {
		t.Errorf("a page view changed created_at")
	}
}
