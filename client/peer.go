package client

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// daemonName is the name the kernel gives berthd's process (its executable's).
const daemonName = "berthd"

// ServedByBerthd says whether the daemon listening on the client's unix socket is berthd,
// by the name the kernel gives the process that listens there (SO_PEERCRED, then its
// comm): an LXD's is "lxd". It is asked once per client, and the connection it opens
// serves the next request. False over HTTPS, or when the peer cannot be told (another pid
// namespace, say).
func (c *Client) ServedByBerthd() bool {
	if c.unix == nil {
		return false
	}

	c.served.once.Do(func() { c.served.berthd = c.askServedByBerthd() })

	return c.served.berthd
}

// askServedByBerthd is ServedByBerthd's question, asked once per client.
func (c *Client) askServedByBerthd() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	conn, err := c.unix.dialNew(ctx)
	if err != nil {
		return false
	}

	pid := peerPID(conn)
	if pid <= 0 {
		_ = conn.Close()
		return false
	}

	// The connection serves the request that follows (unixDialer).
	c.unix.keep(conn)

	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))

	return err == nil && strings.TrimSpace(string(comm)) == daemonName
}

// peerPID is the pid of the process at the other end of a unix connection, or -1.
func peerPID(conn net.Conn) int {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return -1
	}

	raw, err := uc.SyscallConn()
	if err != nil {
		return -1
	}

	pid := -1
	err = raw.Control(func(fd uintptr) {
		cred, cerr := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if cerr == nil {
			pid = int(cred.Pid)
		}
	})
	if err != nil {
		return -1
	}

	return pid
}
