package container

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// TestHostileRootfsSymlinks: an image whose /tmp is an absolute symlink to
// a host path must get its tmpfs inside its own root (where the symlink
// points when read from inside), not on the host path.
func TestHostileRootfsSymlinks(t *testing.T) {
	needRoot(t)

	// Not under /tmp: that would make the symlink point through itself.
	hostDir, err := os.MkdirTemp("/var/tmp", "berth-hostile-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(hostDir) })

	name := fmt.Sprintf("hostile-%d", os.Getpid())

	// Prepare the overlay by hand so /tmp can be replaced before Start.
	rootfs := overlayRootfs(t, name)

	err = os.RemoveAll(filepath.Join(rootfs, "tmp"))
	if err != nil {
		t.Fatal(err)
	}

	err = os.Symlink(hostDir, filepath.Join(rootfs, "tmp"))
	if err != nil {
		t.Fatal(err)
	}

	err = os.Lchown(filepath.Join(rootfs, "tmp"), testHostID, testHostID)
	if err != nil {
		t.Fatal(err)
	}

	spec, m, _ := testContainerOn(t, name, rootfs)
	pid := m.InitPID()

	waitSystemd(t, pid)

	// From the host, /proc/<pid>/mountinfo shows mount points relative to
	// the container's root: the tmpfs must sit at hostDir inside it.
	mounts, err := mountinfo.ParseFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}

	found := false

	for _, m := range mounts {
		if m.MountPoint == hostDir && m.FSType == "tmpfs" {
			found = true
		}
	}

	if !found {
		t.Errorf("no tmpfs at %s inside the container: %v", hostDir, mounts)
	}

	// mkpath created the target inside the root, not on the host.
	_, err = os.Stat(filepath.Join(rootfs, hostDir))
	if err != nil {
		t.Errorf("target not created inside the root: %v", err)
	}

	entries, _ := os.ReadDir(hostDir)
	if len(entries) != 0 {
		t.Errorf("host dir %s was written to: %v", hostDir, entries)
	}

	_, err = m.Stop(t.Context(), 30*time.Second, true)
	if err != nil {
		t.Fatal(err)
	}

	checkGone(t, spec, pid, 0)
}
