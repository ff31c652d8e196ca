package device

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// NetworkState reads the interfaces of the network namespace of init pid with netlink:
// addresses, counters, MAC, MTU and the host end of each veth. It falls back to the
// counters of /proc/<pid>/net/dev.
func NetworkState(pid int) map[string]api.InstanceStateNetwork {
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

// netCounters reads the interface counters of the instance's network namespace from
// /proc/<init>/net/dev; addresses come with the managed network.
func netCounters(pid int) map[string]api.InstanceStateNetwork {
	out := map[string]api.InstanceStateNetwork{}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return out
	}

	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}

		name = strings.TrimSpace(name)
		var rb, rp, re, rd, x1, x2, x3, x4, tb, tp, te, td int64
		_, err := fmt.Sscan(rest, &rb, &rp, &re, &rd, &x1, &x2, &x3, &x4, &tb, &tp, &te, &td)
		if err != nil {
			continue
		}

		n := api.InstanceStateNetwork{
			Addresses: []api.InstanceStateNetworkAddress{},
			State:     "up",
			Type:      "broadcast",
			Counters: api.InstanceStateNetworkCounters{
				BytesReceived: rb, PacketsReceived: rp, ErrorsReceived: re, PacketsDroppedInbound: rd,
				BytesSent: tb, PacketsSent: tp, ErrorsSent: te, PacketsDroppedOutbound: td,
			},
		}

		if name == "lo" {
			n.Type = "loopback"
		}

		out[name] = n
	}

	return out
}
