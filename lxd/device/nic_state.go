package device

import (
	"slices"
	"strconv"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// loopbackIndex is the index of "lo" in every network namespace: the kernel registers it
// first when it makes one.
const loopbackIndex = 1

// NetworkState reads the network part of a running instance's state from the host: each
// NIC of devices whose veth config records a host end (volatile.<dev>.host_name) gets that
// host end's MTU, carrier and counters (turned around: the host end receives what the
// instance sends) and the MAC it was given; its addresses and the loopback's come from
// netlink requests that name the instance's namespace by the host's id for it (see
// ip.NetlinkReader), so nothing enters the namespace. links is one dump of the host's
// links (NetlinkReader.HostLinks), shared by every instance of a list. Interfaces the
// instance made itself are not reported, and what root inside does to its NICs (renaming
// them, adding thousands of addresses) is bounded by what the reader takes in.
func NetworkState(r *ip.NetlinkReader, links map[string]ip.HostLink, devices map[string]map[string]string, config map[string]string) map[string]api.InstanceStateNetwork {
	out := map[string]api.InstanceStateNetwork{}
	type nicEnd struct {
		name string
		link ip.HostLink
	}

	var nics []nicEnd
	for _, dev := range sortedKeys(devices) {
		conf := devices[dev]
		if conf["type"] != "nic" {
			continue
		}

		link, ok := links[config[hostNameKey(dev)]]
		if !ok || link.PeerNetNsID < 0 || link.PeerIndex <= 0 {
			continue // not attached (yet), or attached again after a reboot inside
		}

		name := conf["name"]
		if name == "" {
			name = dev
		}

		mac := conf["hwaddr"]
		if mac == "" {
			mac = config[hwaddrKey(dev)]
		}

		c := link.Counters.Swapped()
		out[name] = api.InstanceStateNetwork{
			Addresses: []api.InstanceStateNetworkAddress{},
			Counters:  counters(c),
			Hwaddr:    mac,
			HostName:  config[hostNameKey(dev)],
			Mtu:       link.MTU,
			State:     upOrDown(link.Carrier),
			Type:      "broadcast",
		}

		nics = append(nics, nicEnd{name: name, link: link})
	}

	// Every NIC of an instance is in its namespace: one address dump for them all (a NIC
	// moved elsewhere by root inside gets its own).
	done := map[int]bool{}
	for _, n := range nics {
		nsid := n.link.PeerNetNsID
		if done[nsid] {
			continue
		}

		done[nsid] = true
		indexes := []int{loopbackIndex}
		for _, m := range nics {
			if m.link.PeerNetNsID == nsid {
				indexes = append(indexes, m.link.PeerIndex)
			}
		}

		addrs, err := r.Addrs(nsid, indexes...)
		if err != nil {
			continue
		}

		for _, m := range nics {
			if m.link.PeerNetNsID == nsid {
				st := out[m.name]
				st.Addresses = addresses(addrs[m.link.PeerIndex])
				out[m.name] = st
			}
		}

		if _, taken := out["lo"]; taken || len(done) > 1 {
			continue
		}

		lo, err := r.Link(nsid, loopbackIndex)
		if err == nil && lo.Loopback {
			out["lo"] = api.InstanceStateNetwork{
				Addresses: addresses(addrs[loopbackIndex]),
				Counters:  counters(lo.Counters),
				Hwaddr:    lo.HWAddr,
				Mtu:       lo.MTU,
				State:     upOrDown(lo.Up),
				Type:      "loopback",
			}
		}
	}

	return out
}

func counters(c ip.Counters) api.InstanceStateNetworkCounters {
	return api.InstanceStateNetworkCounters{
		BytesReceived: int64(c.RxBytes), BytesSent: int64(c.TxBytes),
		PacketsReceived: int64(c.RxPackets), PacketsSent: int64(c.TxPackets),
		ErrorsReceived: int64(c.RxErrors), ErrorsSent: int64(c.TxErrors),
		PacketsDroppedInbound: int64(c.RxDropped), PacketsDroppedOutbound: int64(c.TxDropped),
	}
}

func addresses(addrs []ip.Addr) []api.InstanceStateNetworkAddress {
	out := make([]api.InstanceStateNetworkAddress, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, api.InstanceStateNetworkAddress{
			Family: a.Family, Address: a.IP, Netmask: strconv.Itoa(a.Prefix), Scope: a.Scope,
		})
	}

	return out
}

func upOrDown(up bool) string {
	if up {
		return "up"
	}

	return "down"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}

	slices.Sort(keys)
	return keys
}
