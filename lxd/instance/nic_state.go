package instance

import (
	"strconv"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// netState reads the interfaces of the instance's network namespace with netlink: addresses,
// counters, MAC, MTU and the host end of each veth. It falls back to the counters of
// /proc/<pid>/net/dev.
func netState(pid int) map[string]api.InstanceStateNetwork {
	ifaces, err := ip.Interfaces(pid)
	if err != nil {
		return netCounters(pid)
	}

	out := make(map[string]api.InstanceStateNetwork, len(ifaces))
	for _, it := range ifaces {
		n := api.InstanceStateNetwork{
			Addresses: make([]api.InstanceStateNetworkAddress, 0, len(it.Addrs)),
			Hwaddr:    it.HWAddr,
			HostName:  it.HostName,
			Mtu:       it.MTU,
			State:     "down",
			Type:      "broadcast",
			Counters: api.InstanceStateNetworkCounters{
				BytesReceived: int64(it.Counters.RxBytes), BytesSent: int64(it.Counters.TxBytes),
				PacketsReceived: int64(it.Counters.RxPackets), PacketsSent: int64(it.Counters.TxPackets),
				ErrorsReceived: int64(it.Counters.RxErrors), ErrorsSent: int64(it.Counters.TxErrors),
				PacketsDroppedInbound: int64(it.Counters.RxDropped), PacketsDroppedOutbound: int64(it.Counters.TxDropped),
			},
		}

		if it.Up {
			n.State = "up"
		}

		if it.Loopback {
			n.Type = "loopback"
		}

		for _, a := range it.Addrs {
			n.Addresses = append(n.Addresses, api.InstanceStateNetworkAddress{
				Family: a.Family, Address: a.IP, Netmask: strconv.Itoa(a.Prefix), Scope: a.Scope,
			})
		}

		out[it.Name] = n
	}

	return out
}
