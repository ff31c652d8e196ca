package api

// Cluster groups (LXD 5.0's clustering_groups): named sets of members that placement
// can target with ?target=@group.

// ClusterGroupPut is the writable part of a cluster group.
type ClusterGroupPut struct {
	Description string   `json:"description" yaml:"description"`
	Members     []string `json:"members" yaml:"members"`
}

// ClusterGroupsPost is POST /1.0/cluster/groups.
type ClusterGroupsPost struct {
	ClusterGroupPut `yaml:",inline"`
	Name            string `json:"name" yaml:"name"`
}

// ClusterGroupPost is POST /1.0/cluster/groups/{name}: rename.
type ClusterGroupPost struct {
	Name string `json:"name" yaml:"name"`
}

// ClusterGroup is GET /1.0/cluster/groups/{name}.
type ClusterGroup struct {
	ClusterGroupPut `yaml:",inline"`
	Name            string `json:"name" yaml:"name"`
}

// Writable returns the writable part of a cluster group (for PUT after GET).
func (g ClusterGroup) Writable() ClusterGroupPut { return g.ClusterGroupPut }
