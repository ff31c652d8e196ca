package ip

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// BridgeAdd creates a bridge tagged with alias (so Berth can recognise its own bridges). It
// returns ErrExists if the name is taken: creation is the atomic claim on a name.
//
// The bridge gets a fixed random MAC (00:16:3e prefix): without one it takes the lowest MAC
// of its ports and changes it as containers come and go, and every container's ARP entry
// for the gateway goes stale for seconds.
func BridgeAdd(name, alias string, mtu int) error {
	mac := make(net.HardwareAddr, 6)
	_, err := rand.Read(mac[3:])
	if err != nil {
		return fmt.Errorf("generating a MAC for %q: %w", name, err)
	}

	copy(mac, []byte{0x00, 0x16, 0x3e})
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu, HardwareAddr: mac}}
	err = netlink.LinkAdd(br)
	if errors.Is(err, unix.EEXIST) {
		return ErrExists
	}

	if err != nil {
		return fmt.Errorf("creating bridge %q: %w", name, err)
	}

	if alias != "" {
		err = netlink.LinkSetAlias(br, alias)
		if err != nil {
			_ = netlink.LinkDel(br)
			return fmt.Errorf("setting alias of %q: %w", name, err)
		}
	}

	return nil
}

// AddrReplace makes cidr (e.g. 10.1.2.1/24) an address of link, idempotently, and removes
// any other IPv4 address it has (a changed ipv4.address).
func AddrReplace(link string, cidr *net.IPNet) error {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return fmt.Errorf("looking up %q: %w", link, err)
	}

	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("listing addresses of %q: %w", link, err)
	}

	for _, a := range addrs {
		if a.IPNet.String() != cidr.String() {
			err := netlink.AddrDel(l, &a)
			if err != nil {
				return fmt.Errorf("removing %s from %q: %w", a.IPNet, link, err)
			}
		}
	}

	err = netlink.AddrReplace(l, &netlink.Addr{IPNet: cidr})
	if err != nil {
		return fmt.Errorf("adding %s to %q: %w", cidr, link, err)
	}

	return nil
}

// HostNets returns every IPv4 network the host already uses: its addresses' subnets and
// its routes' destinations, except those on the links named in skip (a bridge of ours that
// is being reconfigured) and the default route.
func HostNets(skip ...string) ([]*net.IPNet, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}

	skipIdx := map[int]bool{}
	for _, l := range links {
		for _, s := range skip {
			if l.Attrs().Name == s {
				skipIdx[l.Attrs().Index] = true
			}
		}
	}

	out := []*net.IPNet{}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}

	for _, a := range addrs {
		if skipIdx[a.LinkIndex] {
			continue
		}

		out = append(out, &net.IPNet{IP: a.IP.Mask(a.Mask), Mask: a.Mask})
	}

	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}

	for _, r := range routes {
		if r.Dst == nil || skipIdx[r.LinkIndex] {
			continue
		}

		ones, _ := r.Dst.Mask.Size()
		if ones == 0 || r.Dst.IP.IsLoopback() {
			continue
		}

		out = append(out, r.Dst)
	}

	return out, nil
}

// SetForwarding turns on IPv4 forwarding, needed for NAT.
func SetForwarding() error {
	return writeSysctl("/proc/sys/net/ipv4/ip_forward", "1")
}
