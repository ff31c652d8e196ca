package ip

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoLink is a host interface that does not exist.
var ErrNoLink = errors.New("no such interface")

// Bridge is what sysfs says of a bridge.
type Bridge struct {
	ID            string
	STP           bool
	ForwardDelay  uint64 // centiseconds, as the kernel counts it
	VLANDefault   uint64
	VLANFiltering bool
	Ports         []string
}

// HostInterface reads one interface of the host's network namespace, with its
// addresses and counters, and its bridge settings and ports if it is a bridge (nil
// otherwise).
func HostInterface(name string) (Iface, *Bridge, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return Iface{}, nil, fmt.Errorf("%w: %s", ErrNoLink, name)
		}

		return Iface{}, nil, err
	}

	it := ifaceOf(l)

	addrs, err := addrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return Iface{}, nil, err
	}

	for _, a := range addrs {
		it.Addrs = append(it.Addrs, addrOf(a))
	}

	if l.Type() != "bridge" {
		return it, nil, nil
	}

	br, err := bridgeOf(l)

	return it, br, err
}

func bridgeOf(l netlink.Link) (*Bridge, error) {
	dir := filepath.Join("/sys/class/net", l.Attrs().Name, "bridge")
	num := func(f string) uint64 {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n
	}

	id, _ := os.ReadFile(filepath.Join(dir, "bridge_id"))
	br := &Bridge{
		ID:            strings.TrimSpace(string(id)),
		STP:           num("stp_state") != 0,
		ForwardDelay:  num("forward_delay"),
		VLANDefault:   num("default_pvid"),
		VLANFiltering: num("vlan_filtering") != 0,
		Ports:         []string{},
	}

	links, err := linkList()
	if err != nil {
		return nil, err
	}

	for _, p := range links {
		if p.Attrs().MasterIndex == l.Attrs().Index {
			br.Ports = append(br.Ports, p.Attrs().Name)
		}
	}

	sort.Strings(br.Ports)

	return br, nil
}

// ifaceOf is the Iface of a link, without addresses.
func ifaceOf(l netlink.Link) Iface {
	a := l.Attrs()
	it := Iface{
		Name:     a.Name,
		Loopback: a.Flags&net.FlagLoopback != 0,
		Up:       a.Flags&net.FlagUp != 0,
		HWAddr:   a.HardwareAddr.String(),
		MTU:      a.MTU,
		Addrs:    []Addr{},
	}

	if s := a.Statistics; s != nil {
		it.Counters = Counters{
			RxBytes: s.RxBytes, TxBytes: s.TxBytes, RxPackets: s.RxPackets, TxPackets: s.TxPackets,
			RxErrors: s.RxErrors, TxErrors: s.TxErrors, RxDropped: s.RxDropped, TxDropped: s.TxDropped,
		}
	}

	return it
}

func addrOf(a netlink.Addr) Addr {
	family := "inet"
	if a.IP.To4() == nil {
		family = "inet6"
	}

	ones, _ := a.Mask.Size()

	return Addr{Family: family, IP: a.IP.String(), Prefix: ones, Scope: scopeName(a.Scope),
		Tentative: a.Flags&unix.IFA_F_TENTATIVE != 0}
}
