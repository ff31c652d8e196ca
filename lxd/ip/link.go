package ip

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrExists is returned when a link of that name is already there.
var ErrExists = errors.New("link already exists")

// LinkExists reports whether the host has a link of that name.
func LinkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// LinkAlias returns the alias (IFLA_IFALIAS) of a host link, "" if none or missing.
func LinkAlias(name string) string {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return ""
	}

	return l.Attrs().Alias
}

// LinkDel deletes a host link; a missing link is not an error.
func LinkDel(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}

		return fmt.Errorf("looking up %q: %w", name, err)
	}

	err = netlink.LinkDel(l)
	if err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting link %q: %w", name, err)
	}

	return nil
}

// LinkUp sets a host link up.
func LinkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up %q: %w", name, err)
	}

	err = netlink.LinkSetUp(l)
	if err != nil {
		return fmt.Errorf("setting %q up: %w", name, err)
	}

	return nil
}

// LinkInfo is what Berth reads of a host link.
type LinkInfo struct {
	Name   string
	Type   string // netlink's type: "bridge", "veth", "device", ...
	Alias  string
	Master string // name of the bridge it is enslaved to
	HWAddr net.HardwareAddr
	MTU    int
	Up     bool
	// Loopback is lo (netlink calls it a "device", like a NIC).
	Loopback bool
}

// Links lists the host's links.
func Links() ([]LinkInfo, error) {
	links, err := linkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}

	byIndex := map[int]string{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}

	out := make([]LinkInfo, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, LinkInfo{
			Name:   a.Name,
			Type:   l.Type(),
			Alias:  a.Alias,
			Master: byIndex[a.MasterIndex],
			HWAddr: a.HardwareAddr,
			MTU:    a.MTU,
			Up:     a.Flags&net.FlagUp != 0,

			Loopback: a.Flags&net.FlagLoopback != 0,
		})
	}

	return out, nil
}

// LinkSetAlias sets the alias (IFLA_IFALIAS) of a host link.
func LinkSetAlias(name, alias string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up %q: %w", name, err)
	}

	err = netlink.LinkSetAlias(l, alias)
	if err != nil {
		return fmt.Errorf("setting alias of %q: %w", name, err)
	}

	return nil
}

// LinkNames returns the names of the host's links in one dump: checking hundreds of veths
// one LinkExists at a time costs a round trip each.
func LinkNames() (map[string]bool, error) {
	r := NewNetlinkReader()
	defer r.Close()

	links, err := r.HostLinks()
	if err != nil {
		return nil, err
	}

	out := make(map[string]bool, len(links))
	for name := range links {
		out[name] = true
	}

	return out, nil
}
