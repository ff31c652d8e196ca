// Package proxy is `berthd __proxy`: the forwarder behind a proxy device. It forwards each
// TCP connection or UDP flow accepted on a host socket to an address inside a container's
// network namespace, for as long as the container's init lives. It runs as its own small
// process (LXD's forkproxy) so that it outlives daemon restarts.
//
// It holds no privilege (Spawn): the daemon binds the host socket, opens a pidfd of the
// container's init and starts the proxy already inside the container's network namespace,
// as the container root's host uid, with no capabilities (none effective, permitted,
// inheritable, ambient or in the bounding set) and no_new_privs. Connections and flows are
// bounded (Limits).
package proxy

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Helper is the hidden subcommand: berthd __proxy <listen> <connect>, with the status
// pipe, the listening socket and the pidfd of the container's init as fds 3, 4 and 5.
const Helper = "__proxy"

// fds the proxy is given.
const (
	statusFD = 3
	listenFD = 4
	pidFD    = 5
)

// IsHelper reports whether args ask for the proxy.
func IsHelper(args []string) bool { return len(args) > 1 && args[1] == Helper }

// Addr is a parsed "tcp:127.0.0.1:80" device address.
type Addr struct {
	Net  string // "tcp" or "udp"
	Host string
	Port int
}

func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// ParseAddr reads LXD's proxy address syntax for TCP and UDP (one port; no ranges).
func ParseAddr(s string) (Addr, error) {
	proto, rest, ok := strings.Cut(s, ":")
	if !ok || (proto != "tcp" && proto != "udp") {
		return Addr{}, fmt.Errorf("%q is not an address like tcp:127.0.0.1:80 (tcp or udp)", s)
	}

	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return Addr{}, fmt.Errorf("%q: %w", s, err)
	}

	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return Addr{}, fmt.Errorf("%q: port %q is not a single port 1-65535", s, port)
	}

	if net.ParseIP(host) == nil {
		return Addr{}, fmt.Errorf("%q: %q is not an IP address", s, host)
	}

	return Addr{Net: proto, Host: host, Port: n}, nil
}

// Main runs the proxy. fd 3, if open, is a pipe on which "ok\n" or an error line is
// written once serving (or failing to).
func Main(args []string) int {
	status := os.NewFile(statusFD, "status")
	report := func(msg string) {
		if status != nil {
			_, _ = status.WriteString(msg + "\n")
			_ = status.Close()
			status = nil
		}
	}

	err := run(args, func() { report("ok") })
	if err != nil {
		report(err.Error())
		fmt.Fprintln(os.Stderr, "berth proxy:", err)
		return 1
	}

	return 0
}

func run(args []string, ready func()) error {
	if len(args) != 4 {
		return fmt.Errorf("usage: %s %s <listen> <connect> (fds 3-5 from berthd)", args[0], Helper)
	}

	// Nobody may inspect or trace us: the memory holds the flows of the container's
	// clients. Per process, so one call covers every thread.
	err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("making the proxy non-dumpable: %w", err)
	}

	// The daemon drops everything before exec; refuse to forward as root if it did not.
	if os.Geteuid() == 0 || os.Getegid() == 0 {
		return fmt.Errorf("refusing to run as root")
	}

	listen, err := ParseAddr(args[2])
	if err != nil {
		return err
	}

	connect, err := ParseAddr(args[3])
	if err != nil {
		return err
	}

	if listen.Net != connect.Net {
		return fmt.Errorf("listen and connect must use the same protocol")
	}

	// We were started inside the container's network namespace: a plain dial reaches
	// its addresses.
	dial := func() (net.Conn, error) { return net.DialTimeout(connect.Net, connect.String(), dialTimeout) }

	lf := os.NewFile(listenFD, "listen")
	done := make(chan error, 1)
	switch listen.Net {
	case "tcp":
		l, err := net.FileListener(lf)
		if err != nil {
			return fmt.Errorf("listening socket: %w", err)
		}

		go func() { done <- serveTCP(l, dial, DefaultLimits) }()
	case "udp":
		pc, err := net.FilePacketConn(lf)
		if err != nil {
			return fmt.Errorf("listening socket: %w", err)
		}

		go func() { done <- serveUDP(pc, dial, DefaultLimits) }()
	}

	_ = lf.Close() // the listener holds its own duplicate

	ready()

	// The pidfd tells when the container's init is gone.
	go func() {
		fds := []unix.PollFd{{Fd: pidFD, Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == nil || err != unix.EINTR {
				done <- nil
				return
			}
		}
	}()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	signal.Ignore(unix.SIGHUP, unix.SIGPIPE)
	select {
	case <-sigs:
		return nil
	case err := <-done:
		return err
	}
}
