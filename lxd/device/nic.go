package device

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/lxd/setup"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// nic is a NIC device resolved for one start or hotplug.
type nic struct {
	name   string           // interface name inside the container
	bridge string           // host bridge the host end joins
	net    network.Network  // nil for an unmanaged parent bridge
	mac    net.HardwareAddr // stable: device hwaddr, else volatile.<dev>.hwaddr
	newMAC string           // a MAC generated now, to record as volatile.<dev>.hwaddr
	addr   net.IP           // reserved IPv4 address (managed networks)
	acl    network.PortACL  // its own network ACLs (security.acls)
	host   string           // host end, chosen at attach
}

// nicDevice is a bridged NIC: a veth pair whose host end joins a bridge (a managed
// network's, with a port filter and a DHCP reservation, or an unmanaged host bridge) and
// whose peer is created inside the container under its final name. Its steps act on one
// NIC; the NICs of an instance go through them together (prepareNICs, attachNICs,
// hotplugNICs): all resolved before anything is recorded, all attached or none.
type nicDevice struct{}

// validate accepts any keys but checks the syntax of its ACL keys: a NIC is checked when
// it is prepared, against the networks and ACLs of that moment (which come and go
// independently of the instance).
func (nicDevice) validate(conf map[string]string) error {
	_, err := network.NICACL(conf)
	return err
}

// prepare resolves the NIC: its bridge, its stable MAC (a new one is generated and marked
// for recording) and its wanted address. Errors are 400s naming the device.
func (nicDevice) prepare(r *run) ([]setup.Mount, error) {
	if r.nets == nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "this daemon has no networking")
	}

	d, dev := r.conf, r.name
	n := &nic{name: d["name"]}
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

	nw, err := r.nets.Get(netName)
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
		mac = r.local[hwaddrKey(dev)]
	}

	if mac == "" {
		mac = generateMAC()
		n.newMAC = mac
	}

	n.mac, err = net.ParseMAC(mac)
	if err != nil || len(n.mac) != 6 {
		return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: invalid hwaddr %q", dev, mac)
	}

	n.acl, err = network.NICACL(d)
	if err != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: %v", dev, err)
	}

	if n.acl.Key() != "" {
		if n.net == nil {
			return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: network ACLs need a managed network", dev)
		}

		err = r.nets.CheckACLs(n.acl.Names)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", dev, err)
		}
	}

	if v := d["ipv4.address"]; v != "" && (net.ParseIP(v) == nil || net.ParseIP(v).To4() == nil) {
		return nil, api.StatusErrorf(http.StatusBadRequest, "device %s: invalid ipv4.address %q", dev, v)
	}

	r.nic = n
	return nil, nil
}

// reserve gives a NIC on a managed network its DHCP reservation (the address it asks
// for, else the one it had).
func (nicDevice) reserve(r *run) error {
	n := r.nic
	if n.net == nil {
		return nil
	}

	var want net.IP
	if v := r.conf["ipv4.address"]; v != "" {
		want = net.ParseIP(v)
	}

	var err error
	// The owner is the instance's key (unique on the host); the DNS name is the
	// instance's name, qualified by its project outside the default one.
	n.addr, err = n.net.Reserve(r.inst+"."+r.name, network.DNSName(project.Of(r.inst), project.Name(r.inst)), n.mac, want)
	if err != nil {
		return fmt.Errorf("reserving an address for %s: %w", r.name, err)
	}

	return nil
}

// started attaches a prepared NIC once init's network namespace exists: the port filter
// first, so no frame passes unfiltered, then the veth pair with the peer created inside
// under its final name. A host name already taken is retried with another.
func (nicDevice) started(r *run) error {
	n := r.nic
	var err error
	for range 5 {
		n.host = "veth" + randomHex(4)
		if !claimHostName(n.host) {
			err = fmt.Errorf("host name %s: %w", n.host, ip.ErrExists)
			continue
		}

		if n.net != nil {
			err = n.net.PortAdd(n.host, n.mac, n.addr, n.acl)
			if err != nil {
				releaseHostName(n.host)
				break
			}
		}

		err = ip.VethAdd(ip.Veth{HostName: n.host, Bridge: n.bridge, PID: r.initPID, Name: n.name, HWAddr: n.mac, NoDAD: n.net != nil})
		releaseHostName(n.host) // made (the link now holds the name) or not
		if !errors.Is(err, ip.ErrExists) {
			break
		}

		if n.net != nil {
			_ = n.net.PortDel(n.host)
		}
	}

	return err
}

// hostNames are the veth names that starts in flight have picked. A port's filter is
// keyed by its veth's name, so a name picked twice (by two starts at once, or a start
// and a link that exists) would hand one container's filter to another and then delete
// it when the second veth could not be made: a name is taken only if no link has it and
// no start holds it.
var hostNames = struct {
	sync.Mutex
	held map[string]bool
}{held: map[string]bool{}}

func claimHostName(name string) bool {
	hostNames.Lock()
	defer hostNames.Unlock()
	if hostNames.held[name] || ip.LinkExists(name) {
		return false
	}

	hostNames.held[name] = true
	return true
}

func releaseHostName(name string) {
	hostNames.Lock()
	delete(hostNames.held, name)
	hostNames.Unlock()
}

// attach adds a prepared NIC to a running container: as at start, inside the running
// network namespace. Like LXD, the container sees a new interface; a DHCP client inside
// configures it as it would a hotplugged card.
func (d nicDevice) attach(r *run) error { return d.started(r) }

// detach removes a NIC from a running container: its host end (which takes the end inside
// with it) and port filter, found by the host name recorded in r.local, and its address.
func (nicDevice) detach(r *run) error {
	host := r.local[hostNameKey(r.name)]
	if host != "" {
		err := dropHostEnd(r.nets, host)
		if err != nil {
			return err
		}
	}

	release(r.nets, r.inst+"."+r.name, nil)
	return nil
}

func hwaddrKey(dev string) string   { return "volatile." + dev + ".hwaddr" }
func hostNameKey(dev string) string { return "volatile." + dev + ".host_name" }

// isHostNameKey says whether a config key records a NIC's host end.
func isHostNameKey(k string) bool {
	return strings.HasPrefix(k, "volatile.") && strings.HasSuffix(k, ".host_name")
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

// NewNICAddresses is the volatile.<dev>.hwaddr keys an instance being created gets: a
// generated MAC for each NIC of its expanded devices with no hwaddr of its own and none
// recorded in config (an instance that moves here brings its own). Made with the row,
// as LXD generates them when it creates the instance, they spare the first start a
// write of the record.
func NewNICAddresses(config map[string]string, devices map[string]map[string]string) map[string]string {
	out := map[string]string{}
	for dev, d := range devices {
		if isNIC(d) && d["hwaddr"] == "" && config[hwaddrKey(dev)] == "" {
			out[hwaddrKey(dev)] = generateMAC()
		}
	}

	return out
}
