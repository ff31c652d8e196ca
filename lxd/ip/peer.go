package ip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A container's network read from the host, without entering its namespace: the host end
// of each veth comes from one dump of the host's links (its counters are the container
// end's, turned around), and what only the namespace knows (its addresses, its loopback)
// from netlink requests that name the namespace by the id the host gave it
// (IFA_TARGET_NETNSID and IFLA_TARGET_NETNSID, Linux 4.20): the kernel answers them on a
// socket of the host's namespace, so no thread is moved into a container per request.

// HostLink is a link of the host's network namespace and, for a veth, where its peer is.
type HostLink struct {
	Index    int
	MTU      int
	Carrier  bool // lower layer up: for a veth, its peer is up too
	Counters Counters
	// PeerIndex is a veth peer's index in the peer's namespace (IFLA_LINK), 0 if none.
	PeerIndex int
	// PeerNetNsID is the host's id of the peer's namespace (IFLA_LINK_NETNSID), -1 when the
	// peer is in the host's namespace or there is none.
	PeerNetNsID int
}

// Limits on what one read takes in: a container can add addresses and links to its own
// namespace without bound (its memory pays), the daemon reads a bounded number.
const (
	maxNetnsAddrs = 256     // address messages read of one namespace
	maxHostLinks  = 1 << 16 // link messages of one host dump
	recvBuffer    = 64 << 10
)

// errTooMany ends a read that reached its limit; the rest of the answer is dropped with the
// socket.
var errTooMany = errors.New("too many netlink messages")

// NetlinkReader reads links and addresses over one netlink route socket of the host's
// namespace, with strict checking on (the kernel honours a target namespace in a dump
// request only then). It is not safe for concurrent use; Close it after a batch.
type NetlinkReader struct {
	fd  int
	seq uint32
	buf []byte
}

// NewNetlinkReader returns a reader; its socket is opened on first use, and again after a
// read that had to drop its socket.
func NewNetlinkReader() *NetlinkReader {
	return &NetlinkReader{fd: -1}
}

func (r *NetlinkReader) open() error {
	if r.fd >= 0 {
		return nil
	}

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening netlink socket: %w", err)
	}

	r.fd = fd
	if r.buf == nil {
		r.buf = make([]byte, recvBuffer)
	}

	err = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	if err == nil {
		// The kernel answers at once; the timeout only keeps a reader from hanging forever.
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	}

	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	}

	if err != nil {
		r.Close()
		return fmt.Errorf("setting up netlink socket: %w", err)
	}

	return nil
}

// Close closes the socket.
func (r *NetlinkReader) Close() {
	if r.fd >= 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}

// query sends req and passes the payload of each answer of type want to fn, at most max
// of them. Past max, the socket is closed with the rest of the answer (the reader is then
// unusable) and errTooMany returned.
func (r *NetlinkReader) query(req *nl.NetlinkRequest, want uint16, max int, fn func(data []byte)) error {
	err := r.open()
	if err != nil {
		return err
	}

	r.seq++
	req.Seq = r.seq
	err = unix.Sendto(r.fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	if err != nil {
		return fmt.Errorf("sending netlink request: %w", err)
	}

	seen := 0
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if err != nil {
			r.Close() // a late answer would confuse the next query
			return fmt.Errorf("reading netlink answer: %w", err)
		}

		msgs, err := syscall.ParseNetlinkMessage(r.buf[:n])
		if err != nil {
			r.Close()
			return fmt.Errorf("parsing netlink answer: %w", err)
		}

		for _, m := range msgs {
			if m.Header.Seq != req.Seq {
				continue // the end of an answer given up on
			}

			switch m.Header.Type {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				// Both may carry an error number; 0 (or none, on DONE) is success.
				if len(m.Data) < 4 {
					return nil
				}

				errno := int32(binary.NativeEndian.Uint32(m.Data[:4]))
				if errno == 0 {
					return nil
				}

				return syscall.Errno(-errno)
			case want:
				seen++
				if seen > max {
					r.Close()
					return errTooMany
				}

				fn(m.Data)
			}

			if m.Header.Flags&unix.NLM_F_MULTI == 0 {
				return nil
			}
		}
	}
}

// HostLinks reads every link of the host's namespace by name, in one dump.
func (r *NetlinkReader) HostLinks() (map[string]HostLink, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))

	out := map[string]HostLink{}
	err := r.query(req, unix.RTM_NEWLINK, maxHostLinks, func(data []byte) {
		name, l, ok := parseHostLink(data)
		if ok {
			out[name] = l
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing host links: %w", err)
	}

	return out, nil
}

func parseHostLink(data []byte) (string, HostLink, bool) {
	if len(data) < unix.SizeofIfInfomsg {
		return "", HostLink{}, false
	}

	msg := nl.DeserializeIfInfomsg(data)
	attrs, err := nl.ParseRouteAttr(data[unix.SizeofIfInfomsg:])
	if err != nil {
		return "", HostLink{}, false
	}

	l := HostLink{Index: int(msg.Index), PeerNetNsID: -1, Carrier: msg.Flags&unix.IFF_LOWER_UP != 0}
	name := ""
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			name = cString(a.Value)
		case unix.IFLA_MTU:
			l.MTU = int(u32(a.Value))
		case unix.IFLA_LINK:
			l.PeerIndex = int(u32(a.Value))
		case unix.IFLA_LINK_NETNSID:
			l.PeerNetNsID = int(int32(u32(a.Value)))
		case unix.IFLA_STATS64:
			l.Counters = stats64(a.Value)
		}
	}

	return name, l, name != ""
}

// Addrs reads the addresses of the interfaces with the given indexes in the namespace the
// host knows as nsid, by index. It reads at most maxNetnsAddrs addresses of the namespace.
func (r *NetlinkReader) Addrs(nsid int, indexes ...int) (map[int][]Addr, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFA_TARGET_NETNSID, nl.Uint32Attr(uint32(nsid))))

	want := map[int]bool{}
	for _, i := range indexes {
		want[i] = true
	}

	out := map[int][]Addr{}
	err := r.query(req, unix.RTM_NEWADDR, maxNetnsAddrs, func(data []byte) {
		index, a, ok := parseAddr(data)
		if ok && want[index] {
			out[index] = append(out[index], a)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing addresses of network namespace %d: %w", nsid, err)
	}

	return out, nil
}

func parseAddr(data []byte) (int, Addr, bool) {
	if len(data) < unix.SizeofIfAddrmsg {
		return 0, Addr{}, false
	}

	msg := nl.DeserializeIfAddrmsg(data)
	attrs, err := nl.ParseRouteAttr(data[unix.SizeofIfAddrmsg:])
	if err != nil {
		return 0, Addr{}, false
	}

	var addr, local net.IP
	flags := uint32(msg.Flags)
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_ADDRESS:
			addr = net.IP(a.Value)
		case unix.IFA_LOCAL:
			local = net.IP(a.Value)
		case unix.IFA_FLAGS:
			flags = u32(a.Value)
		}
	}

	// IPv4 gives the interface's own address as IFA_LOCAL (IFA_ADDRESS is the peer's on a
	// point-to-point link); IPv6 gives IFA_ADDRESS alone.
	if local != nil {
		addr = local
	}

	if len(addr) != net.IPv4len && len(addr) != net.IPv6len {
		return 0, Addr{}, false
	}

	family := "inet"
	if msg.Family == unix.AF_INET6 {
		family = "inet6"
	}

	return int(msg.Index), Addr{Family: family, IP: addr.String(), Prefix: int(msg.Prefixlen), Scope: scopeName(int(msg.Scope)),
		Tentative: flags&unix.IFA_F_TENTATIVE != 0}, true
}

// Link reads one interface of the namespace the host knows as nsid, by index: its name,
// flags, MTU and counters as seen inside (a container's loopback has no host end).
func (r *NetlinkReader) Link(nsid, index int) (Iface, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(nsid))))

	var it Iface
	found := false
	err := r.query(req, unix.RTM_NEWLINK, 1, func(data []byte) {
		it, found = parseNetnsLink(data)
	})
	if err == nil && !found {
		err = fmt.Errorf("%w: index %d", ErrNoLink, index)
	}

	if err != nil {
		return Iface{}, fmt.Errorf("reading link of network namespace %d: %w", nsid, err)
	}

	return it, nil
}

func parseNetnsLink(data []byte) (Iface, bool) {
	if len(data) < unix.SizeofIfInfomsg {
		return Iface{}, false
	}

	msg := nl.DeserializeIfInfomsg(data)
	attrs, err := nl.ParseRouteAttr(data[unix.SizeofIfInfomsg:])
	if err != nil {
		return Iface{}, false
	}

	it := Iface{Loopback: msg.Flags&unix.IFF_LOOPBACK != 0, Up: msg.Flags&unix.IFF_UP != 0, Addrs: []Addr{}}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			it.Name = cString(a.Value)
		case unix.IFLA_MTU:
			it.MTU = int(u32(a.Value))
		case unix.IFLA_ADDRESS:
			it.HWAddr = net.HardwareAddr(a.Value).String()
		case unix.IFLA_STATS64:
			it.Counters = stats64(a.Value)
		}
	}

	return it, true
}

// stats64 reads the counters of a struct rtnl_link_stats64: rx/tx packets, bytes,
// errors and drops, in that order, are its first eight fields.
func stats64(b []byte) Counters {
	if len(b) < 8*8 {
		return Counters{}
	}

	f := func(i int) uint64 { return binary.NativeEndian.Uint64(b[i*8:]) }
	return Counters{
		RxPackets: f(0), TxPackets: f(1), RxBytes: f(2), TxBytes: f(3),
		RxErrors: f(4), TxErrors: f(5), RxDropped: f(6), TxDropped: f(7),
	}
}

func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}

	return binary.NativeEndian.Uint32(b)
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}

	return string(b)
}
