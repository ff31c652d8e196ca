package proxy

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseAddr(t *testing.T) {
	a, err := ParseAddr("tcp:0.0.0.0:8080")
	if err != nil || a.Net != "tcp" || a.Port != 8080 || a.String() != "0.0.0.0:8080" {
		t.Fatalf("ParseAddr = %+v, %v", a, err)
	}

	a, err = ParseAddr("udp:[::1]:53")
	if err != nil || a.Host != "::1" {
		t.Fatalf("ParseAddr v6 = %+v, %v", a, err)
	}

	for _, bad := range []string{"unix:/run/x.sock", "tcp:host:80", "tcp:127.0.0.1:80-90", "tcp:127.0.0.1:0", "tcp:127.0.0.1"} {
		_, err := ParseAddr(bad)
		if err == nil {
			t.Errorf("ParseAddr(%q) accepted", bad)
		}
	}
}

// tcpBackend answers each connection with a line and then holds it open until the
// client closes.
func tcpBackend(t *testing.T) string {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = backend.Close() })
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}

			go func() {
				_, _ = c.Write([]byte("backend\n"))
				_, _ = c.Read(make([]byte, 1))
				_ = c.Close()
			}()
		}
	}()

	return backend.Addr().String()
}

func TestForwardTCP(t *testing.T) {
	addr := tcpBackend(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer l.Close()
	go func() {
		_ = serveTCP(l, func() (net.Conn, error) { return net.Dial("tcp", addr) }, DefaultLimits)
	}()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "backend\n" {
		t.Fatalf("through the proxy: %q %v", line, err)
	}
}

// TestTCPConnLimit: past the limit a connection is closed at once; one closing frees a slot.
func TestTCPConnLimit(t *testing.T) {
	addr := tcpBackend(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer l.Close()
	go func() {
		_ = serveTCP(l, func() (net.Conn, error) { return net.Dial("tcp", addr) }, Limits{TCPConns: 2, UDPFlows: 1, UDPIdle: time.Minute})
	}()

	open := func() (net.Conn, string) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}

		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return c, line
	}

	a, la := open()
	b, lb := open()
	c, lc := open()
	defer a.Close()
	defer b.Close()
	defer c.Close()
	if la != "backend\n" || lb != "backend\n" {
		t.Fatalf("the first two connections: %q %q", la, lb)
	}

	if lc != "" {
		t.Fatalf("a third connection past the limit of 2 was served: %q", lc)
	}

	_ = a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, ld := open()
		_ = d.Close()
		if ld == "backend\n" {
			break
		}

		if time.Now().After(deadline) {
			t.Fatal("no slot freed after a connection closed")
		}

		time.Sleep(20 * time.Millisecond)
	}
}

// countingConn counts open upstream sockets.
type countingConn struct {
	net.Conn
	open   *atomic.Int64
	closed atomic.Bool
}

func (c *countingConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}

	return c.Conn.Close()
}

// udpSetup runs an echo backend and a proxy with lim; it returns the proxy's address and
// the count of open upstream sockets (with its peak).
func udpSetup(t *testing.T, lim Limits) (string, *atomic.Int64, *atomic.Int64) {
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = echo.Close() })
	go func() {
		buf := make([]byte, 100)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}

			_, _ = echo.WriteTo(buf[:n], from)
		}
	}()

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = pc.Close() })
	var open, peak atomic.Int64
	dial := func() (net.Conn, error) {
		c, err := net.Dial("udp", echo.LocalAddr().String())
		if err != nil {
			return nil, err
		}

		n := open.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}

		return &countingConn{Conn: c, open: &open}, nil
	}

	go func() { _ = serveUDP(pc, dial, lim) }()
	return pc.LocalAddr().String(), &open, &peak
}

func udpAsk(t *testing.T, c net.Conn, msg string) bool {
	t.Helper()
	buf := make([]byte, 100)
	for range 20 {
		_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = c.Write([]byte(msg))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == msg {
			return true
		}
	}

	return false
}

// TestUDPFlowLimit: many clients never hold more flows than the limit, the least recently
// used one is evicted and a new client is still served.
func TestUDPFlowLimit(t *testing.T) {
	addr, open, peak := udpSetup(t, Limits{TCPConns: 1, UDPFlows: 3, UDPIdle: time.Minute})

	var clients []net.Conn
	for i := range 8 {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}

		defer c.Close()
		clients = append(clients, c)
		if !udpAsk(t, c, "hello") {
			t.Fatalf("client %d got no answer", i)
		}
	}

	time.Sleep(100 * time.Millisecond)
	if p := peak.Load(); p > 3 {
		t.Errorf("%d flows open at once with a limit of 3", p)
	}

	if n := open.Load(); n != 3 {
		t.Errorf("%d flows open after 8 clients, want the limit of 3", n)
	}

	// The first client was evicted long ago; it gets a new flow (evicting another).
	if !udpAsk(t, clients[0], "again") {
		t.Error("an evicted client is not served again")
	}
}

// TestUDPFlowIdle: an unused flow ends after the idle time.
func TestUDPFlowIdle(t *testing.T) {
	addr, open, _ := udpSetup(t, Limits{TCPConns: 1, UDPFlows: 10, UDPIdle: 300 * time.Millisecond})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}

	defer c.Close()
	if !udpAsk(t, c, "hello") || open.Load() != 1 {
		t.Fatalf("no flow: %d", open.Load())
	}

	deadline := time.Now().Add(5 * time.Second)
	for open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an idle flow was not closed")
		}

		time.Sleep(50 * time.Millisecond)
	}
}
