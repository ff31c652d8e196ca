// Package idmap owns Berth's uid/gid range logic: reading /etc/subuid and /etc/subgid,
// allocating a per-container range, and expressing it as user namespace mappings.
package idmap

// DefaultSize is the number of ids each container gets (LXD's default).
const DefaultSize = 65536

// Set is the mapping of one container: container ids [0, Size) map to host ids
// [HostUID, HostUID+Size) and [HostGID, HostGID+Size).
type Set struct {
	HostUID int64 `json:"host_uid"`
	HostGID int64 `json:"host_gid"`
	Size    int64 `json:"size"`
}

// UIDToHost maps a container uid to the host, or -1 if it is outside the map.
func (s Set) UIDToHost(uid int64) int64 {
	if uid < 0 || uid >= s.Size {
		return -1
	}

	return s.HostUID + uid
}

// GIDToHost maps a container gid to the host, or -1 if it is outside the map.
func (s Set) GIDToHost(gid int64) int64 {
	if gid < 0 || gid >= s.Size {
		return -1
	}

	return s.HostGID + gid
}
