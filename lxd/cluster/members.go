package cluster

import (
	"slices"
	"strconv"
	"time"
)

// How a member shows in the API (the members API and placement; the rows and their
// online state are the Service's, member.go and service.go).

// OfflineThreshold parses cluster.offline_threshold, in seconds as LXD takes it; empty
// or unusable is the default (or BERTH_TEST_OFFLINE_THRESHOLD's value, heartbeat_threshold.go).
func OfflineThreshold(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return defaultOfflineThreshold()
	}

	return time.Duration(n) * time.Second
}

// The database roles of LXD 5.0's API.
const (
	RoleDatabase        = "database"
	RoleDatabaseLeader  = "database-leader"
	RoleDatabaseStandby = "database-standby"
)

// Status is the member's status as the API shows it: "Evacuated" wins over "Online",
// "Offline" over both (an evacuated member that is gone is still gone).
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

// Database reports whether the member is a voting database member (LXD's "database":
// true).
func (m Member) Database() bool {
	return slices.Contains(m.Roles, RoleDatabase)
}
