package forward

import (
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// UserTimeout is TCP_USER_TIMEOUT on member connections: data a member leaves
// unacknowledged this long (a blackholed member, also found by a keepalive probe on an
// idle pooled connection) ends the connection, instead of the kernel's ~15 minutes of
// retransmissions a pooled connection otherwise hangs for.
const UserTimeout = 10 * time.Second

// HeaderTimeout bounds waiting for a member's answer to a call that is not a long poll
// (a member that accepts but never answers, e.g. stopped): the call then fails as the
// member's 503 instead of holding the caller.
const HeaderTimeout = 60 * time.Second

// memberDialer dials members with DialTimeout and UserTimeout.
func memberDialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   DialTimeout,
		KeepAlive: 5 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(UserTimeout/time.Millisecond))
			})
			if err != nil {
				return err
			}

			return serr
		},
	}
}

// longPoll says whether a member may legitimately hold r's answer headers: websocket
// upgrades (exec, console, events), an operation's wait, the events stream.
func longPoll(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}

	p := r.URL.Path
	return p == "/1.0/events" || strings.HasSuffix(p, "/wait") || strings.HasSuffix(p, "/websocket")
}
