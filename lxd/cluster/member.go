package cluster

import (
	"time"

	"github.com/berth-dev/berth/lxd/db"
)

// Member is one cluster member as the API and placement see it.
type Member struct {
	ID            int64
	Name          string
	Address       string // its cluster.https_address, host:port
	Description   string
	Arch          string
	FailureDomain string
	Roles         []string
	Evacuated     bool
	Online        bool
	Heartbeat     time.Time
	SchemaVersion int
	APIExtensions int
}

// DefaultOfflineThreshold is cluster.offline_threshold's default: a member whose last
// heartbeat is older is offline.
const DefaultOfflineThreshold = 20 * time.Second

// NoneName is member 1's name on a host that is not clustered, as in LXD.
const NoneName = "none"

func memberOf(r db.MemberRow) Member {
	return Member{
		ID: r.ID, Name: r.Name, Address: r.Address, Description: r.Description, Arch: r.Arch,
		FailureDomain: r.FailureDomain, Evacuated: r.Evacuated, Heartbeat: r.Heartbeat,
		SchemaVersion: r.SchemaVersion, APIExtensions: r.APIExtensions, Roles: []string{},
	}
}
