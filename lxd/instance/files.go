package instance

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/lxd/fileio"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
)

// Files is an instance's root filesystem opened for the files API. Close it when done.
type Files struct {
	*fileio.Root
	IDs     idmap.Set
	release func()
}

// Close releases the root (and, for a stopped instance, unmounts it and lets other state
// changes of the instance proceed).
func (f *Files) Close() {
	_ = f.Root.Close()
	if f.release != nil {
		f.release()
		f.release = nil
	}
}

// Owner maps container ids to host ids for new entries; -1 means root. Ids outside the
// instance's map are a 400.
func (f *Files) Owner(uid, gid int64) (fileio.Owner, error) {
	if uid < 0 {
		uid = 0
	}

	if gid < 0 {
		gid = 0
	}

	hu, hg := f.IDs.UIDToHost(uid), f.IDs.GIDToHost(gid)
	if hu < 0 || hg < 0 {
		return fileio.Owner{}, api.StatusErrorf(http.StatusBadRequest, "owner %d:%d is outside the instance's id map (0-%d)", uid, gid, f.IDs.Size-1)
	}

	return fileio.Owner{UID: int(hu), GID: int(hg)}, nil
}

// ContainerIDs maps host ids back to what the container sees; ids outside the map show as
// the overflow id 65534, as they do inside.
func (f *Files) ContainerIDs(uid, gid int64) (int64, int64) {
	cu, cg := uid-f.IDs.HostUID, gid-f.IDs.HostGID
	if cu < 0 || cu >= f.IDs.Size {
		cu = 65534
	}

	if cg < 0 || cg >= f.IDs.Size {
		cg = 65534
	}

	return cu, cg
}

// OpenFiles opens the root an instance sees as "/". A running instance is entered through
// /proc/<init>/root, so paths cross the container's own mounts (its tmpfs /tmp and /run)
// exactly as inside. A stopped instance is mounted for the duration and its lock is held
// until Close, so it cannot start (and mount a second overlay on the same upper layer)
// meanwhile.
func (m *Manager) OpenFiles(ctx context.Context, name string) (*Files, error) {
	inst, _, err := m.load(ctx, name)
	if err != nil {
		return nil, err
	}

	ids, err := m.idsOf(inst)
	if err != nil {
		return nil, err
	}

	unlock := m.lock(name)
	mon := m.monitor(name)
	if mon != nil {
		unlock()
		pid := mon.InitPID()
		root, err := fileio.OpenRoot(fmt.Sprintf("/proc/%d/root", pid))
		if err != nil {
			return nil, fmt.Errorf("opening root of %q: %w", name, err)
		}

		// The pid was read before the open: make sure it was still this container's init.
		if m.monitor(name) != mon || mon.InitPID() != pid {
			_ = root.Close()
			return nil, api.StatusErrorf(http.StatusConflict, "instance %q changed state, try again", name)
		}

		return &Files{Root: root, IDs: ids}, nil
	}

	rootfs, err := m.cfg.Pool.MountInstance(name, ids)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("mounting root of %q: %w", name, err)
	}

	release := func() {
		err := m.cfg.Pool.UnmountInstance(name)
		if err != nil {
			m.log.Warn("unmounting after file access", "instance", name, "err", err)
		}

		unlock()
	}

	root, err := fileio.OpenRoot(rootfs)
	if err != nil {
		release()
		return nil, fmt.Errorf("opening root of %q: %w", name, err)
	}

	return &Files{Root: root, IDs: ids, release: release}, nil
}
