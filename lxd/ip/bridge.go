package ip

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

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

// AddrReplace makes cidr (e.g. 10.1.2.1/24 or fd42:1:2:3::1/64) an address of link,
// idempotently, and removes any other global address of its family (a changed
// ipv4.address or ipv6.address); link-local IPv6 addresses stay. An IPv6 address skips
// duplicate address detection: dnsmasq binds it at once, and the bridge owns its prefix.
func AddrReplace(link string, cidr *net.IPNet) error {
	family := netlink.FAMILY_V4
	addr := &netlink.Addr{IPNet: cidr}
	if cidr.IP.To4() == nil {
		family, addr.Flags = netlink.FAMILY_V6, unix.IFA_F_NODAD
	}

	l, err := removeGlobalAddrs(link, family, cidr)
	if err != nil {
		return err
	}

	err = netlink.AddrReplace(l, addr)
	if err != nil {
		return fmt.Errorf("adding %s to %q: %w", cidr, link, err)
	}

	return nil
}

// AddrDelGlobal6 removes link's global IPv6 addresses (ipv6.address turned to none).
func AddrDelGlobal6(link string) error {
	_, err := removeGlobalAddrs(link, netlink.FAMILY_V6, nil)
	return err
}

// removeGlobalAddrs removes link's global addresses of family other than keep.
func removeGlobalAddrs(link string, family int, keep *net.IPNet) (netlink.Link, error) {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return nil, fmt.Errorf("looking up %q: %w", link, err)
	}

	addrs, err := addrList(l, family)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %q: %w", link, err)
	}

	for _, a := range addrs {
		if a.Scope != unix.RT_SCOPE_UNIVERSE || (keep != nil && a.IPNet.String() == keep.String()) {
			continue
		}

		err := netlink.AddrDel(l, &a)
		if err != nil {
			return nil, fmt.Errorf("removing %s from %q: %w", a.IPNet, link, err)
		}
	}

	return l, nil
}

// HostNets returns every IPv4 network the host already uses: its addresses' subnets and
// its routes' destinations, except those on the links named in skip (a bridge of ours that
// is being reconfigured) and the default route.
func HostNets(skip ...string) ([]*net.IPNet, error) { return hostNets(netlink.FAMILY_V4, skip) }

// HostNets6 is HostNets for IPv6; link-local and multicast networks do not count.
func HostNets6(skip ...string) ([]*net.IPNet, error) { return hostNets(netlink.FAMILY_V6, skip) }

func hostNets(family int, skip []string) ([]*net.IPNet, error) {
	links, err := linkList()
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

	// Every IPv6 link has those: they are never what a network of ours is given.
	local := func(n *net.IPNet) bool { return n.IP.IsLinkLocalUnicast() || n.IP.IsMulticast() }

	out := []*net.IPNet{}
	addrs, err := addrList(nil, family)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}

	for _, a := range addrs {
		n := &net.IPNet{IP: a.IP.Mask(a.Mask), Mask: a.Mask}
		if !skipIdx[a.LinkIndex] && !local(n) {
			out = append(out, n)
		}
	}

	routes, err := whole(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}

	for _, r := range routes {
		if r.Dst == nil || skipIdx[r.LinkIndex] || local(r.Dst) || r.Dst.IP.IsLoopback() {
			continue
		}

		if ones, _ := r.Dst.Mask.Size(); ones > 0 {
			out = append(out, r.Dst)
		}
	}

	return out, nil
}

// SetForwarding turns on IPv4 forwarding, needed for NAT.
func SetForwarding() error {
	return writeSysctl("/proc/sys/net/ipv4/ip_forward", "1")
}

// SetForwarding6 turns on IPv6 forwarding, as a bridge with an IPv6 prefix routes. A
// forwarding host ignores router advertisements where accept_ra is 1, so an interface
// configured by them (a host's uplink) is first moved to 2, "even when forwarding", as
// LXD does: the host keeps its own IPv6 configuration.
func SetForwarding6() error {
	const conf = "/proc/sys/net/ipv6/conf"
	cur, err := os.ReadFile(conf + "/all/forwarding")
	if err == nil && strings.TrimSpace(string(cur)) == "1" {
		return nil
	}

	entries, err := os.ReadDir(conf)
	if err != nil {
		return fmt.Errorf("listing IPv6 interfaces: %w", err)
	}

	for _, e := range entries {
		p := filepath.Join(conf, e.Name(), "accept_ra")
		v, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(v)) == "1" {
			err = writeSysctl(p, "2")
			if err != nil {
				return err
			}
		}
	}

	return writeSysctl(conf+"/all/forwarding", "1")
}

// IPv6Available reports whether the host runs IPv6 (not disabled on its command line or
// by sysctl).
func IPv6Available() bool {
	v, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
	return err == nil && strings.TrimSpace(string(v)) == "0"
}

// RouterOnly makes link an IPv6 router port: it never configures itself from router
// advertisements (it sends them) and keeps IPv6 on.
func RouterOnly(link string) error {
	for key, v := range map[string]string{"accept_ra": "0", "autoconf": "0", "disable_ipv6": "0"} {
		err := writeSysctl(filepath.Join("/proc/sys/net/ipv6/conf", link, key), v)
		if err != nil {
			return err
		}
	}

	return nil
}
