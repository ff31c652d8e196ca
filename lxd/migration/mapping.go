package migration

import (
	"fmt"
	"slices"
	"strconv"
	"syscall"

	"github.com/berth-dev/berth/lxd/idmap"
)

// maxMapLines is the kernel's limit of lines in a uid_map or gid_map.
const maxMapLines = 340

// Mapping is the user namespace an rsync end runs in: its ids (rsync's, which are the
// ids on the wire) mapped to host ids. The process runs as its uid and gid 0, which must
// map to the container's root; WireRootUID/GID, when not 0, are the wire ids of the
// container's root, which rsync's --usermap/--groupmap turn into 0.
type Mapping struct {
	UIDs, GIDs               []syscall.SysProcIDMap
	WireRootUID, WireRootGID int
}

// ContainerMapping is a container's own view: ids 0..Size-1 are its ids (what the
// wire carries between two Berth servers, and an LXD header without an id map).
func ContainerMapping(ids idmap.Set) Mapping {
	return Mapping{UIDs: ids.UIDMappings(), GIDs: ids.GIDMappings()}
}

// ReceiveMapping is the receiver's mapping for a sender's header id map: wire ids map to
// the target container's ids (ids) through the sender's map (wire id hostid+k is the
// container's nsid+k). No map: the wire carries container ids. Container ids outside the
// target's range are left unmapped, so a file that names one fails the transfer.
func ReceiveMapping(ids idmap.Set, header []*IDMapType) (Mapping, error) {
	if len(header) == 0 {
		return ContainerMapping(ids), nil
	}

	if len(header) > 2*maxMapLines {
		return Mapping{}, fmt.Errorf("migration id map has %d lines", len(header))
	}

	m := Mapping{}
	var err error
	m.UIDs, m.WireRootUID, err = receiveLines(header, true, ids.HostUID, ids.Size)
	if err != nil {
		return Mapping{}, fmt.Errorf("migration uid map: %w", err)
	}

	m.GIDs, m.WireRootGID, err = receiveLines(header, false, ids.HostGID, ids.Size)
	if err != nil {
		return Mapping{}, fmt.Errorf("migration gid map: %w", err)
	}

	return m, nil
}

// receiveLines maps the wire ids of one kind to host ids hostBase+container id.
func receiveLines(header []*IDMapType, uid bool, hostBase, size int64) ([]syscall.SysProcIDMap, int, error) {
	lines := []syscall.SysProcIDMap{}
	for _, e := range header {
		if (uid && !e.GetIsuid()) || (!uid && !e.GetIsgid()) {
			continue
		}

		wire, ns, n := int64(e.GetHostid()), int64(e.GetNsid()), int64(e.GetMaprange())
		if wire < 0 || ns < 0 || n <= 0 {
			return nil, 0, fmt.Errorf("invalid line (host %d, ns %d, range %d)", wire, ns, n)
		}

		lo, hi := ns, min(ns+n, size)
		if lo >= hi {
			continue
		}

		lines = append(lines, syscall.SysProcIDMap{ContainerID: int(wire), HostID: int(hostBase + lo), Size: int(hi - lo)})
	}

	// The container's root on the wire: rsync runs as id 0, which must be the root.
	root := -1
	for i, l := range lines {
		if int64(l.HostID) == hostBase {
			root = i
		}
	}

	if root < 0 {
		return nil, 0, fmt.Errorf("the container's root is not mapped")
	}

	wireRoot := lines[root].ContainerID
	if wireRoot != 0 {
		// Take the root out of its line and map id 0 to it instead; --usermap turns the
		// wire's root into 0.
		l := lines[root]
		lines = slices.Delete(lines, root, root+1)
		if l.Size > 1 {
			lines = append(lines, syscall.SysProcIDMap{ContainerID: l.ContainerID + 1, HostID: l.HostID + 1, Size: l.Size - 1})
		}

		lines = append(lines, syscall.SysProcIDMap{ContainerID: 0, HostID: int(hostBase), Size: 1})
	}

	err := checkLines(lines)
	if err != nil {
		return nil, 0, err
	}

	return lines, wireRoot, nil
}

// checkLines refuses overlapping lines (on either side) and too many of them, before the
// kernel does with a less helpful error.
func checkLines(lines []syscall.SysProcIDMap) error {
	if len(lines) > maxMapLines {
		return fmt.Errorf("%d lines, over the kernel's %d", len(lines), maxMapLines)
	}

	for i, a := range lines {
		for _, b := range lines[i+1:] {
			if overlap(a.ContainerID, a.Size, b.ContainerID, b.Size) || overlap(a.HostID, a.Size, b.HostID, b.Size) {
				return fmt.Errorf("lines overlap")
			}
		}
	}

	return nil
}

func overlap(a, an, b, bn int) bool { return a < b+bn && b < a+an }

// usermapArgs are rsync's receiver options that turn the wire's root into 0.
func (m Mapping) usermapArgs() []string {
	out := []string{}
	if m.WireRootUID != 0 {
		out = append(out, "--usermap="+strconv.Itoa(m.WireRootUID)+":0")
	}

	if m.WireRootGID != 0 {
		out = append(out, "--groupmap="+strconv.Itoa(m.WireRootGID)+":0")
	}

	// A file capability names its root (v3, as LXD's shifted trees hold them): the
	// wire's root is not mapped here (0 stands for it), so the kernel refuses to set it.
	// Such a tree arrives without its file capabilities (see doc/migrating-from-lxd.md).
	if m.WireRootUID != 0 {
		out = append(out, "--filter=-x security.capability")
	}

	return out
}
