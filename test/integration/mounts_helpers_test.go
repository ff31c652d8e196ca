package integration

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// hostMounts is the mount table of the tests' mount namespace, the host's. A table that
// cannot be read fails t and reads as empty, so that cleanups that call it still run on.
func hostMounts(t testing.TB) []mountinfo.Mount {
	t.Helper()

	mounts, err := mountinfo.Self()
	if err != nil {
		t.Errorf("reading the host's mounts: %v", err)
	}

	return mounts
}

// mountsNaming returns the mounts that name s in their mount point, root, source or
// superblock options (where an overlay lists its layers).
func mountsNaming(mounts []mountinfo.Mount, s string) []mountinfo.Mount {
	var out []mountinfo.Mount

	for _, m := range mounts {
		if strings.Contains(m.MountPoint, s) || strings.Contains(m.Root, s) ||
			strings.Contains(m.Source, s) || strings.Contains(m.SuperOptions, s) {
			out = append(out, m)
		}
	}

	return out
}
