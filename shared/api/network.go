package api

// NetworkPut holds the writable fields of a network.
type NetworkPut struct {
	Config      map[string]string `json:"config" yaml:"config"`
	Description string            `json:"description" yaml:"description"`
}

// NetworksPost is the body of POST /1.0/networks.
type NetworksPost struct {
	NetworkPut `yaml:",inline"`
	Name       string `json:"name" yaml:"name"`
	Type       string `json:"type" yaml:"type"`
}

// Network is a network as returned by GET /1.0/networks/{name}.
type Network struct {
	NetworkPut `yaml:",inline"`
	Name       string   `json:"name" yaml:"name"`
	Type       string   `json:"type" yaml:"type"`
	Managed    bool     `json:"managed" yaml:"managed"`
	Status     string   `json:"status" yaml:"status"`
	UsedBy     []string `json:"used_by" yaml:"used_by"`
	Locations  []string `json:"locations" yaml:"locations"`
}

// NetworkState is GET /1.0/networks/{name}/state (extension network_state): the host
// interface behind a network, as `lxc network info` shows it.
type NetworkState struct {
	Addresses []NetworkStateAddress `json:"addresses" yaml:"addresses"`
	Counters  NetworkStateCounters  `json:"counters" yaml:"counters"`
	Hwaddr    string                `json:"hwaddr" yaml:"hwaddr"`
	Mtu       int                   `json:"mtu" yaml:"mtu"`
	State     string                `json:"state" yaml:"state"` // "up" or "down"
	Type      string                `json:"type" yaml:"type"`   // "broadcast", "loopback", ...
	Bridge    *NetworkStateBridge   `json:"bridge" yaml:"bridge"`
}

// NetworkStateAddress is one address of a network's interface.
type NetworkStateAddress struct {
	Family  string `json:"family" yaml:"family"`
	Address string `json:"address" yaml:"address"`
	Netmask string `json:"netmask" yaml:"netmask"`
	Scope   string `json:"scope" yaml:"scope"`
}

// NetworkStateCounters are a network interface's traffic counters.
type NetworkStateCounters struct {
	BytesReceived   int64 `json:"bytes_received" yaml:"bytes_received"`
	BytesSent       int64 `json:"bytes_sent" yaml:"bytes_sent"`
	PacketsReceived int64 `json:"packets_received" yaml:"packets_received"`
	PacketsSent     int64 `json:"packets_sent" yaml:"packets_sent"`
}

// NetworkStateBridge is the bridge part of a network's state.
type NetworkStateBridge struct {
	ID            string   `json:"id" yaml:"id"`
	STP           bool     `json:"stp" yaml:"stp"`
	ForwardDelay  uint64   `json:"forward_delay" yaml:"forward_delay"`
	VLANDefault   uint64   `json:"vlan_default" yaml:"vlan_default"`
	VLANFiltering bool     `json:"vlan_filtering" yaml:"vlan_filtering"`
	UpperDevices  []string `json:"upper_devices" yaml:"upper_devices"`
}
