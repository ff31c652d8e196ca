package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Raw Ethernet frames, built byte by byte as a container's root can with a packet socket,
// and sent or captured in a network namespace.

// sendFrames sends each frame as is out of iface in the network namespace of pid.
func sendFrames(pid int, iface string, frames ...[]byte) error {
	return inNetns(pid, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}

		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}

		defer func() { _ = unix.Close(fd) }()

		for _, f := range frames {
			err = unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6})
			if err != nil {
				return fmt.Errorf("sending a frame of ethertype %#04x: %w", binary.BigEndian.Uint16(f[12:]), err)
			}
		}

		return nil
	})
}

// capture records every frame iface receives in the network namespace of pid (0: the
// host's) from now on, until stop.
type capture struct {
	fd       int
	mu       sync.Mutex
	frames   [][]byte
	stopping chan struct{}
	done     chan struct{}
}

func startCapture(pid int, iface string) (*capture, error) {
	c := &capture{stopping: make(chan struct{}), done: make(chan struct{})}
	err := inNetns(pid, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}

		proto := int(htons(unix.ETH_P_ALL))
		c.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}

		err = unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index})
		if err == nil {
			err = unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
		}

		if err != nil {
			_ = unix.Close(c.fd)
		}

		return err
	})
	if err != nil {
		return nil, err
	}

	go func() {
		defer close(c.done)
		buf := make([]byte, 65536)
		for {
			select {
			case <-c.stopping:
				return
			default:
			}

			n, from, err := unix.Recvfrom(c.fd, buf, 0)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}

			if err != nil {
				return
			}

			// Incoming only: not what the namespace itself sends.
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}

			c.mu.Lock()
			c.frames = append(c.frames, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	}()

	return c, nil
}

// wait returns the first frame captured that contains marker, nil after timeout.
func (c *capture) wait(marker []byte, timeout time.Duration) []byte {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if f := c.find(marker); f != nil {
			return f
		}

		time.Sleep(20 * time.Millisecond)
	}

	return nil
}

func (c *capture) find(marker []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if bytes.Contains(f, marker) {
			return f
		}
	}

	return nil
}

// stop ends the capture (its reader returns within its 100 ms receive timeout).
func (c *capture) stop() {
	close(c.stopping)
	<-c.done
	_ = unix.Close(c.fd)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func ethFrame(dst, src net.HardwareAddr, typ uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst...), src...), byte(typ>>8), byte(typ))
	return append(f, payload...)
}

// checksum is the Internet checksum of the parts.
func checksum(parts ...[]byte) uint16 {
	var sum uint32
	b := bytes.Join(parts, nil)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}

	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}

	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}

	return ^uint16(sum)
}

// ipv4Packet is an IPv4 header (no options, checksummed) and payload.
func ipv4Packet(src, dst net.IP, proto byte, payload []byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	h = append(append(h, src.To4()...), dst.To4()...)
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return append(h, payload...)
}

// udp4 is a UDP datagram for IPv4 (checksum 0: none, which IPv4 allows).
func udp4(sport, dport uint16, payload []byte) []byte {
	h := binary.BigEndian.AppendUint16(nil, sport)
	h = binary.BigEndian.AppendUint16(h, dport)
	h = binary.BigEndian.AppendUint16(h, uint16(8+len(payload)))
	return append(append(h, 0, 0), payload...)
}

// ipv6Packet is an IPv6 header (hop limit 255) and an upper-layer message of protocol
// next, whose checksum at csumAt (ICMPv6 2, UDP 6) is filled in over the pseudo-header.
func ipv6Packet(src, dst net.IP, next byte, msg []byte, csumAt int) []byte {
	msg = append([]byte(nil), msg...)
	ln := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
	binary.BigEndian.PutUint16(msg[csumAt:], 0)
	binary.BigEndian.PutUint16(msg[csumAt:], checksum(src.To16(), dst.To16(), ln, []byte{0, 0, 0, next}, msg))
	h := []byte{0x60, 0, 0, 0, 0, 0, next, 255}
	binary.BigEndian.PutUint16(h[4:], uint16(len(msg)))
	return append(append(append(h, src.To16()...), dst.To16()...), msg...)
}

func icmpv6Packet(src, dst net.IP, msg []byte) []byte {
	return ipv6Packet(src, dst, unix.IPPROTO_ICMPV6, msg, 2)
}

func udp6Packet(src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	return ipv6Packet(src, dst, unix.IPPROTO_UDP, udp4(sport, dport, payload), 6)
}

// neighborAdvert is an unsolicited NA (override flag) for target, with a target
// link-layer address option when tlla is given.
func neighborAdvert(target net.IP, tlla net.HardwareAddr) []byte {
	m := append([]byte{136, 0, 0, 0, 0x20, 0, 0, 0}, target.To16()...)
	if tlla != nil {
		m = append(append(m, 2, 1), tlla...)
	}

	return m
}

// linkLocalOf is the EUI-64 link-local address of mac.
func linkLocalOf(mac net.HardwareAddr) net.IP {
	return net.IP{0xfe, 0x80, 0, 0, 0, 0, 0, 0, mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]}
}

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesMAC  = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	allNodes6    = net.ParseIP("ff02::1")
)

// dhcpMessage is a DHCP client message (BOOTREQUEST) of type typ for chaddr, with xid,
// ciaddr and options (code, value pairs; 53 and the end are added).
func dhcpMessage(typ byte, xid uint32, chaddr net.HardwareAddr, ciaddr net.IP, opts ...[]byte) []byte {
	b := make([]byte, 236)
	b[0], b[1], b[2] = 1, 1, 6
	binary.BigEndian.PutUint32(b[4:], xid)
	if ciaddr != nil {
		copy(b[12:], ciaddr.To4())
	}

	copy(b[28:], chaddr)
	b = append(b, 99, 130, 83, 99, 53, 1, typ)
	for _, o := range opts {
		b = append(append(b, o[0], byte(len(o)-1)), o[1:]...)
	}

	return append(b, 255)
}

func dhcpOpt(code byte, value []byte) []byte { return append([]byte{code}, value...) }
