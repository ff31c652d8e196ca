package ip

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Veth describes a pair whose peer is created straight inside a container's network
// namespace: no window where it sits on the host under a temporary name.
type Veth struct {
	HostName string           // host end, enslaved to Bridge
	Bridge   string           // bridge the host end joins
	PID      int              // a process in the target network namespace
	Name     string           // peer name inside (eth0)
	HWAddr   net.HardwareAddr // peer MAC
	MTU      int              // 0 for the bridge's
	// NoDAD turns off IPv6 duplicate address detection on the peer, for a bridge whose
	// port filter already keeps every address to its owner: without it a container's
	// SLAAC address is usable ~3 s later (link-local DAD, then the address's own).
	NoDAD bool
}

// VethAdd creates the pair, sets both ends up, and returns ErrExists if the host name is
// taken. On error nothing is left.
func VethAdd(v Veth) error {
	br, err := netlink.LinkByName(v.Bridge)
	if err != nil {
		return fmt.Errorf("looking up bridge %q: %w", v.Bridge, err)
	}

	mtu := v.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}

	link := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: v.HostName, MTU: mtu, MasterIndex: br.Attrs().Index},
		PeerName:         v.Name,
		PeerHardwareAddr: v.HWAddr,
		PeerNamespace:    netlink.NsPid(v.PID),
		PeerMTU:          uint32(mtu),
	}

	err = netlink.LinkAdd(link)
	if errors.Is(err, unix.EEXIST) {
		return ErrExists
	}

	if err != nil {
		return fmt.Errorf("creating veth %q: %w", v.HostName, err)
	}

	if v.NoDAD {
		err = sysctlIn(v.PID, "/proc/sys/net/ipv6/conf/"+v.Name+"/accept_dad", "0")
		if errors.Is(err, os.ErrNotExist) {
			err = nil // no IPv6 here
		}

		if err != nil {
			_ = netlink.LinkDel(link)
			return fmt.Errorf("turning off DAD on %q: %w", v.Name, err)
		}
	}

	err = netlink.LinkSetUp(link)
	if err == nil {
		err = inNetns(v.PID, func(h *netlink.Handle) error {
			peer, err := h.LinkByName(v.Name)
			if err != nil {
				return err
			}

			return h.LinkSetUp(peer)
		})
	}

	if err != nil {
		_ = netlink.LinkDel(link)
		return fmt.Errorf("setting veth %q up: %w", v.HostName, err)
	}

	return nil
}

// sysctlIn writes a sysctl under /proc/sys/net of the network namespace of pid: those files
// are the opener's namespace's, so it is done from a thread that joins it. The thread is
// never unlocked, so the runtime ends it with its goroutine.
func sysctlIn(pid int, path, value string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPid(pid)
		if err != nil {
			errc <- fmt.Errorf("opening network namespace of %d: %w", pid, err)
			return
		}

		defer ns.Close()
		err = netns.Set(ns)
		if err != nil {
			errc <- fmt.Errorf("entering network namespace of %d: %w", pid, err)
			return
		}

		errc <- writeSysctl(path, value)
	}()

	return <-errc
}

// inNetns runs f with a netlink handle in the network namespace of pid.
func inNetns(pid int, f func(h *netlink.Handle) error) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("opening network namespace of %d: %w", pid, err)
	}

	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("entering network namespace of %d: %w", pid, err)
	}

	defer h.Close()
	return f(h)
}
