// Package cluster is Berth's cluster membership (issue 16): who the members are, which
// of them are online, and where a new instance goes. The global database's members
// table is the record; this package turns its rows into what the API and placement
// need.
package cluster

import (
	"context"
	"strconv"
	"time"

	"github.com/berth-dev/berth/lxd/db"
)

// Member is one member of the cluster as the API and placement see it.
type Member struct {
	ID            int64
	Name          string
	Address       string // its cluster.https_address (host:port); "" unclustered
	Description   string
	Arch          string
	FailureDomain string
	Roles         []string // database roles as LXD 5.0 names them (DatabaseRoles); never nil
	Evacuated     bool
	Online        bool
	Heartbeat     time.Time
	SchemaVersion int
	APIExtensions int
}

// DefaultOfflineThreshold is cluster.offline_threshold unset: a member whose last
// heartbeat is older is offline.
const DefaultOfflineThreshold = 20 * time.Second

// OfflineThreshold parses cluster.offline_threshold, in seconds as LXD takes it; empty
// or unusable is the default (or BERTH_TEST_OFFLINE_THRESHOLD's value, heartbeat_threshold.go).
func OfflineThreshold(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return defaultOfflineThreshold()
	}

	return time.Duration(n) * time.Second
}

// View is how rows become members: who asks, when, and what the database layer says.
type View struct {
	Clustered bool          // false: the one member is this host, always online
	SelfID    int64         // the asking member (db.SelfMemberID unclustered)
	Now       time.Time     // zero: time.Now()
	Threshold time.Duration // zero: DefaultOfflineThreshold
	// Roles are the database roles by member address (DatabaseRoles of the gateway's
	// raft members); a member missing here holds none.
	Roles map[string][]string
}

// Member turns a row into a member.
//
// Online: a host that is not clustered is always online, and so is the asking member
// itself (it is answering). Another member is online while its last heartbeat is
// within the threshold. A member row is written with its join as its first heartbeat
// (the accepting side sets Heartbeat to now), so a newly joined member counts as online
// for its first threshold before it heartbeats itself; a row that never had one is
// offline.
func (v View) Member(m db.Member) Member {
	now := v.Now
	if now.IsZero() {
		now = time.Now()
	}

	threshold := v.Threshold
	if threshold <= 0 {
		threshold = DefaultOfflineThreshold
	}

	online := !v.Clustered || m.ID == v.SelfID || (!m.Heartbeat.IsZero() && now.Sub(m.Heartbeat) <= threshold)
	roles := v.Roles[m.Address]
	if m.Address == "" || roles == nil {
		roles = []string{}
	}

	return Member{
		ID: m.ID, Name: m.Name, Address: m.Address, Description: m.Description, Arch: m.Arch,
		FailureDomain: m.FailureDomain, Roles: roles, Evacuated: m.Evacuated, Online: online,
		Heartbeat: m.Heartbeat, SchemaVersion: m.SchemaVersion, APIExtensions: m.APIExtensions,
	}
}

// ListMembers returns every member, by id.
func ListMembers(ctx context.Context, tx *db.Tx, v View) ([]Member, error) {
	rows, err := tx.GetMembers(ctx)
	if err != nil {
		return nil, err
	}

	out := make([]Member, 0, len(rows))
	for _, r := range rows {
		out = append(out, v.Member(r))
	}

	return out, nil
}

// GetMember returns the named member, or a 404 naming it.
func GetMember(ctx context.Context, tx *db.Tx, name string, v View) (Member, error) {
	row, err := tx.GetMember(ctx, name)
	if err != nil {
		return Member{}, err
	}

	return v.Member(*row), nil
}

// The database roles of LXD 5.0's API.
const (
	RoleDatabase        = "database"
	RoleDatabaseLeader  = "database-leader"
	RoleDatabaseStandby = "database-standby"
)

// DatabaseRoles names a raft member's role as LXD 5.0 shows it: a voter is
// ["database"], the leader ["database-leader", "database"], a stand-by
// ["database-standby"], a spare (no replica) nothing.
func DatabaseRoles(raftRole string, leader bool) []string {
	switch raftRole {
	case "voter":
		if leader {
			return []string{RoleDatabaseLeader, RoleDatabase}
		}

		return []string{RoleDatabase}
	case "standby", "stand-by":
		return []string{RoleDatabaseStandby}
	default:
		return []string{}
	}
}

// Status is the member's status as the API shows it: "Evacuated" wins over "Online"
// ("Offline" over both: an evacuated member that is gone is still gone).
func (m Member) Status() string {
	switch {
	case !m.Online:
		return "Offline"
	case m.Evacuated:
		return "Evacuated"
	default:
		return "Online"
	}
}

// Database reports whether the member is a voting database member.
func (m Member) Database() bool {
	for _, r := range m.Roles {
		if r == RoleDatabase {
			return true
		}
	}

	return false
}
