package device

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/network"
)

// prepareNICs prepares the NICs among devices, in name order, before a hotplug or a
// refresh: every one is resolved before any new MAC is recorded or address reserved, so a
// bad one changes nothing (resolveNICs), then they get their reservations (reserveNICs).
// A start reserves while it goes on (Prepare), then points the container's resolver at
// the first managed network's DNS (writeNICResolvConf).
func (h *Host) prepareNICs(ctx context.Context, in *Instance, devices map[string]map[string]string) ([]*run, error) {
	runs, err := h.resolveNICs(ctx, in, devices)
	if err != nil {
		return nil, err
	}

	err = reserveNICs(runs)
	if err != nil {
		return nil, err
	}

	return runs, nil
}

// resolveNICs resolves the NICs among devices, in name order, and records the MACs it
// had to make.
func (h *Host) resolveNICs(ctx context.Context, in *Instance, devices map[string]map[string]string) ([]*run, error) {
	names := make([]string, 0, len(devices))
	for dev, d := range devices {
		if isNIC(d) {
			names = append(names, dev)
		}
	}

	sort.Strings(names)
	runs := make([]*run, 0, len(names))
	volatile := map[string]string{}
	for _, dev := range names {
		r := h.run(in, dev, devices[dev], 0)
		_, err := nicDevice{}.prepare(r)
		if err != nil {
			return nil, err
		}

		if r.nic.newMAC != "" {
			volatile[hwaddrKey(dev)] = r.nic.newMAC
		}

		runs = append(runs, r)
	}

	if len(volatile) > 0 {
		err := h.Records.SetVolatile(ctx, in.Name, volatile, nil)
		if err != nil {
			return nil, fmt.Errorf("recording MAC addresses: %w", err)
		}
	}

	return runs, nil
}

// reserveNICs gives resolved NICs their DHCP reservations.
func reserveNICs(runs []*run) error {
	for _, r := range runs {
		err := nicDevice{}.reserve(r)
		if err != nil {
			return err
		}
	}

	return nil
}

// writeNICResolvConf points the instance's resolv.conf (unless it is the image's or the
// user's) at the network of its first managed NIC. A failure is logged: the container
// boots without our resolver.
func (h *Host) writeNICResolvConf(in *Instance, runs []*run) {
	for _, r := range runs {
		if r.nic.net != nil && in.Rootfs != "" {
			err := writeResolvConf(in.Rootfs, r.nic.net, in.IDs)
			if err != nil {
				h.Log.Warn("writing resolv.conf", "instance", in.Name, "err", err)
			}

			return
		}
	}
}

// attachNICs runs the started step of prepared NICs in the network namespace of init pid:
// all of them or, on an error, none. It records volatile.<dev>.host_name.
func (h *Host) attachNICs(ctx context.Context, in *Instance, pid int, runs []*run) error {
	if len(runs) == 0 {
		return nil
	}

	volatile := map[string]string{}
	for _, r := range runs {
		r.initPID = pid
		err := nicDevice{}.started(r)
		if err != nil {
			h.detachNICs(runs)
			return fmt.Errorf("attaching %s: %w", r.name, err)
		}

		volatile[hostNameKey(r.name)] = r.nic.host
	}

	err := h.Records.SetVolatile(ctx, in.Name, volatile, nil)
	if err != nil {
		h.Log.Warn("recording host interface names", "instance", in.Name, "err", err)
	}

	return nil
}

// detachNICs undoes attachNICs for a start or a hotplug that fails.
func (h *Host) detachNICs(runs []*run) {
	for _, r := range runs {
		if r.nic.host != "" {
			_ = dropHostEnd(h.Networks, r.nic.host)
		}
	}
}

// dropHostEnd removes a NIC's host end and its port filters on every network (the
// network package's DropPort); deleting the host end of a veth pair also deletes the
// end inside. A missing one is fine.
func dropHostEnd(nets *network.Manager, host string) error {
	if nets == nil {
		return ip.LinkDel(host) // no filters without networks
	}

	return nets.DropPort(host)
}

// release forgets the reservations of owner (an "<instance>.<device>" key, or
// "<instance>." for all its NICs) on every network; failures go to warn, if set.
func release(nets *network.Manager, owner string, warn func(nw string, err error)) {
	if nets == nil {
		return
	}

	for _, name := range nets.Names() {
		n, err := nets.Get(name)
		if err != nil {
			continue
		}

		err = n.Release(owner)
		if err != nil && warn != nil {
			warn(name, err)
		}
	}
}

// RefreshPorts replaces the filters of a running instance's ports (atomically: see
// firewall.PortAdd) with the MACs and addresses its NICs hold, so that the rules of this
// berthd reach containers an older one started.
func (h *Host) RefreshPorts(ctx context.Context, in *Instance, devices map[string]map[string]string) error {
	if h.Networks == nil {
		return nil
	}

	runs, err := h.prepareNICs(ctx, in, devices)
	if err != nil {
		return err
	}

	// One NIC's failure does not keep the others (on other networks, perhaps) unrefreshed.
	var errs []error
	for _, r := range runs {
		host := in.Config[hostNameKey(r.name)]
		if r.nic.net == nil || host == "" || !ip.LinkExists(host) {
			continue
		}

		err = r.nic.net.PortAdd(host, r.nic.mac, r.nic.addr, r.nic.acl)
		if err != nil {
			errs = append(errs, fmt.Errorf("NIC %s: %w", r.name, err))
		}
	}

	return errors.Join(errs...)
}

// stoppedNICs cleans up after a container has ended: the veth pairs died with its network
// namespace; their filters, and a host end that lingers, are removed here, and the host
// names recorded for them cleared.
func (h *Host) stoppedNICs(name string) {
	if h.Networks == nil {
		return
	}

	ctx := context.Background()
	config, err := h.Records.Volatile(ctx, name)
	if err != nil {
		return
	}

	unset := []string{}
	for k, host := range config {
		if !isHostNameKey(k) {
			continue
		}

		err := dropHostEnd(h.Networks, host)
		if err != nil {
			h.Log.Warn("removing host end of a NIC", "instance", name, "interface", host, "err", err)
		}

		unset = append(unset, k)
	}

	if len(unset) == 0 {
		return
	}

	err = h.Records.SetVolatile(ctx, name, nil, unset)
	if err != nil {
		h.Log.Warn("clearing host interface names", "instance", name, "err", err)
	}
}

// Deleted releases a deleted instance's DHCP reservations and DNS records on every
// network.
func (h *Host) Deleted(name string) {
	release(h.Networks, name+".", func(nw string, err error) {
		h.Log.Warn("releasing addresses", "instance", name, "network", nw, "err", err)
	})
}
