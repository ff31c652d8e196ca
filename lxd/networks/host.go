package networks

import (
	"sort"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/shared/api"
)

// hostNetworks are the host's interfaces that Berth does not manage, listed as LXD lists
// them: unmanaged networks, with the instances whose NICs use them as parent.
func hostNetworks(managed map[string]bool, users map[string][]string) ([]api.Network, error) {
	links, err := ip.Links()
	if err != nil {
		return nil, err
	}

	out := []api.Network{}

	for _, l := range links {
		if managed[l.Name] {
			continue
		}

		u := users[l.Name]
		if u == nil {
			u = []string{}
		}

		sort.Strings(u)

		out = append(out, api.Network{
			NetworkPut: api.NetworkPut{Config: map[string]string{}},
			Name:       l.Name,
			Type:       hostNetworkType(l),
			UsedBy:     u,
			Locations:  []string{"none"},
		})
	}

	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })

	return out, nil
}

// hostNetworkType is LXD's name for a kind of host interface.
func hostNetworkType(l ip.LinkInfo) string {
	switch {
	case l.Loopback:
		return "loopback"
	case l.Type == "device":
		return "physical"
	case l.Type == "bridge", l.Type == "bond", l.Type == "vlan":
		return l.Type
	}

	return "unknown"
}

// hostNetwork is the unmanaged network name, if the host has such an interface.
func hostNetwork(name string, users map[string][]string) (*api.Network, bool) {
	nets, err := hostNetworks(nil, users)
	if err != nil {
		return nil, false
	}

	for i := range nets {
		if nets[i].Name == name {
			return &nets[i], true
		}
	}

	return nil, false
}
