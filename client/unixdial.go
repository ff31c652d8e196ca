package client

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// keptFor is how long a connection ServedByBerthd opened waits for the request it was
// kept for: that request follows at once in the CLI; a connection older than this may
// meet a daemon that has restarted since, and a fresh one is dialled instead.
const keptFor = 2 * time.Second

// unixDialer connects to the daemon's unix socket. One connection, the one
// ServedByBerthd opened to ask the kernel who listens, may be kept and serves the next
// request: a `berth start` then connects once, not twice (each connection is a connect
// here and an accept in berthd, about half a millisecond of the start's path on a slow
// VM, doc/host-tuning.md).
type unixDialer struct {
	path string

	mu     sync.Mutex
	kept   net.Conn
	keptAt time.Time
}

// dial is the transport's and the websocket dialer's DialContext: the kept connection if
// it is fresh, else a new one.
func (d *unixDialer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	d.mu.Lock()
	conn, at := d.kept, d.keptAt
	d.kept = nil
	d.mu.Unlock()

	if conn != nil {
		if time.Since(at) < keptFor {
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

// keep keeps conn, unused, for the next dial; a connection kept already stays, and conn
// is closed.
func (d *unixDialer) keep(conn net.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if d.kept != nil {
		_ = conn.Close()
		return
	}

	d.kept, d.keptAt = conn, time.Now()
}
