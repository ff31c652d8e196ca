package api

// The cluster API's shapes, as LXD 5.0 sends and expects them (lxc cluster ...).

// Cluster is GET /1.0/cluster.
type Cluster struct {
	ServerName   string                   `json:"server_name" yaml:"server_name"`
	Enabled      bool                     `json:"enabled" yaml:"enabled"`
	MemberConfig []ClusterMemberConfigKey `json:"member_config" yaml:"member_config"`
}

// ClusterMemberConfigKey is a member-specific setting a joining server must supply
// (such as a storage pool's source).
type ClusterMemberConfigKey struct {
	Entity      string `json:"entity" yaml:"entity"`
	Name        string `json:"name" yaml:"name"`
	Key         string `json:"key" yaml:"key"`
	Value       string `json:"value" yaml:"value"`
	Description string `json:"description" yaml:"description"`
}

// ClusterPut is PUT /1.0/cluster: enable clustering on this server (ServerName set,
// ClusterAddress empty), or join an existing cluster (ClusterAddress or ClusterToken
// set), or leave it (Enabled false).
type ClusterPut struct {
	Cluster            `yaml:",inline"`
	ClusterAddress     string `json:"cluster_address" yaml:"cluster_address"`
	ClusterCertificate string `json:"cluster_certificate" yaml:"cluster_certificate"`
	ServerAddress      string `json:"server_address" yaml:"server_address"`
	ClusterPassword    string `json:"cluster_password" yaml:"cluster_password"`
	ClusterToken       string `json:"cluster_token" yaml:"cluster_token"`
}

// ClusterCertificatePut is PUT /1.0/cluster/certificate.
type ClusterCertificatePut struct {
	ClusterCertificate    string `json:"cluster_certificate" yaml:"cluster_certificate"`
	ClusterCertificateKey string `json:"cluster_certificate_key" yaml:"cluster_certificate_key"`
}

// ClusterMembersPost is POST /1.0/cluster/members: a join token for a new member.
type ClusterMembersPost struct {
	ServerName string `json:"server_name" yaml:"server_name"`
}

// ClusterMemberJoinToken is the token operation's metadata; its base64 JSON encoding
// is the token the joiner is given.
type ClusterMemberJoinToken struct {
	ServerName  string   `json:"server_name" yaml:"server_name"`
	Fingerprint string   `json:"fingerprint" yaml:"fingerprint"`
	Addresses   []string `json:"addresses" yaml:"addresses"`
	Secret      string   `json:"secret" yaml:"secret"`
	ExpiresAt   string   `json:"expires_at" yaml:"expires_at"`
}

// ClusterMemberPut is the writable part of a member.
type ClusterMemberPut struct {
	Roles         []string          `json:"roles" yaml:"roles"`
	FailureDomain string            `json:"failure_domain" yaml:"failure_domain"`
	Description   string            `json:"description" yaml:"description"`
	Config        map[string]string `json:"config" yaml:"config"`
	Groups        []string          `json:"groups" yaml:"groups"`
}

// ClusterMember is GET /1.0/cluster/members/{name}. Status is "Online", "Offline" or
// "Evacuated".
type ClusterMember struct {
	ClusterMemberPut `yaml:",inline"`
	ServerName       string `json:"server_name" yaml:"server_name"`
	URL              string `json:"url" yaml:"url"`
	Database         bool   `json:"database" yaml:"database"`
	Status           string `json:"status" yaml:"status"`
	Message          string `json:"message" yaml:"message"`
	Architecture     string `json:"architecture" yaml:"architecture"`
}

// Writable returns the writable part of a member (for PUT after GET).
func (m ClusterMember) Writable() ClusterMemberPut { return m.ClusterMemberPut }

// ClusterMemberPost is POST /1.0/cluster/members/{name}: rename.
type ClusterMemberPost struct {
	ServerName string `json:"server_name" yaml:"server_name"`
}

// ClusterMemberStatePost is POST /1.0/cluster/members/{name}/state: Action "evacuate"
// or "restore"; Mode (evacuate only) "stop" or "migrate" (empty: "migrate" for
// instances on shared storage, else "stop", as LXD does).
type ClusterMemberStatePost struct {
	Action string `json:"action" yaml:"action"`
	Mode   string `json:"mode" yaml:"mode"`
}
