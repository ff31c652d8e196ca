package sys

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// CgroupMode says which cgroup hierarchies the host mounts.
type CgroupMode int

const (
	// CgroupLegacy: only v1 controller hierarchies under /sys/fs/cgroup.
	CgroupLegacy CgroupMode = iota + 1
	// CgroupHybrid: v1 controllers plus cgroup2 (usually without
	// controllers) at /sys/fs/cgroup/unified.
	CgroupHybrid
	// CgroupUnified: /sys/fs/cgroup is cgroup2.
	CgroupUnified
)

// String names the mode as systemd does.
func (m CgroupMode) String() string {
	switch m {
	case CgroupLegacy:
		return "legacy"
	case CgroupHybrid:
		return "hybrid"
	case CgroupUnified:
		return "unified"
	}

	return fmt.Sprintf("CgroupMode(%d)", int(m))
}

// CgroupRoot is where the host mounts its cgroup hierarchies.
const CgroupRoot = "/sys/fs/cgroup"

// CgroupLayout detects the host's cgroup mode and returns the mount point of
// the cgroup2 hierarchy ("" in legacy mode).
func CgroupLayout() (CgroupMode, string, error) {
	return cgroupLayoutAt(CgroupRoot)
}

func cgroupLayoutAt(root string) (CgroupMode, string, error) {
	var st unix.Statfs_t

	err := unix.Statfs(root, &st)
	if err != nil {
		return 0, "", fmt.Errorf("inspecting %q: %w", root, err)
	}

	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return CgroupUnified, root, nil
	}

	if st.Type != unix.TMPFS_MAGIC {
		return 0, "", fmt.Errorf("unexpected filesystem type %#x at %q", st.Type, root)
	}

	unified := root + "/unified"

	err = unix.Statfs(unified, &st)
	if err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return CgroupHybrid, unified, nil
	}

	if err != nil && !errors.Is(err, unix.ENOENT) {
		return 0, "", fmt.Errorf("inspecting %q: %w", unified, err)
	}

	return CgroupLegacy, "", nil
}
