package ip

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// LinkRename renames a host link and sets its alias; the kernel wants the link down for
// the rename, and it is left down (the caller brings it up when it is configured).
func LinkRename(name, newName, alias string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up %q: %w", name, err)
	}

	err = netlink.LinkSetDown(l)
	if err != nil {
		return fmt.Errorf("setting %q down: %w", name, err)
	}

	err = netlink.LinkSetName(l, newName)
	if err != nil {
		return fmt.Errorf("renaming %q to %q: %w", name, newName, err)
	}

	err = netlink.LinkSetAlias(l, alias)
	if err != nil {
		return fmt.Errorf("setting alias of %q: %w", newName, err)
	}

	return nil
}
