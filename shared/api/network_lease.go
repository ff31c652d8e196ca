package api

// NetworkPost is the body of POST /1.0/networks/{name}: a rename.
type NetworkPost struct {
	Name string `json:"name" yaml:"name"`
}

// NetworkLease is one entry of GET /1.0/networks/{name}/leases: a DHCP reservation
// ("static") or a lease dnsmasq handed out or an address derived from a MAC ("dynamic").
type NetworkLease struct {
	Hostname string `json:"hostname" yaml:"hostname"`
	Hwaddr   string `json:"hwaddr" yaml:"hwaddr"`
	Address  string `json:"address" yaml:"address"`
	Type     string `json:"type" yaml:"type"`
	Location string `json:"location" yaml:"location"`
}
