package api

// NetworkForwardPort is one port (or range, or list) of a forward: listen_port on the
// listen address goes to target_port (the same when empty) on target_address.
type NetworkForwardPort struct {
	Description   string `json:"description" yaml:"description"`
	Protocol      string `json:"protocol" yaml:"protocol"`
	ListenPort    string `json:"listen_port" yaml:"listen_port"`
	TargetPort    string `json:"target_port" yaml:"target_port"`
	TargetAddress string `json:"target_address" yaml:"target_address"`
}

// NetworkForwardPut is the writable part of a forward; config key target_address is
// where everything not in Ports goes.
type NetworkForwardPut struct {
	Description string               `json:"description" yaml:"description"`
	Config      map[string]string    `json:"config" yaml:"config"`
	Ports       []NetworkForwardPort `json:"ports" yaml:"ports"`
}

// NetworkForwardsPost is the body of POST /1.0/networks/{name}/forwards.
type NetworkForwardsPost struct {
	NetworkForwardPut `yaml:",inline"`
	ListenAddress     string `json:"listen_address" yaml:"listen_address"`
}

// NetworkForward is a network's forward of a host address (GET
// /1.0/networks/{name}/forwards/{listen_address}).
type NetworkForward struct {
	NetworkForwardPut `yaml:",inline"`
	ListenAddress     string `json:"listen_address" yaml:"listen_address"`
	Location          string `json:"location" yaml:"location"`
}
