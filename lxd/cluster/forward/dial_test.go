package forward

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Member connections carry TCP_USER_TIMEOUT: a blackholed member's unacknowledged data
// ends the connection in UserTimeout, not in the kernel's ~15 minutes.
func TestMemberDialerUserTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = l.Close() })
	c, err := memberDialer().DialContext(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = c.Close() })
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	var got int
	var gerr error
	err = raw.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	})
	if err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}

	if got != int(UserTimeout/time.Millisecond) {
		t.Fatalf("TCP_USER_TIMEOUT %d ms, want %d", got, UserTimeout/time.Millisecond)
	}
}

// A member that takes the request but never answers is a 503 naming it within the
// header timeout; an operation's wait, which may hold its answer, is not cut.
func TestForwardHeaderTimeout(t *testing.T) {
	stop := make(chan struct{})
	m, cfg, _ := member(t, "n2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/wait") {
			time.Sleep(400 * time.Millisecond)
			w.WriteHeader(http.StatusOK)
			return
		}

		<-stop
	}))
	t.Cleanup(func() { close(stop) })

	f := newForwarder("n1", cfg, testLog(), 150*time.Millisecond)
	t.Cleanup(f.Close)
	srv := front(t, f, m, CallerAdmin)
	start := time.Now()
	resp, err := http.Get(srv.URL + "/1.0/instances/c1")
	if err != nil {
		t.Fatal(err)
	}

	code, msg := errorOf(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || code != http.StatusServiceUnavailable || !strings.HasPrefix(msg, "member n2 (") {
		t.Fatalf("hung member: %d %q", resp.StatusCode, msg)
	}

	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("hung member answered in %v", took)
	}

	resp, err = http.Get(srv.URL + "/1.0/operations/x/wait")
	if err != nil {
		t.Fatal(err)
	}

	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("operation wait: %d", resp.StatusCode)
	}
}
