package ip

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// A netlink dump that runs while its table changes (a veth made or removed for another
// container) ends flagged NLM_F_DUMP_INTR, and vishvananda/netlink then returns what it
// read with ErrDumpInterrupted: entries may be missing or repeated. On a host launching
// containers in parallel that is common: a network's PUT failed so in the integration
// suite ("listing links: results may be incomplete or inconsistent"). Every dump here is
// read again until it comes back whole, dumpAttempts times at most.
const dumpAttempts = 5

// whole runs dump until it is not interrupted, or dumpAttempts times; the last answer
// stands.
func whole[T any](dump func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		out, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || attempt == dumpAttempts {
			return out, err
		}
	}
}

// linkList is netlink.LinkList, read whole.
func linkList() ([]netlink.Link, error) { return whole(netlink.LinkList) }

// addrList is netlink.AddrList, read whole.
func addrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	return whole(func() ([]netlink.Addr, error) { return netlink.AddrList(l, family) })
}
