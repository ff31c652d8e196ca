package api

// NetworkACLRule is one rule of a network ACL (LXD's shape).
type NetworkACLRule struct {
	Action          string `json:"action" yaml:"action"`
	Source          string `json:"source,omitempty" yaml:"source,omitempty"`
	Destination     string `json:"destination,omitempty" yaml:"destination,omitempty"`
	Protocol        string `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	SourcePort      string `json:"source_port,omitempty" yaml:"source_port,omitempty"`
	DestinationPort string `json:"destination_port,omitempty" yaml:"destination_port,omitempty"`
	ICMPType        string `json:"icmp_type,omitempty" yaml:"icmp_type,omitempty"`
	ICMPCode        string `json:"icmp_code,omitempty" yaml:"icmp_code,omitempty"`
	Description     string `json:"description,omitempty" yaml:"description,omitempty"`
	State           string `json:"state" yaml:"state"`
}

// NetworkACLPut is the writable part of a network ACL.
type NetworkACLPut struct {
	Description string            `json:"description" yaml:"description"`
	Egress      []NetworkACLRule  `json:"egress" yaml:"egress"`
	Ingress     []NetworkACLRule  `json:"ingress" yaml:"ingress"`
	Config      map[string]string `json:"config" yaml:"config"`
}

// NetworkACLPost renames a network ACL.
type NetworkACLPost struct {
	Name string `json:"name" yaml:"name"`
}

// NetworkACLsPost creates a network ACL.
type NetworkACLsPost struct {
	NetworkACLPost `yaml:",inline"`
	NetworkACLPut  `yaml:",inline"`
}

// NetworkACL is a network ACL (GET /1.0/network-acls/{name}).
type NetworkACL struct {
	NetworkACLPost `yaml:",inline"`
	NetworkACLPut  `yaml:",inline"`
	UsedBy         []string `json:"used_by" yaml:"used_by"`
}
