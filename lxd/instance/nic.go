package instance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/fileio"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// nic is a NIC device resolved for one start.
type nic struct {
	dev    string           // device name (key of the devices map)
	name   string           // interface name inside the container
	bridge string           // host bridge the host end joins
	net    network.Network  // nil for an unmanaged parent bridge
	mac    net.HardwareAddr // stable: device hwaddr, else volatile.<dev>.hwaddr
	addr   net.IP           // reserved IPv4 address (managed networks)
	host   string           // host end, chosen at attach
}

// nicsPrepare runs before the container starts: it resolves the NIC devices, gives each a
// stable MAC (volatile.<dev>.hwaddr, generated once), reserves their addresses, and points
// the container's resolver at the first managed network's DNS.
func (m *Manager) nicsPrepare(ctx context.Context, inst *db.Instance, devices map[string]map[string]string, rootfs string, ids idmap.Set) ([]*nic, error) {
	names := make([]string, 0, len(devices))
	for dev, d := range devices {
		if d["type"] == "nic" {
			names = append(names, dev)
		}
	}

	if len(names) == 0 {
		return nil, nil
	}

	if m.cfg.Networks == nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "this daemon has no networking")
	}

	sort.Strings(names)
	volatile := map[string]string{}
	nics := []*nic{}
	for _, dev := range names {
		n, err := m.resolveNIC(inst, dev, devices[dev], volatile)
		if err != nil {
			return nil, err
		}

		nics = append(nics, n)
	}

	if len(volatile) > 0 {
		err := m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			return tx.UpdateInstanceConfig(ctx, inst.Name, volatile, nil)
		})
		if err != nil {
			return nil, fmt.Errorf("recording MAC addresses: %w", err)
		}
	}

	for _, n := range nics {
		if n.net == nil {
			continue
		}

		var want net.IP
		if v := devices[n.dev]["ipv4.address"]; v != "" {
			want = net.ParseIP(v)
		}

		var err error
		n.addr, err = n.net.Reserve(inst.Name+"."+n.dev, inst.Name, n.mac, want)
		if err != nil {
			return nil, fmt.Errorf("reserving an address for %s: %w", n.dev, err)
		}
	}

	for _, n := range nics {
		if n.net != nil && rootfs != "" {
			err := writeResolvConf(rootfs, n.net, ids)
			if err != nil {
				m.log.Warn("writing resolv.conf", "instance", inst.Name, "err", err)
			}

			break
		}
	}

	return nics, nil
}

func (m *Manager) resolveNIC(inst *db.Instance, dev string, d map[string]string, volatile map[string]string) (*nic, error) {
	n := &nic{dev: dev, name: d["name"]}
	if n.name == "" {
		n.name = dev
	}

	if !validIfName(n.name) {
		return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: invalid interface name %q", dev, n.name)
	}

	netName := d["network"]
	switch {
	case netName != "":
		if d["nictype"] != "" && d["nictype"] != "bridged" {
			return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: nictype %q cannot be used with network", dev, d["nictype"])
		}
	case d["nictype"] == "bridged" && d["parent"] != "":
		netName = d["parent"]
	default:
		return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: only bridged NICs (network=NAME or nictype=bridged parent=BRIDGE) are supported", dev)
	}

	nw, err := m.cfg.Networks.Get(netName)
	switch {
	case err == nil:
		n.net, n.bridge = nw, nw.Name()
	case d["network"] == "" && ip.LinkExists(netName):
		n.bridge = netName // an unmanaged host bridge: no DHCP or filtering from us
	default:
		return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: network %q not found", dev, netName)
	}

	mac := d["hwaddr"]
	if mac == "" {
		mac = inst.Config["volatile."+dev+".hwaddr"]
	}

	if mac == "" {
		mac = generateMAC()
		volatile["volatile."+dev+".hwaddr"] = mac
	}

	n.mac, err = net.ParseMAC(mac)
	if err != nil || len(n.mac) != 6 {
		return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: invalid hwaddr %q", dev, mac)
	}

	if v := d["ipv4.address"]; v != "" && (net.ParseIP(v) == nil || net.ParseIP(v).To4() == nil) {
		return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: invalid ipv4.address %q", dev, v)
	}

	return n, nil
}

// nicsAttach runs once init's network namespace exists: per NIC, the port filter (first,
// so no frame passes unfiltered), then a veth pair with the peer created inside the
// container under its final name. It records volatile.<dev>.host_name.
func (m *Manager) nicsAttach(ctx context.Context, name string, mon *container.Monitor, nics []*nic) error {
	if len(nics) == 0 {
		return nil
	}

	volatile := map[string]string{}
	for _, n := range nics {
		var err error
		for range 5 {
			n.host = "veth" + randomHex(4)
			if n.net != nil {
				err = n.net.PortAdd(n.host, n.mac, n.addr)
				if err != nil {
					break
				}
			}

			err = ip.VethAdd(ip.Veth{HostName: n.host, Bridge: n.bridge, PID: mon.InitPID(), Name: n.name, HWAddr: n.mac, NoDAD: n.net != nil})
			if !errors.Is(err, ip.ErrExists) {
				break
			}

			if n.net != nil {
				_ = n.net.PortDel(n.host)
			}
		}

		if err != nil {
			m.nicsDetach(nics)
			return fmt.Errorf("attaching %s: %w", n.dev, err)
		}

		volatile["volatile."+n.dev+".host_name"] = n.host
	}

	err := m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateInstanceConfig(ctx, name, volatile, nil)
	})
	if err != nil {
		m.log.Warn("recording host interface names", "instance", name, "err", err)
	}

	return nil
}

// followOnce starts followReboots for a monitor unless it runs already.
func (m *Manager) followOnce(name string, mon *container.Monitor) {
	m.nicMu.Lock()
	defer m.nicMu.Unlock()
	if m.following == nil {
		m.following = map[*container.Monitor]bool{}
	}

	if m.following[mon] {
		return
	}

	m.following[mon] = true
	go func() {
		m.followReboots(name, mon)
		m.nicMu.Lock()
		delete(m.following, mon)
		m.nicMu.Unlock()
	}()
}

// Resume takes up an instance found running at daemon start (Reconcile): its NICs' port
// filters are written again, so that the rules of this berthd reach containers that an
// older one started, and its NICs and devices are re-attached across reboots inside it.
func (m *Manager) Resume(name string) {
	mon := m.monitor(name)
	if mon == nil {
		return
	}

	// In the background: a few netlink and database round trips per instance need not
	// hold up the daemon's start; until then the older rules stay in force.
	go func() {
		err := m.refreshPortFilters(name, mon)
		if err != nil {
			m.log.Warn("refreshing port filters", "instance", name, "err", err)
		}
	}()

	m.followOnce(name, mon)
}

// refreshPortFilters replaces the filters of a running instance's ports (atomically: see
// firewall.PortAdd), with the MACs and addresses its NICs hold.
func (m *Manager) refreshPortFilters(name string, mon *container.Monitor) error {
	unlock := m.lock(name)
	defer unlock()
	if m.monitor(name) != mon || m.cfg.Networks == nil {
		return nil
	}

	ctx := context.Background()
	l, err := m.loadExpanded(ctx, name)
	if err != nil {
		return err
	}

	nics, err := m.nicsPrepare(ctx, l.inst, l.devices, "", l.ids)
	if err != nil {
		return err
	}

	for _, n := range nics {
		host := l.inst.Config["volatile."+n.dev+".host_name"]
		if n.net == nil || host == "" || !ip.LinkExists(host) {
			continue
		}

		err = n.net.PortAdd(host, n.mac, n.addr)
		if err != nil {
			return err
		}
	}

	return nil
}

// nicsDetach undoes nicsAttach for a start that fails.
func (m *Manager) nicsDetach(nics []*nic) {
	for _, n := range nics {
		if n.host == "" {
			continue
		}

		_ = m.dropHostEnd(n.host)
	}
}

// dropHostEnd removes a NIC's host end and its port filters on every network (the
// network package's DropPort); deleting the host end of a veth pair also deletes the end
// inside. A missing one is fine.
func (m *Manager) dropHostEnd(host string) error {
	if m.cfg.Networks == nil {
		return ip.LinkDel(host) // no filters without networks
	}

	return m.cfg.Networks.DropPort(host)
}

// nicsStopped cleans up after a container has ended: the veth pair died with its network
// namespace; its filters, and a host end that lingers, are removed here.
func (m *Manager) nicsStopped(name string) {
	if m.cfg.Networks == nil {
		return
	}

	ctx := context.Background()
	var inst *db.Instance
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		inst, err = tx.GetInstance(ctx, name)
		return err
	})
	if err != nil {
		return
	}

	unset := []string{}
	for k, host := range inst.Config {
		if !strings.HasPrefix(k, "volatile.") || !strings.HasSuffix(k, ".host_name") {
			continue
		}

		err := m.dropHostEnd(host)
		if err != nil {
			m.log.Warn("removing host end of a NIC", "instance", name, "interface", host, "err", err)
		}

		unset = append(unset, k)
	}

	if len(unset) == 0 {
		return
	}

	err = m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateInstanceConfig(ctx, name, nil, unset)
	})
	if err != nil {
		m.log.Warn("clearing host interface names", "instance", name, "err", err)
	}
}

// nicsDelete releases the instance's DHCP reservations and DNS records on every network.
func (m *Manager) nicsDelete(name string) {
	if m.cfg.Networks == nil {
		return
	}

	for _, nw := range m.cfg.Networks.Names() {
		n, err := m.cfg.Networks.Get(nw)
		if err != nil {
			continue
		}

		err = n.Release(name + ".")
		if err != nil {
			m.log.Warn("releasing addresses", "instance", name, "network", nw, "err", err)
		}
	}
}

// resolvMarker starts the resolv.conf Berth writes. A file without it is the user's.
const resolvMarker = "# Written by Berth"

// maxResolvConf bounds what is read of a container's resolv.conf: Berth's own is a few
// lines, anything bigger is the user's (or an attempt to make the daemon read 64 GiB).
const maxResolvConf = 1 << 20

// writeResolvConf points the container at its network's dnsmasq, when the file is the
// image's empty placeholder or one Berth wrote. It runs before the container starts, on
// its rootfs mounted on the host, through fileio: resolved inside the rootfs, never a
// symlink followed at the last component, a FIFO or device never opened, a sparse file
// never read past maxResolvConf, nothing written on a kernel filesystem.
func writeResolvConf(rootfs string, nw network.Network, ids idmap.Set) error {
	root, err := fileio.OpenRoot(rootfs)
	if err != nil {
		return err
	}

	defer root.Close()

	const p = "/etc/resolv.conf"
	cur, err := root.ReadFile(p, maxResolvConf)
	switch {
	case api.StatusErrorCheck(err, http.StatusNotFound):
	case api.StatusErrorCheck(err, http.StatusBadRequest, http.StatusRequestEntityTooLarge):
		return nil // a symlink (systemd-resolved or the user manages it), or not ours
	case err != nil:
		return err
	case strings.TrimSpace(string(cur)) != "" && !strings.HasPrefix(string(cur), resolvMarker):
		return nil
	}

	content := fmt.Sprintf("%s from network %s; remove this line to manage the file yourself.\nnameserver %s\nsearch %s\n",
		resolvMarker, nw.Name(), nw.Gateway(), nw.Domain())
	_, err = root.WriteFile(p, strings.NewReader(content), false, 0o644, fileio.Owner{UID: int(ids.HostUID), GID: int(ids.HostGID)})
	return err
}

// generateMAC returns a random address in LXD's 00:16:3e prefix.
func generateMAC() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("00:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}

	for _, c := range s {
		if c <= ' ' || c == '/' || c == ':' || c > '~' {
			return false
		}
	}

	return true
}
