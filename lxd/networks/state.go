package networks

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// State is the host interface of a network (managed or not), as `lxc network info` shows
// it.
func (s *Service) State(name string) (*api.NetworkState, error) {
	it, br, err := ip.HostInterface(name)
	if errors.Is(err, ip.ErrNoLink) {
		return nil, api.StatusErrorf(http.StatusNotFound, "network %q not found", name)
	}

	if err != nil {
		return nil, err
	}

	st := &api.NetworkState{
		Addresses: []api.NetworkStateAddress{},
		Hwaddr:    it.HWAddr,
		Mtu:       it.MTU,
		State:     "down",
		Type:      "broadcast",
		Counters: api.NetworkStateCounters{
			BytesReceived: int64(it.Counters.RxBytes), BytesSent: int64(it.Counters.TxBytes),
			PacketsReceived: int64(it.Counters.RxPackets), PacketsSent: int64(it.Counters.TxPackets),
		},
	}

	if it.Up {
		st.State = "up"
	}

	if it.Loopback {
		st.Type = "loopback"
	}

	for _, a := range it.Addrs {
		st.Addresses = append(st.Addresses, api.NetworkStateAddress{
			Family: a.Family, Address: a.IP, Netmask: strconv.Itoa(a.Prefix), Scope: a.Scope,
		})
	}

	if br != nil {
		st.Bridge = &api.NetworkStateBridge{
			ID: br.ID, STP: br.STP, ForwardDelay: br.ForwardDelay, VLANDefault: br.VLANDefault,
			VLANFiltering: br.VLANFiltering, UpperDevices: br.Ports,
		}
	}

	return st, nil
}
