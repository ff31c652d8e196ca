// Package proxy is `berthd __proxy`: the forwarder behind a proxy device. It listens on a
// host address and forwards each TCP connection or UDP flow to an address inside a
// container's network namespace, for as long as the container's init lives. It runs as
// its own small process (LXD's forkproxy) so that it outlives daemon restarts.
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

// Helper is the hidden subcommand: berthd __proxy <init pid> <listen> <connect>.
const Helper = "__proxy"

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
// written once listening (or failing to).
func Main(args []string) int {
	status := os.NewFile(3, "status")
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
	if len(args) != 5 {
		return fmt.Errorf("usage: %s %s <init pid> <listen> <connect>", args[0], Helper)
	}

	pid, err := strconv.Atoi(args[2])
	if err != nil || pid <= 0 {
		return fmt.Errorf("bad pid %q", args[2])
	}

	listen, err := ParseAddr(args[3])
	if err != nil {
		return err
	}

	connect, err := ParseAddr(args[4])
	if err != nil {
		return err
	}

	if listen.Net != connect.Net {
		return fmt.Errorf("listen and connect must use the same protocol")
	}

	// The pidfd tells when the container's init is gone; the namespace fd pins its network
	// namespace for our dials.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("opening pidfd of %d: %w", pid, err)
	}

	netns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return fmt.Errorf("opening network namespace of %d: %w", pid, err)
	}

	dial := func() (net.Conn, error) { return dialIn(netns, connect) }

	done := make(chan error, 1)
	switch listen.Net {
	case "tcp":
		l, err := net.Listen("tcp", listen.String())
		if err != nil {
			return err
		}

		go func() { done <- serveTCP(l, dial) }()
	case "udp":
		pc, err := net.ListenPacket("udp", listen.String())
		if err != nil {
			return err
		}

		go func() { done <- serveUDP(pc, dial) }()
	}

	ready()

	go func() {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
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
