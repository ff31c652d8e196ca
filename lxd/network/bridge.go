package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// aliasPrefix tags Berth's bridges (IFLA_IFALIAS "berth:<dnsmasq pid>:<state dir>") so
// that a bridge whose daemon state is gone can be recognised and removed with its dnsmasq.
const aliasPrefix = "berth:"

func makeAlias(pid int, dir string) string { return aliasPrefix + strconv.Itoa(pid) + ":" + dir }

// parseAlias returns the dnsmasq pid and the state directory named by a bridge's alias.
func parseAlias(alias string) (int, string, bool) {
	rest, ok := strings.CutPrefix(alias, aliasPrefix)
	if !ok {
		return 0, "", false
	}

	p, dir, ok := strings.Cut(rest, ":")
	pid, err := strconv.Atoi(p)
	if !ok || err != nil || !filepath.IsAbs(dir) {
		return 0, "", false
	}

	return pid, dir, true
}

// ours reports whether the host link named like this network is this network's bridge.
func (b *bridge) ours() bool {
	_, dir, ok := parseAlias(ip.LinkAlias(b.name))
	return ok && dir == b.dir
}

// bridge is the "bridge" driver: a Linux bridge with an IPv4 subnet and optionally an IPv6
// /64, dnsmasq for DHCP, router advertisements and DNS, masquerading, and per-port
// anti-spoofing.
type bridge struct {
	name string
	dir  string // $BERTH_DIR/networks/<name>
	log  *slog.Logger
	dns  *dnsmasq

	mu      sync.Mutex
	config  map[string]string
	gw      net.IP
	subnet  *net.IPNet
	gw6     net.IP     // nil without IPv6
	prefix6 *net.IPNet // nil without IPv6
	status  string
	res     map[string]reservation // owner → reservation
	ports   map[string]port        // filtered host veths, to refilter when the prefix changes

	aclApply func(bridge string) error // rewrites the bridge's ACL rules (lxd/networks)
	// aclDone: the last write of the bridge's ACL rules succeeded, so every filtered port
	// has its ACL jumps (see PortAdd). False until the first, and after a failed one.
	aclDone atomic.Bool
	// aclMendAt: when an unchanged port may next try to mend a failed write (b.mu): set
	// when one starts, cleared when it succeeds.
	aclMendAt time.Time
}

// aclMendPause is how long unchanged ports leave the bridge's ACLs alone after a failed
// attempt to mend them: a failure that lasts (a rule set the kernel refuses) must not cost
// a whole write for every port of a restart's refresh.
const aclMendPause = 10 * time.Second

// port is what a filtered host veth's container may send as.
type port struct {
	mac net.HardwareAddr
	ip  net.IP
	acl PortACL
}

func newBridge(dir, name string, config map[string]string, log *slog.Logger) (*bridge, error) {
	b := &bridge{name: name, dir: dir, log: log.With("network", name), status: "Created", ports: map[string]port{}}
	err := b.setConfig(config)
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", name, err)
	}

	b.dns = newDnsmasq(dir, b.log)
	b.dns.onSpawn = func(pid int) { _ = ip.LinkSetAlias(name, makeAlias(pid, dir)) }
	return b, nil
}

// setConfig takes a validated config and the addresses it gives.
// Preconditions: b.mu held, or b not shared yet.
func (b *bridge) setConfig(config map[string]string) error {
	gw, subnet, err := ParseGateway(config["ipv4.address"])
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid ipv4.address: %v", err)
	}

	var gw6 net.IP
	var prefix6 *net.IPNet
	if v := config["ipv6.address"]; v != "" && v != "none" {
		gw6, prefix6, err = ParseGateway6(v)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "invalid ipv6.address: %v", err)
		}
	}

	b.config, b.gw, b.subnet, b.gw6, b.prefix6 = config, gw, subnet, gw6, prefix6
	return nil
}

func (b *bridge) Name() string { return b.name }
func (b *bridge) Type() string { return "bridge" }

func (b *bridge) Config() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(b.config))
	for k, v := range b.config {
		out[k] = v
	}

	return out
}

func (b *bridge) Status() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

func (b *bridge) Gateway() net.IP { return b.gw }

func (b *bridge) Domain() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.domain()
}

func (b *bridge) domain() string {
	if d := b.config["dns.domain"]; d != "" {
		return d
	}

	return DefaultDomain
}

func (b *bridge) mtu() int {
	n, _ := strconv.Atoi(b.config["bridge.mtu"])
	return n
}

// Start creates what is missing and adopts what is there.
func (b *bridge) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.start()
	b.status = "Created"
	if err != nil {
		b.status = "Errored"
	}

	return err
}

// Preconditions: b.mu held.
func (b *bridge) start() error {
	err := os.MkdirAll(b.dir, 0o711)
	if err != nil {
		return fmt.Errorf("creating %s: %w", b.dir, err)
	}

	b.res, err = loadReservations(filepath.Join(b.dir, "reservations.json"))
	if err != nil {
		return err
	}

	if ip.LinkExists(b.name) {
		if !b.ours() {
			return api.StatusErrorf(http.StatusConflict, "a host interface named %q already exists and is not this network's", b.name)
		}
	} else {
		err = ip.BridgeAdd(b.name, makeAlias(0, b.dir), b.mtu())
		if errors.Is(err, ip.ErrExists) {
			return api.StatusErrorf(http.StatusConflict, "a host interface named %q already exists", b.name)
		}

		if err != nil {
			return err
		}
	}

	err = ip.AddrReplace(b.name, &net.IPNet{IP: b.gw, Mask: b.subnet.Mask})
	if err != nil {
		return err
	}

	err = b.startIPv6()
	if err != nil {
		return err
	}

	err = ip.LinkUp(b.name)
	if err != nil {
		return err
	}

	nat := b.config["ipv4.nat"] == "" || isTrue(b.config["ipv4.nat"])
	if nat {
		err = ip.SetForwarding()
		if err != nil {
			return err
		}
	}

	nat6 := b.prefix6 != nil && (b.config["ipv6.nat"] == "" || isTrue(b.config["ipv6.nat"]))
	err = firewall.ApplyNAT(b.name, firewall.NAT{Subnet: b.subnet, NAT: nat, Prefix6: b.prefix6, NAT6: nat6})
	if err != nil {
		return err
	}

	err = b.writeReservations()
	if err != nil {
		return err
	}

	err = b.dns.ensure(b.dnsmasqConf())
	if err != nil {
		return err
	}

	b.prunePorts()
	return nil
}

// startIPv6 gives the bridge its IPv6 address and makes the host route, or takes the
// address away for ipv6.address none.
// Preconditions: b.mu held.
func (b *bridge) startIPv6() error {
	if b.prefix6 == nil {
		return ip.AddrDelGlobal6(b.name)
	}

	err := ip.RouterOnly(b.name)
	if err != nil {
		return err
	}

	err = ip.AddrReplace(b.name, &net.IPNet{IP: b.gw6, Mask: b.prefix6.Mask})
	if err != nil {
		return err
	}

	return ip.SetForwarding6()
}

// prunePorts drops the filters of ports whose veth is gone (containers that stopped while
// the daemon was away, or a reboot).
func (b *bridge) prunePorts() {
	ports, err := firewall.Ports(b.name)
	if err != nil {
		b.log.Warn("listing port filters", "err", err)
		return
	}

	exists := ip.LinkExists
	names, err := ip.LinkNames()
	if err == nil {
		exists = func(name string) bool { return names[name] }
	}

	for _, p := range ports {
		if !exists(p) {
			_ = firewall.PortDel(b.name, p)
		}
	}
}

// Update applies a validated config. A new address is refused while NICs hold
// reservations in the old subnet; a new IPv6 prefix refilters the ports (their addresses
// in it change).
func (b *bridge) Update(config map[string]string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	gw, subnet, err := ParseGateway(config["ipv4.address"])
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid ipv4.address: %v", err)
	}

	if !subnet.IP.Equal(b.subnet.IP) || subnet.Mask.String() != b.subnet.Mask.String() || !gw.Equal(b.gw) {
		for owner, r := range b.res {
			if !subnet.Contains(net.ParseIP(r.IP)) || gw.Equal(net.ParseIP(r.IP)) {
				return api.StatusErrorf(http.StatusBadRequest, "ipv4.address %s does not fit the address %s reserved by %s", config["ipv4.address"], r.IP, owner)
			}
		}
	}

	old := b.config
	oldPrefix := b.prefix6.String()
	err = b.setConfig(config)
	if err == nil {
		err = b.start()
	}

	if err != nil {
		b.status = "Errored"
		b.log.Warn("applying new config failed, going back", "err", err)
		_ = b.setConfig(old)
		_ = b.start()
		b.refilterPorts()

		return err
	}

	if b.prefix6.String() != oldPrefix {
		b.refilterPorts()
	}

	b.status = "Created"
	return nil
}

// Delete removes dnsmasq, the firewall tables, the bridge and the files.
func (b *bridge) Delete() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dns.stop()
	// A host interface of that name that is not ours (a failed create) stays, and so do
	// the tables named after it.
	if ip.LinkExists(b.name) && !b.ours() {
		return os.RemoveAll(b.dir)
	}

	err := errors.Join(firewall.Remove(b.name), ip.LinkDel(b.name))
	if err != nil {
		return err
	}

	return os.RemoveAll(b.dir)
}

func (b *bridge) Close() { b.dns.close() }

// Reserve implements Network.
func (b *bridge) Reserve(owner, hostname string, mac net.HardwareAddr, want net.IP) (net.IP, error) {
	if hostname != "" && !safeDNSName(hostname) {
		return nil, api.StatusErrorf(http.StatusBadRequest, "host name %q is not a DNS name", hostname)
	}

	if len(mac) != 6 {
		return nil, api.StatusErrorf(http.StatusBadRequest, "MAC address %q is not an Ethernet address", mac)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if want != nil {
		want = want.To4()
		if want == nil || !b.subnet.Contains(want) || want.Equal(b.gw) || want.Equal(b.subnet.IP) || want.Equal(broadcast(b.subnet)) {
			return nil, api.StatusErrorf(http.StatusBadRequest, "ipv4.address %s is not a free host address of %s", want, b.subnet)
		}
	}

	// A MAC belongs to one NIC: a reservation of it under another owner is a renamed
	// instance's old one, dropped once this one is made.
	stale := map[string]reservation{}
	taken := map[string]string{} // ip → owner
	for o, r := range b.res {
		switch {
		case o == owner:
		case strings.EqualFold(r.MAC, mac.String()):
			stale[o] = r
		default:
			taken[r.IP] = o
		}
	}

	cur, had := b.res[owner]
	var addr net.IP
	switch {
	case want != nil:
		if o, ok := taken[want.String()]; ok {
			return nil, api.StatusErrorf(http.StatusBadRequest, "ipv4.address %s is already reserved by %s", want, o)
		}

		addr = want
	case had && b.subnet.Contains(net.ParseIP(cur.IP)):
		addr = net.ParseIP(cur.IP).To4()
	default:
		var err error
		addr, err = b.freeAddress(taken, mac)
		if err != nil {
			return nil, err
		}
	}

	r := reservation{MAC: mac.String(), IP: addr.String(), Host: hostname}
	if had && cur == r && len(stale) == 0 {
		return addr, nil
	}

	b.res[owner] = r
	for o := range stale {
		delete(b.res, o)
	}

	err := b.writeReservations()
	if err == nil {
		err = b.dns.reload()
	}

	if err != nil {
		if had {
			b.res[owner] = cur
		} else {
			delete(b.res, owner)
		}

		for o, sr := range stale {
			b.res[o] = sr
		}

		return nil, err
	}

	return addr, nil
}

// freeAddress picks the lowest host address that no reservation and no live lease of
// another MAC holds. When leases of deleted instances fill the subnet, they are dropped
// (dnsmasq keeps leases in memory: it is restarted around the edit).
// Preconditions: b.mu held.
func (b *bridge) freeAddress(taken map[string]string, mac net.HardwareAddr) (net.IP, error) {
	leasesPath := filepath.Join(b.dir, "dnsmasq.leases")
	for attempt := 0; attempt < 2; attempt++ {
		leases := leasedIPs(leasesPath)
		base := b.subnet.IP.To4()
		ones, bits := b.subnet.Mask.Size()
		size := 1 << (bits - ones)
		for i := 1; i < size-1; i++ {
			n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
			n += uint32(i)
			cand := net.IPv4(byte(n>>24), byte(n>>16), byte(n>>8), byte(n)).To4()
			if cand.Equal(b.gw) {
				continue
			}

			if _, ok := taken[cand.String()]; ok {
				continue
			}

			if m, ok := leases[cand.String()]; ok && m != strings.ToLower(mac.String()) {
				continue
			}

			return cand, nil
		}

		keep := map[string]bool{}
		for _, r := range b.res {
			keep[strings.ToLower(r.MAC)] = true
		}

		b.log.Info("subnet full of stale leases: dropping them")
		b.dns.stop()
		err := dropLeases(leasesPath, keep)
		if err != nil {
			return nil, err
		}

		err = b.dns.ensure(b.dnsmasqConf())
		if err != nil {
			return nil, err
		}
	}

	return nil, fullError(b.name, b.gw, b.subnet)
}

// Release implements Network.
func (b *bridge) Release(owner string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed := false
	for o := range b.res {
		if o == owner || (strings.HasSuffix(owner, ".") && strings.HasPrefix(o, owner)) {
			delete(b.res, o)
			changed = true
		}
	}

	if !changed {
		return nil
	}

	err := b.writeReservations()
	if err != nil {
		return err
	}

	return b.dns.reload()
}

// PortAdd implements Network. The port may also send from its SLAAC address in the
// network's IPv6 prefix.
func (b *bridge) PortAdd(name string, mac net.HardwareAddr, addr net.IP, acl PortACL) error {
	b.mu.Lock()
	wrote, err := b.portAdd(name, port{mac: mac, ip: addr, acl: acl})
	if err == nil {
		b.ports[name] = port{mac: mac, ip: addr, acl: acl}
	}

	withACLs := (len(ACLNames(b.config)) > 0 || acl.Key() != "") && b.aclApply != nil
	mend := !wrote && withACLs && !b.aclDone.Load() && !time.Now().Before(b.aclMendAt)
	if mend {
		b.aclMendAt = time.Now().Add(aclMendPause)
	}

	b.mu.Unlock()
	if err != nil {
		return err
	}

	// The port's ACL rules are written before it gets its link (the caller adds the veth
	// after this): a NIC never passes a frame unfiltered.
	if wrote && withACLs {
		err = b.aclApply(b.name)
		if err != nil {
			b.aclDone.Store(false)
			return fmt.Errorf("applying the network ACLs of port %s: %w", name, err)
		}

		return nil
	}

	// A port whose filter was already in place, with the same ACL key, has its ACL jumps
	// too once a write of the bridge's ACLs has succeeded (the network's start writes them
	// for every port; lxd/networks records each write's outcome, see aclsWritten):
	// re-applying them all for each port of a restart's refresh would cost the square of
	// the ports. After a failed write, an unchanged port mends it, at most once per
	// aclMendPause; its own filter is in place, so a failure to mend is only logged.
	if mend {
		err = b.aclApply(b.name)
		if err != nil {
			b.aclDone.Store(false)
			b.log.Warn("writing the network's ACL rules again", "port", name, "err", err)
			return nil
		}

		// Mended: a later failure may be mended at once. (The pause was claimed before
		// the write so that ports refreshed side by side do not all write.)
		b.mu.Lock()
		b.aclMendAt = time.Time{}
		b.mu.Unlock()
	}

	return nil
}

// aclsWritten records whether a write of the bridge's ACL rules succeeded (Manager.ACLsWritten).
func (b *bridge) aclsWritten(ok bool) { b.aclDone.Store(ok) }

// portAdd reports whether it wrote the port's filter (firewall.PortAdd).
// Preconditions: b.mu held.
func (b *bridge) portAdd(name string, p port) (bool, error) {
	var ip6 net.IP
	if b.prefix6 != nil && len(p.mac) == 6 {
		ip6 = eui64(b.prefix6, p.mac)
	}

	return firewall.PortAdd(b.name, name, firewall.Port{MAC: p.mac, IP: p.ip, IP6: ip6, ACL: p.acl.Key()})
}

// refilterPorts writes the filters of the known ports again (a new IPv6 prefix).
// Preconditions: b.mu held.
func (b *bridge) refilterPorts() {
	for name, p := range b.ports {
		if !ip.LinkExists(name) {
			delete(b.ports, name)
			continue
		}

		_, err := b.portAdd(name, p)
		if err != nil {
			b.log.Warn("refiltering port", "port", name, "err", err)
		}
	}
}

// PortDel implements Network.
func (b *bridge) PortDel(name string) error {
	b.mu.Lock()
	delete(b.ports, name)
	b.mu.Unlock()

	return firewall.PortDel(b.name, name)
}

// fullError says that network name is full and how to widen it in place: the same
// gateway with a prefix two bits shorter keeps every reservation (Update accepts it when
// the wider subnet is free on the host; a gateway that is not its subnet's first or last
// address is not the wider one's either).
func fullError(name string, gw net.IP, subnet *net.IPNet) error {
	ones, _ := subnet.Mask.Size()
	fix := "widen ipv4.address"
	if ones > 8 {
		fix = fmt.Sprintf("widen ipv4.address (e.g. berth network set %s ipv4.address=%s/%d)", name, gw, max(ones-2, 8))
	}

	return api.StatusErrorf(http.StatusServiceUnavailable, "network %s has no free IPv4 address: %s or use another network", name, fix)
}
