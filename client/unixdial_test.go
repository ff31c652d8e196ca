package client

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOneConnection: the connection ServedByBerthd opens serves the request after it, and
// the requests of a command share one connection; berthd sees one accept, not one per
// request and one more for the question.
func TestOneConnection(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "unix.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}

	var conns atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"type":"sync","status":"Success","status_code":200,"metadata":{}}`))
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		},
	}

	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	c, err := Connect(sock)
	if err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 2; i++ { // asked once per client: `berth start a b` asks for each
		if c.ServedByBerthd() {
			t.Error("the test's own server is served by berthd")
		}
	}

	for i := 0; i < 3; i++ {
		_, _, err := c.query(context.Background(), "GET", "/1.0", nil, "")
		if err != nil {
			t.Fatal(err)
		}
	}

	if n := conns.Load(); n != 1 {
		t.Errorf("the server accepted %d connections, want 1", n)
	}
}

// TestKeptConnectionExpires: a kept connection nothing asked for is closed after keptFor.
func TestKeptConnectionExpires(t *testing.T) {
	sock := listen(t, func(net.Conn) {})
	saved := keptFor
	keptFor = 20 * time.Millisecond
	t.Cleanup(func() { keptFor = saved })

	d := &unixDialer{path: sock}
	conn, err := d.dialNew(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	d.keep(conn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.mu.Lock()
		kept := d.kept
		d.mu.Unlock()
		if kept == nil {
			break
		}

		if time.Now().After(deadline) {
			t.Fatal("the kept connection is still kept")
		}

		time.Sleep(5 * time.Millisecond)
	}

	if _, err := conn.Write([]byte("x")); err == nil {
		t.Error("the expired connection is still open")
	}
}

// TestKeptConnectionClosedByServer: a kept connection the daemon has closed since (it
// restarted) is not handed to a request, which would fail on it; a new one is dialled.
// One still open is handed out, and a second keep replaces the first.
func TestKeptConnectionClosedByServer(t *testing.T) {
	sock := listen(t, func(c net.Conn) { _ = c.Close() })
	d := &unixDialer{path: sock}
	closed, err := d.dialNew(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	for deadline := time.Now().Add(5 * time.Second); idleAndOpen(closed); {
		if time.Now().After(deadline) {
			t.Fatal("the server's close never arrived")
		}

		time.Sleep(time.Millisecond)
	}

	d.keep(closed)
	conn, err := d.dial(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}

	_ = conn.Close()
	if conn == closed {
		t.Fatal("a connection the server closed was handed out")
	}

	open := listen(t, func(net.Conn) {})
	d = &unixDialer{path: open}
	first, _ := d.dialNew(context.Background())
	second, _ := d.dialNew(context.Background())
	d.keep(first)
	d.keep(second)
	if _, err := first.Write([]byte("x")); err == nil {
		t.Error("a replaced kept connection is still open")
	}

	got, err := d.dial(context.Background(), "", "")
	if err != nil || got != second {
		t.Errorf("dial gave %v, %v: want the kept connection", got, err)
	}

	_ = second.Close()
}

// listen serves a unix socket in a temporary directory, calling serve for each connection
// (which it then leaves open until the test ends).
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()

	sock := filepath.Join(t.TempDir(), "unix.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})

	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}

			serve(c)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()

	return sock
}
