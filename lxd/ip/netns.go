package ip

import (
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addr is one address of an interface.
type Addr struct {
	Family string // "inet" or "inet6"
	IP     string
	Prefix int
	Scope  string // "global", "link" or "local"
	// Tentative is an IPv6 address still in duplicate address detection: not usable yet.
	Tentative bool
}

// Counters are an interface's traffic counters.
type Counters struct {
	RxBytes, TxBytes, RxPackets, TxPackets   uint64
	RxErrors, TxErrors, RxDropped, TxDropped uint64
}

// Iface is an interface inside a container, as the instance state reports it.
type Iface struct {
	Name     string
	Loopback bool
	Up       bool
	HWAddr   string
	MTU      int
	HostName string // host end of a veth, "" for other links
	Addrs    []Addr
	Counters Counters
}

// Interfaces lists the interfaces of the network namespace of pid with their addresses
// and counters, in two netlink dumps.
func Interfaces(pid int) ([]Iface, error) {
	var links []netlink.Link
	var addrs []netlink.Addr
	err := inNetns(pid, func(h *netlink.Handle) error {
		var err error
		links, err = whole(h.LinkList)
		if err != nil {
			return err
		}

		addrs, err = whole(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
		return err
	})
	if err != nil {
		return nil, err
	}

	byIndex := map[int]*Iface{}
	out := make([]Iface, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		it := ifaceOf(l)

		// A veth's IFLA_LINK is its peer's index in the peer's namespace. Only a peer in
		// another namespace (IFLA_LINK_NETNSID set) can be on the host, and only a host
		// veth pointing back at this index is that peer: a pair made inside the
		// container, or moved to a namespace of its own, must not name a host link.
		if _, ok := l.(*netlink.Veth); ok && a.ParentIndex > 0 && a.NetNsID >= 0 {
			host, err := netlink.LinkByIndex(a.ParentIndex)
			if err == nil {
				_, isVeth := host.(*netlink.Veth)
				if isVeth && host.Attrs().ParentIndex == a.Index && host.Attrs().NetNsID >= 0 {
					it.HostName = host.Attrs().Name
				}
			}
		}

		out = append(out, it)
	}

	for i := range out {
		byIndex[links[i].Attrs().Index] = &out[i]
	}

	for _, a := range addrs {
		it := byIndex[a.LinkIndex]
		if it == nil {
			continue
		}

		it.Addrs = append(it.Addrs, addrOf(a))
	}

	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func scopeName(s int) string {
	switch s {
	case unix.RT_SCOPE_LINK:
		return "link"
	case unix.RT_SCOPE_HOST:
		return "local"
	}

	return "global"
}
