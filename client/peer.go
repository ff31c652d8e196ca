package client

import (
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
// comm): an LXD's is "lxd". It costs one connection. False over HTTPS, or when the peer
// cannot be told (another pid namespace, say).
func (c *Client) ServedByBerthd() bool {
	if c.socketPath == "" {
		return false
	}

	conn, err := net.DialTimeout("unix", c.socketPath, time.Second)
	if err != nil {
		return false
	}

	defer func() { _ = conn.Close() }()

	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}

	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}

	var cred *unix.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cerr != nil || cred.Pid <= 0 {
		return false
	}

	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cred.Pid))

	return err == nil && strings.TrimSpace(string(comm)) == daemonName
}
