package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// failingListener fails its first n accepts with err, then accepts from
// the real listener.
type failingListener struct {
	net.Listener
	n   atomic.Int32
	err error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsAreRetried: EMFILE on accept (a connection flood using up
// the open-file limit) makes fasthttp end its accept loop; the cap listener
// retries instead, and the server answers once the error passes.
func TestAcceptErrorsAreRetried(t *testing.T) {
	ln := listenLoopback(t)
	fl := &failingListener{Listener: ln, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}}
	fl.n.Store(5)
	capped := newCapListener(fl, 100, 0, func(net.IP) bool { return false }, func(string) {})
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := capped.Accept()
		if err == nil {
			conns <- c
		}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	select {
	case c := <-conns:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after the accept errors passed")
	}
	ln.Close()
	if _, err := capped.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a closed listener gave %v, want net.ErrClosed", err)
	}
}

// TestConnectionCaps: past the per-IP cap a client's new connections are
// closed at once, other clients still get in, and a closed connection
// frees its place.
func TestConnectionCaps(t *testing.T) {
	_, addr := liveServer(t, func(c *Config) { c.MaxConnsPerIP = 4; c.MaxConns = 6 })
	dialFrom := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c without a word.
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	}
	healthy := func(local string) bool {
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	var held []net.Conn
	for i := 0; i < 4; i++ {
		held = append(held, dialFrom("127.0.0.1"))
	}
	// The server accepts connections in the order they arrived, so the
	// fifth meets the four.
	if extra := dialFrom("127.0.0.1"); !closedByServer(extra) {
		t.Fatal("a fifth connection from one IP was kept")
	}
	// Another client still gets in; two of its connections reach the
	// total cap of 6.
	held = append(held, dialFrom("127.0.0.3"), dialFrom("127.0.0.3"))
	if closedByServer(held[4]) || closedByServer(held[5]) {
		t.Fatal("another client's connections were refused")
	}
	if extra := dialFrom("127.0.0.4"); !closedByServer(extra) {
		t.Fatal("a connection past the total cap was kept")
	}
	held[0].Close()
	held[4].Close()
	// The server frees a place when it sees the close: poll for it.
	for deadline := time.Now().Add(5 * time.Second); !healthy("127.0.0.1"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("closing connections did not free their places")
		}
	}
}

func TestConnCap(t *testing.T) {
	for _, c := range []struct {
		configured int
		files      uint64
		want       int
	}{
		{0, 1 << 20, defaultConnCap},
		{0, 20000, 20000 - fileReserve},
		{500, 1 << 20, 500},
		{50000, 4096, 4096 - fileReserve},
		{0, 100, 16},
		{0, 0, defaultConnCap},
	} {
		if got := connCap(c.configured, c.files); got != c.want {
			t.Errorf("connCap(%d, %d) = %d, want %d", c.configured, c.files, got, c.want)
		}
	}
}
