package client

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// keptFor is how long a connection ServedByBerthd opened waits for the request it was
// kept for (the CLI sends it at once) before it is closed: a library's client that asks
// and sends nothing holds no connection, and berthd no goroutine, for long.
var keptFor = 2 * time.Second

// unixDialer connects to the daemon's unix socket. One connection, the one
// ServedByBerthd opened to ask the kernel who listens, may be kept and serves the next
// request: a `berth start` then connects once, not twice (each connection is a connect
// here and an accept in berthd, about half a millisecond of the start's path on a slow
// VM, doc/host-tuning.md).
type unixDialer struct {
	path string

	mu    sync.Mutex
	kept  net.Conn
	timer *time.Timer // closes kept after keptFor
}

// dial is the transport's and the websocket dialer's DialContext: the kept connection if
// it is still open, else a new one.
func (d *unixDialer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	if conn := d.take(); conn != nil {
		if idleAndOpen(conn) {
			return conn, nil
		}

		_ = conn.Close()
	}

	return d.dialNew(ctx)
}

// dialNew opens a new connection.
func (d *unixDialer) dialNew(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "unix", d.path)
	if err != nil {
		return nil, fmt.Errorf("connecting to berthd at %s: %w", d.path, err)
	}

	return conn, nil
}

// keep keeps conn, unused, for the next dial, until keptFor has passed; it replaces a
// connection kept before, which is closed.
func (d *unixDialer) keep(conn net.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if d.kept != nil {
		d.timer.Stop()
		_ = d.kept.Close()
	}

	d.kept = conn
	d.timer = time.AfterFunc(keptFor, func() {
		if c := d.takeIf(conn); c != nil {
			_ = c.Close()
		}
	})
}

// take takes the kept connection, if any.
func (d *unixDialer) take() net.Conn {
	return d.takeIf(nil)
}

// takeIf takes the kept connection if it is conn (any, for nil).
func (d *unixDialer) takeIf(conn net.Conn) net.Conn {
	d.mu.Lock()
	defer d.mu.Unlock()

	if d.kept == nil || (conn != nil && d.kept != conn) {
		return nil
	}

	c := d.kept
	d.kept = nil
	d.timer.Stop()
	d.timer = nil

	return c
}

// idleAndOpen says whether conn is open with nothing to read. The daemon never speaks
// first: anything readable, an end of file included, means it closed the connection
// (a restart), and a request sent there would fail without the transport's retry.
func idleAndOpen(conn net.Conn) bool {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}

	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}

	open := false
	err = raw.Control(func(fd uintptr) {
		var b [1]byte
		_, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		open = rerr == unix.EAGAIN
	})

	return err == nil && open
}
