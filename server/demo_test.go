package server

import (
	"context"
	"github.com/potrack/potrack/internal/testenv"
	"path/filepath"
	"strings"
	"testing"

	"github.com/potrack/potrack/store"
)

func TestSeedDemo(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Demo = true; c.Addr = ":18123" })
	id := ts.demoProgramID
	if id == "" {
		t.Fatal("no demo program")
	}
	checks := map[string]string{
		"JS tracking on for the server's own origins": `SELECT count(*) FROM programs WHERE id = ?1 AND name = 'Demo shop' AND js_tracking = TRUE
			AND allowed_origins = '["http://localhost:18123","http://127.0.0.1:18123"]'`,
		"the demo partner":        `SELECT count(*) FROM partners WHERE program_id = ?1 AND key = 'demo-partner'`,
		"one program":             `SELECT count(*) FROM programs WHERE ?1 != ''`,
		"the program is recorded": `SELECT count(*) FROM settings WHERE key = 'demo_program_id' AND value = ?1`,
	}
	for name, q := range checks {
		if n := ts.count(q, id); n != 1 {
			t.Errorf("%s: counted %d", name, n)
		}
	}

	banner := ts.Banner()
	for _, want := range []string{"http://localhost:18123/admin", testAdminToken, "http://localhost:18123/demo/?aff=demo-partner", "Start page:      http://localhost:18123/\n"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}

	t.Run("a restart keeps the one demo program", func(t *testing.T) {
		again, err := New(Config{DB: filepath.Join(ts.dir, "potrack.db"), AdminToken: testAdminToken, Demo: true, Addr: ":18123"}, ts.store)
		if err != nil {
			t.Fatal(err)
		}
		if again.demoProgramID != id || ts.count(`SELECT count(*) FROM programs`) != 1 || ts.count(`SELECT count(*) FROM partners`) != 1 {
			t.Fatalf("restart seeded again: demo %q, %d programs", again.demoProgramID, ts.count(`SELECT count(*) FROM programs`))
		}
		if !strings.Contains(again.Banner(), "/demo/?aff=demo-partner") {
			t.Error("the banner after a restart lacks the referral link")
		}
	})
}

func TestSeedDemoOrigins(t *testing.T) {
	tests := []struct {
		cfg  Config
		want []string
	}{
		{Config{Addr: ":8080"}, []string{"http://localhost:8080", "http://127.0.0.1:8080"}},
		{Config{Addr: "0.0.0.0:9000"}, []string{"http://localhost:9000", "http://127.0.0.1:9000"}},
		{Config{Addr: "192.168.1.5:8080"}, []string{"http://localhost:8080", "http://127.0.0.1:8080", "http://192.168.1.5:8080"}},
		{Config{Addr: ":8080", PublicURL: "https://Track.Example/base"}, []string{"https://track.example", "http://localhost:8080", "http://127.0.0.1:8080"}},
	}
	for _, tt := range tests {
		s := &Server{cfg: tt.cfg}
		if got := s.ownOrigins(); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%+v: %v, want %v", tt.cfg, got, tt.want)
		}
	}
}

func TestSeedDemoLeavesAUsedDatabaseAlone(t *testing.T) {
	ts := newTestServer(t)
	ts.createProgram("")
	st := ts.store
	srv, err := New(Config{DB: filepath.Join(ts.dir, "potrack.db"), AdminToken: testAdminToken, Demo: true}, st)
	if err != nil {
		t.Fatal(err)
	}
	if srv.demoProgramID != "" || ts.count(`SELECT count(*) FROM programs`) != 1 {
		t.Fatal("the demo was seeded into a database that had a program")
	}
	if strings.Contains(srv.Banner(), "/demo/") {
		t.Error("the banner shows a demo link without a demo")
	}
	srvTS := &testServer{Server: srv, t: t, store: st}
	if r := srvTS.request("GET", "/demo/", ""); r.Status != 404 {
		t.Errorf("/demo/ without a demo program: %d, want 404", r.Status)
	}
}

func TestBannerToken(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "potrack.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first, err := New(Config{Addr: ":8080"}, st)
	if err != nil {
		t.Fatal(err)
	}
	if first.GeneratedAdminToken == "" || !strings.Contains(first.Banner(), first.GeneratedAdminToken) {
		t.Errorf("the first start's banner lacks the generated token:\n%s", first.Banner())
	}
	second, err := New(Config{Addr: ":8080"}, st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(second.Banner(), first.GeneratedAdminToken) || !strings.Contains(second.Banner(), "http://localhost:8080/admin") {
		t.Errorf("the second start's banner:\n%s", second.Banner())
	}
	// A configured token is shown only by a local demo.
	chosen := "operator-chosen-token"
	for demo, want := range map[bool]bool{false: false, true: true} {
		srv, err := New(Config{Addr: ":8080", AdminToken: chosen, Demo: demo}, st)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(srv.Banner(), chosen); got != want {
			t.Errorf("demo %v: banner shows the configured token: %v, want %v\n%s", demo, got, want, srv.Banner())
		}
	}
}

func TestDemoPages(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Demo = true; c.Addr = ":18124" })
	id := ts.demoProgramID
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/demo/", 200, []string{`po('program',"` + id + `",'load')`, "/js/universal.js", "/demo/?aff=demo-partner"}},
		{"/demo", 200, []string{`po('program',"` + id + `",'load')`}},
		{"/demo/product", 200, []string{`/demo/thanks?order=demo_`, "$49.00"}},
		{"/demo/thanks?order=abc_123", 200, []string{`po('transactions', 'create', {`, `key: "abc_123"`, `amount: "49.00"`, `customer: {key: "cust_abc_123"`, "create_customer: true"}},
		{"/demo/thanks?order=%3Cscript%3E", 303, nil},
		{"/demo/thanks", 303, nil},
	}
	for _, tt := range tests {
		r := ts.request("GET", tt.path, "")
		if r.Status != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, r.Status, tt.status)
			continue
		}
		for _, want := range tt.want {
			if !strings.Contains(r.Body, want) {
				t.Errorf("%s lacks %q", tt.path, want)
			}
		}
	}
	r := ts.request("GET", "/demo/product", "", "Cookie", "partnero_partner=<b>demo</b>")
	if strings.Contains(r.Body, "<b>demo</b>") || !strings.Contains(r.Body, "&lt;b&gt;demo&lt;/b&gt;") {
		t.Error("the referral cookie is not shown escaped")
	}
}

// TestSeedDemoOnAnotherPort: a later demo start on another port adds that
// port's origins to the demo program, keeping the ones it had.
func TestSeedDemoOnAnotherPort(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Demo, c.Addr = true, "127.0.0.1:8080" })
	if _, err := New(Config{DB: filepath.Join(ts.dir, "potrack.db"), AdminToken: testAdminToken, Demo: true, Addr: ":9090"}, ts.store); err != nil {
		t.Fatal(err)
	}
	p, err := ts.store.Program(context.Background(), ts.demoProgramID)
	if err != nil {
		t.Fatal(err)
	}
	want := "http://localhost:8080 http://127.0.0.1:8080 http://localhost:9090 http://127.0.0.1:9090"
	if got := strings.Join(p.AllowedOrigins, " "); got != want {
		t.Fatalf("allowed origins %q, want %q", got, want)
	}
}

// TestDemoSeededOnceByInstancesStartingTogether: instances started at the
// same moment with --demo on one PostgreSQL database (each its own store,
// as each process has) seed one demo program between them.
func TestDemoSeededOnceByInstancesStartingTogether(t *testing.T) {
	db := testenv.Postgres(t)
	const instances = 8
	stores := make([]*store.Store, instances)
	for i := range stores {
		st, err := store.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores[i] = st
	}
	start := make(chan struct{})
	servers := make(chan *Server, instances)
	for _, st := range stores {
		go func() {
			<-start
			srv, err := New(Config{Addr: ":18125", Demo: true, AdminToken: testAdminToken}, st)
			if err != nil {
				t.Error(err)
			}
			servers <- srv
		}()
	}
	close(start)
	ids := map[string]bool{}
	for range stores {
		if srv := <-servers; srv != nil {
			ids[srv.demoProgramID] = true
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(ids) != 1 || ids[""] {
		t.Fatalf("the instances found the demo programs %v, want one and the same", ids)
	}
	ctx := context.Background()
	for q, want := range map[string]int{
		`SELECT count(*) FROM programs`:                                                                     1,
		`SELECT count(*) FROM partners WHERE key = 'demo-partner'`:                                          1,
		`SELECT count(*) FROM settings s JOIN programs p ON p.id = s.value WHERE s.key = 'demo_program_id'`: 1,
	} {
		if n, err := stores[0].CountForTest(ctx, q); err != nil || n != want {
			t.Errorf("%s: %d (%v), want %d, after %d demo starts", q, n, err, want, instances)
		}
	}
}
