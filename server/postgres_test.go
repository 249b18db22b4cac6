package server

import (
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/potrack/potrack/internal/testenv"
	"github.com/potrack/potrack/store"
)

// tcpRelay forwards connections to target until cut, which closes its
// listener and every connection, as a database server that goes away;
// restore listens again on the same address.
type tcpRelay struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newTCPRelay(t *testing.T, target string) *tcpRelay {
	r := &tcpRelay{t: t, target: target, addr: "127.0.0.1:0"}
	r.restore()
	r.addr = r.ln.Addr().String()
	t.Cleanup(r.cut)
	return r
}

func (r *tcpRelay) restore() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", r.target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, d)
			r.mu.Unlock()
			go func() { io.Copy(d, c); d.Close() }()
			go func() { io.Copy(c, d); c.Close() }()
		}
	}()
}

func (r *tcpRelay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ln.Close()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// TestPostgresGoneAnswers503: while PostgreSQL cannot be reached, writes
// are refused with 503 and a plain reason (never a 500), /healthz says
// why, and both recover on their own when it is back.
func TestPostgresGoneAnswers503(t *testing.T) {
	db := testenv.Postgres(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	relay := newTCPRelay(t, u.Host)
	u.Host = relay.addr
	st, err := store.Open(u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := New(Config{DB: u.String(), AdminToken: testAdminToken}, st)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, t: t, store: st}
	st.SetHealthFreshForTest(0)
	p := ts.createProgram(`{"name":"Shop"}`)
	sale := `{"key":"o1","amount":"10.00","customer":{"key":"c1"},"options":{"create_customer":true}}`

	relay.cut()
	r := ts.api(p, "POST", "/v1/transactions", sale)
	if r.Status != 503 || !strings.Contains(r.Body, "cannot be reached") {
		t.Fatalf("a sale while PostgreSQL is gone: %d %s, want 503 naming the database", r.Status, r.Body)
	}
	if r := ts.request("GET", "/healthz", ""); r.Status != 503 || !strings.Contains(r.Body, "PostgreSQL cannot be reached") {
		t.Fatalf("/healthz while PostgreSQL is gone: %d %s", r.Status, r.Body)
	}

	relay.restore()
	if r := ts.api(p, "POST", "/v1/transactions", sale); r.Status != 201 {
		t.Fatalf("the sale sent again once PostgreSQL is back: %d %s", r.Status, r.Body)
	}
	if r := ts.request("GET", "/healthz", ""); r.Status != 200 {
		t.Fatalf("/healthz once PostgreSQL is back: %d %s", r.Status, r.Body)
	}
	if n := ts.count(`SELECT count(*) FROM transactions WHERE key = 'o1'`); n != 1 {
		t.Fatalf("%d rows for o1, want 1", n)
	}
}

// TestInstancesShareAdminSessions: two instances on one PostgreSQL
// database, as behind a load balancer without sticky sessions: a session
// made on one works on the other, forms included (CSRF), and signing out
// through one ends it on both.
func TestInstancesShareAdminSessions(t *testing.T) {
	db := testenv.Postgres(t)
	instance := func() *testServer {
		st, err := store.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		srv, err := New(Config{DB: db, AdminToken: testAdminToken}, st)
		if err != nil {
			t.Fatal(err)
		}
		return &testServer{Server: srv, t: t, store: st}
	}
	a, b := instance(), instance()
	p := a.createProgram(`{"name":"Shop"}`)
	onA := a.signIn()
	onB := &webClient{ts: b, cookie: onA.cookie, csrf: onA.csrf}
	if !onB.signedIn() {
		t.Fatal("a session made on one instance is refused by the other")
	}
	if r := onB.post("/admin/programs/"+p.ID+"/settings/tracking", url.Values{"js_tracking": {"on"}}); r.Status != 303 {
		t.Fatalf("a form posted to the other instance with the session's CSRF token: %d %s", r.Status, r.Body)
	}
	if n := a.count(`SELECT count(*) FROM programs WHERE id = ? AND js_tracking = TRUE`, p.ID); n != 1 {
		t.Fatal("the form posted to the other instance changed nothing")
	}
	if r := onB.post("/admin/logout", nil); r.Status != 303 {
		t.Fatalf("sign out on the other instance: %d", r.Status)
	}
	if onA.signedIn() {
		t.Fatal("a session signed out on one instance still opens the admin page on the other")
	}
}
