package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// Manager is the registry of this daemon's networks.
type Manager struct {
	dir string // $BERTH_DIR/networks
	log *slog.Logger

	mu   sync.Mutex
	nets map[string]Network

	opMu sync.Mutex // held across a whole create/update/delete (Lock)

	acl ACLHooks // set once, before any network is loaded
}

// SetACLHooks connects the networks to the ACLs; call before Load.
func (m *Manager) SetACLHooks(h ACLHooks) { m.acl = h }

// CheckACLs refuses ACL names that do not exist (any name without hooks).
func (m *Manager) CheckACLs(names []string) error {
	if len(names) == 0 {
		return nil
	}

	if m.acl.Check == nil {
		return api.StatusErrorf(http.StatusBadRequest, "network ACLs are not available")
	}

	return m.acl.Check(names)
}

// NewManager returns an empty registry keeping its files under dir.
func NewManager(dir string, log *slog.Logger) *Manager {
	return &Manager{dir: dir, log: log, nets: map[string]Network{}}
}

func (m *Manager) newNetwork(name, typ string, config map[string]string) (Network, error) {
	switch typ {
	case "bridge", "":
		b, err := newBridge(filepath.Join(m.dir, name), name, config, m.log)
		if err != nil {
			return nil, err
		}

		b.aclApply = m.acl.Apply
		return b, nil
	}

	return nil, api.StatusErrorf(http.StatusBadRequest, "network type %q is not supported (only bridge)", typ)
}

// Load registers a network from the database and starts it (adopting what runs). A network
// that fails to start stays registered with status Errored.
func (m *Manager) Load(name, typ string, config map[string]string) error {
	n, err := m.newNetwork(name, typ, config)
	if err != nil {
		return err
	}

	m.mu.Lock()
	m.nets[name] = n
	m.mu.Unlock()
	return n.Start()
}

// Create makes and starts a new network; on failure nothing is left of it. config must be
// validated and complete (see FillDefaults).
func (m *Manager) Create(name, typ string, config map[string]string) (Network, error) {
	m.mu.Lock()
	_, ok := m.nets[name]
	m.mu.Unlock()
	if ok {
		return nil, api.StatusErrorf(http.StatusConflict, "network %q already exists", name)
	}

	if ip.LinkExists(name) {
		return nil, api.StatusErrorf(http.StatusConflict, "a host interface named %q already exists", name)
	}

	n, err := m.newNetwork(name, typ, config)
	if err != nil {
		return nil, err
	}

	err = n.Start()
	if err != nil {
		derr := n.Delete()
		if derr != nil {
			m.log.Warn("cleaning up failed network", "network", name, "err", derr)
		}

		return nil, err
	}

	m.mu.Lock()
	m.nets[name] = n
	m.mu.Unlock()
	return n, nil
}

// Get returns a registered network.
func (m *Manager) Get(name string) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nets[name]
	if !ok {
		return nil, api.StatusErrorf(http.StatusNotFound, "network %q not found", name)
	}

	return n, nil
}

// ACLsWritten records whether lxd/networks' write of network name's ACL rules succeeded:
// after a failure, the network's next port writes them again (see bridge.PortAdd).
func (m *Manager) ACLsWritten(name string, ok bool) {
	m.mu.Lock()
	n := m.nets[name]
	m.mu.Unlock()
	if b, isBridge := n.(*bridge); isBridge {
		b.aclsWritten(ok)
	}
}

// Names lists the registered networks, sorted.
func (m *Manager) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.nets))
	for n := range m.nets {
		out = append(out, n)
	}

	sort.Strings(out)
	return out
}

// DropPort tears down a NIC's host end: its filtering on every network (the NIC may have
// been attached to any of them: its device may have changed network since), then the
// link itself; deleting the host end of a veth pair deletes the end inside too. A missing
// link is fine.
func (m *Manager) DropPort(port string) error {
	m.mu.Lock()
	nets := make([]Network, 0, len(m.nets))
	for _, n := range m.nets {
		nets = append(nets, n)
	}

	m.mu.Unlock()
	for _, n := range nets {
		_ = n.PortDel(port)
	}

	return ip.LinkDel(port)
}

// Delete tears a network down and forgets it.
func (m *Manager) Delete(name string) error {
	n, err := m.Get(name)
	if err != nil {
		return err
	}

	err = n.Delete()
	if err != nil {
		return err
	}

	m.mu.Lock()
	delete(m.nets, name)
	m.mu.Unlock()
	return nil
}

// Close stops supervising every network; they keep running.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nets {
		n.Close()
	}
}

// Subnets returns the IPv4 subnets of the registered networks except skip.
func (m *Manager) Subnets(skip string) []*net.IPNet {
	return m.networksOf(skip, "ipv4.address", ParseGateway)
}

// Prefixes6 returns the IPv6 prefixes of the registered networks except skip.
func (m *Manager) Prefixes6(skip string) []*net.IPNet {
	return m.networksOf(skip, "ipv6.address", ParseGateway6)
}

// networksOf returns what parse reads from key of each registered network except skip.
func (m *Manager) networksOf(skip, key string, parse func(string) (net.IP, *net.IPNet, error)) []*net.IPNet {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*net.IPNet{}
	for name, n := range m.nets {
		if name == skip {
			continue
		}

		_, subnet, err := parse(n.Config()[key])
		if err == nil {
			out = append(out, subnet)
		}
	}

	return out
}

// FillDefaults validates a new network's config and completes it: a free subnet for
// ipv4.address "auto" or unset, a random unique local /64 for ipv6.address "auto" or
// unset (none on a host without IPv6), NAT on for both. An explicit subnet or prefix must
// not overlap the host's or another network's: 400.
func (m *Manager) FillDefaults(name string, config map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range config {
		out[k] = v
	}

	err := ValidateConfig(out)
	if err != nil {
		return nil, err
	}

	taken := m.Subnets(name)
	switch out["ipv4.address"] {
	case "", "auto":
		out["ipv4.address"], err = PickSubnet(taken, AutoPrefix)
		if err != nil {
			return nil, err
		}
	default:
		err = CheckSubnet(out["ipv4.address"], name, taken)
		if err != nil {
			return nil, err
		}
	}

	if out["ipv4.nat"] == "" {
		out["ipv4.nat"] = "true"
	}

	err = m.fillIPv6(name, out, "")
	if err != nil {
		return nil, err
	}

	return out, nil
}

// FillUpdate validates and completes the config that replaces a network's cur: an unset or
// "auto" ipv4.address keeps the current subnet, so that a PUT without it does not
// renumber; an unset ipv6.address keeps the current one, "auto" too unless there is none.
// A changed subnet or prefix must not overlap others: 400.
func (m *Manager) FillUpdate(name string, cur, config map[string]string) error {
	if config["ipv4.address"] == "" || config["ipv4.address"] == "auto" {
		config["ipv4.address"] = cur["ipv4.address"]
	}

	if config["ipv6.address"] == "" {
		config["ipv6.address"] = cur["ipv6.address"]
	}

	err := ValidateConfig(config)
	if err != nil {
		return err
	}

	if config["ipv4.address"] != cur["ipv4.address"] {
		err = CheckSubnet(config["ipv4.address"], name, m.Subnets(name))
		if err != nil {
			return err
		}
	}

	return m.fillIPv6(name, config, cur["ipv6.address"])
}

// fillIPv6 completes ipv6.address ("auto" or unset: cur if that is a prefix, else a new
// one; on a host without IPv6, none) and ipv6.nat, and checks a new prefix.
func (m *Manager) fillIPv6(name string, config map[string]string, cur string) error {
	v := config["ipv6.address"]
	switch {
	case v == "" || v == "auto":
		if _, _, err := ParseGateway6(cur); err == nil {
			config["ipv6.address"] = cur
			break
		}

		if !ip.IPv6Available() {
			if v == "auto" && cur != "" {
				return api.StatusErrorf(http.StatusBadRequest, "invalid ipv6.address: IPv6 is disabled on this host")
			}

			config["ipv6.address"] = "none"
			break
		}

		var err error
		config["ipv6.address"], err = PickPrefix6(m.Prefixes6(name))
		if err != nil {
			return err
		}
	case v != "none" && v != cur:
		err := CheckPrefix6(v, name, m.Prefixes6(name))
		if err != nil {
			return err
		}
	}

	if config["ipv6.nat"] == "" && config["ipv6.address"] != "none" {
		config["ipv6.nat"] = "true"
	}

	return nil
}

// FreeBridgeName returns the first prefixN (N from 0) that is neither a host interface nor
// a registered network.
func (m *Manager) FreeBridgeName(prefix string) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		_, err := m.Get(name)
		if err != nil && !ip.LinkExists(name) {
			return name
		}
	}
}

// RemoveOrphans deletes Berth bridges whose state directory is gone (a daemon whose
// directory was removed without deleting its networks, as test harnesses do): the dnsmasq
// named in the bridge's alias, if it is still that network's, then the tables and bridge.
func RemoveOrphans(log *slog.Logger) {
	links, err := ip.Links()
	if err != nil {
		return
	}

	for _, l := range links {
		pid, dir, ok := parseAlias(l.Alias)
		if !ok || l.Type != "bridge" {
			continue
		}

		_, err := os.Stat(dir)
		if !errors.Is(err, os.ErrNotExist) {
			continue
		}

		log.Info("removing network left by a deleted state directory", "bridge", l.Name, "dir", dir)
		if pid > 0 {
			stopIfStill(pid, newDnsmasq(dir, log).args())
		}

		_ = firewall.Remove(l.Name)
		_ = ip.LinkDel(l.Name)
	}
}

// Lock serialises changes to networks (API calls): returns the unlock.
func (m *Manager) Lock() func() {
	m.opMu.Lock()
	return m.opMu.Unlock
}
