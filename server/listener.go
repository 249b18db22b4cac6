package server

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Connections. fasthttp ends its accept loop, and so the process, on any
// accept error that is not a timeout, such as EMFILE when a flood of
// connections uses up the open-file limit. capListener sits between the
// socket and fasthttp: it retries failed accepts with back-off, and caps
// open connections in all and per client IP below the open-file limit, so
// that a flood costs the flooder its connections, not everyone the server.

// fileReserve is what the connection cap leaves of the open-file limit for
// the database, its WAL and the process's other files.
const fileReserve = 256

// defaultConnCap caps connections when --max-conns is 0: the open-file
// limit less the reserve, and no more than a 2-core, few-GiB machine holds
// comfortably (an idle fasthttp connection costs about 10 KiB).
const defaultConnCap = 20000

// RaiseFileLimit raises the soft open-file limit to the hard one and
// returns it. (Go does this at start too; doing it here says so, and tells
// the connection cap what it has to stay under.)
func RaiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	return lim.Cur
}

// connCap is the total connection cap for the configured value (0: auto)
// under the open-file limit.
func connCap(configured int, fileLimit uint64) int {
	limit := configured
	if limit <= 0 {
		limit = defaultConnCap
	}
	if fileLimit > 0 && uint64(limit)+fileReserve > fileLimit {
		limit = int(fileLimit) - fileReserve
		if limit < 16 {
			limit = 16
		}
	}
	return limit
}

type capListener struct {
	net.Listener
	maxTotal int
	maxPerIP int                 // 0: no cap
	exempt   func(net.IP) bool   // trusted proxies: every visitor comes through them
	refused  func(reason string) // counts a refused connection (metrics)

	mu    sync.Mutex
	total int
	perIP map[string]int

	lastLog atomic.Int64 // unix nanoseconds of the last log line
}

func newCapListener(ln net.Listener, maxTotal, maxPerIP int, exempt func(net.IP) bool, refused func(string)) *capListener {
	return &capListener{Listener: ln, maxTotal: maxTotal, maxPerIP: maxPerIP, exempt: exempt,
		refused: refused, perIP: map[string]int{}}
}

// Accept returns the next connection within the caps. It returns an error
// only when the listener is closed.
func (l *capListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// EMFILE, ENFILE, ECONNABORTED, ENOBUFS…: wait for
			// connections to close, and try again.
			l.logf("accepting a connection failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		ip := remoteIP(conn)
		if reason := l.admit(ip); reason != "" {
			conn.Close()
			l.refused(reason)
			l.logf("connection refused", "reason", reason, "ip", ip.String())
			continue
		}
		return &cappedConn{Conn: conn, l: l, key: ipKey(ip)}, nil
	}
}

// admit counts a new connection from ip, or says why it is refused.
func (l *capListener) admit(ip net.IP) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.maxTotal {
		return "total"
	}
	key := ipKey(ip)
	if l.maxPerIP > 0 && l.perIP[key] >= l.maxPerIP && (ip == nil || !l.exempt(ip)) {
		return "per_ip"
	}
	l.total++
	l.perIP[key]++
	return ""
}

func (l *capListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[key]--; l.perIP[key] <= 0 {
		delete(l.perIP, key)
	}
}

// Open is the number of connections open now.
func (l *capListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// logf logs at most once a second: a flood must not become a flood of logs.
func (l *capListener) logf(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(time.Second) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	slog.Warn(msg, append(args, "open_connections", l.Open())...)
}

func remoteIP(c net.Conn) net.IP {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP
	}
	return nil
}

// ipKey groups IPv6 clients by /64, since one host holds a whole /64.
func ipKey(ip net.IP) string {
	if ip == nil {
		return ""
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String()
}

type cappedConn struct {
	net.Conn
	l    *capListener
	key  string
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() { c.l.release(c.key) })
	return c.Conn.Close()
}
