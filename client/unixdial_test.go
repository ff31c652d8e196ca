package client

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
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

	if c.ServedByBerthd() {
		t.Error("the test's own server is served by berthd")
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

// TestKeptConnectionExpires: a kept connection older than keptFor is closed, not used.
func TestKeptConnectionExpires(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "unix.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = l.Close() })

	d := &unixDialer{path: sock}
	old, err := d.dialNew(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	d.keep(old)
	d.keptAt = time.Now().Add(-keptFor - time.Second)

	conn, err := d.dial(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = conn.Close() }()

	if conn == old {
		t.Fatal("an expired kept connection was used")
	}

	if _, err := old.Write([]byte("x")); err == nil {
		t.Error("the expired connection is still open")
	}

	fresh, err := d.dialNew(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	d.keep(fresh)
	if got, _ := d.dial(context.Background(), "", ""); got != fresh {
		t.Error("a fresh kept connection was not used")
	}

	_ = fresh.Close()
}
