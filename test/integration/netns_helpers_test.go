package integration

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// inNetns runs f on a thread that joined the network namespace of process pid (0: stay in
// the host's): sockets f opens live there, and may be used from any goroutine afterwards.
func inNetns(pid int, f func() error) error {
	if pid == 0 {
		return inNetnsPath("", f)
	}

	return inNetnsPath(fmt.Sprintf("/proc/%d/ns/net", pid), f)
}

// inNetnsPath runs f on a thread that joined the network namespace at path ("": stay in
// the host's). The thread is never unlocked, so the runtime ends it with the goroutine.
func inNetnsPath(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if path != "" {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- err
				return
			}

			err = unix.Setns(fd, unix.CLONE_NEWNET)
			_ = unix.Close(fd)
			if err != nil {
				errc <- fmt.Errorf("joining the network namespace %s: %w", path, err)
				return
			}
		}

		errc <- f()
	}()

	return <-errc
}

// sendRouterAdvert sends, from the namespace of pid out of iface, an IPv6 router
// advertisement to all nodes that offers prefix/64 for SLAAC (router lifetime 0: no default
// route).
func sendRouterAdvert(pid int, iface string, prefix net.IP) error {
	ra := []byte{
		134, 0, 0, 0, // type, code, checksum (the kernel fills it)
		64, 0, 0, 0, // hop limit, flags, router lifetime 0
		0, 0, 0, 0, 0, 0, 0, 0, // reachable, retransmit timers
		3, 4, 64, 0xc0, // prefix information: on-link, autonomous
		0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, // valid 86400 s, preferred 14400 s
		0, 0, 0, 0,
	}

	return sendICMPv6(pid, iface, append(ra, prefix.To16()...))
}

// sendNeighborAdvert sends, from the namespace of pid out of iface, an unsolicited
// neighbour advertisement to all nodes saying that target is at mac (override flag set).
func sendNeighborAdvert(pid int, iface string, target net.IP, mac net.HardwareAddr) error {
	na := []byte{136, 0, 0, 0, 0x20, 0, 0, 0}
	na = append(na, target.To16()...)
	na = append(na, 2, 1) // target link-layer address option
	na = append(na, mac...)

	return sendICMPv6(pid, iface, na)
}

// sendICMPv6 sends msg to all other nodes on iface, from the namespace of pid, with hop
// limit 255 (neighbour discovery ignores anything else).
func sendICMPv6(pid int, iface string, msg []byte) error {
	return inNetns(pid, func() error {
		c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
		if err != nil {
			return err
		}

		defer func() { _ = c.Close() }()

		rc, err := c.(*net.IPConn).SyscallConn()
		if err != nil {
			return err
		}

		var serr error

		// Not looped back: the sender would take its own advertisement.
		err = rc.Control(func(fd uintptr) {
			serr = errors.Join(unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255),
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0))
		})
		if err != nil || serr != nil {
			return fmt.Errorf("setting hop limit and no loop: %v %v", err, serr)
		}

		// The zone by index, looked up here: Go's zone cache is process-wide, and a name
		// such as eth0 has another index in every namespace the tests use at once.
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}

		_, err = c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: strconv.Itoa(ifi.Index)})
		return err
	})
}

// udpFrom sends payload from the namespace of pid, from src:srcPort, to dst.
func udpFrom(pid int, src net.IP, srcPort int, dst *net.UDPAddr, payload string) error {
	return inNetns(pid, func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: src, Port: srcPort})
		if err != nil {
			return err
		}

		defer func() { _ = c.Close() }()

		_, err = c.WriteToUDP([]byte(payload), dst)
		return err
	})
}
