package instance

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/fileio"
	"github.com/berth-dev/berth/lxd/idmap"
)

// FilesRoot is an instance opened for the files API (lxd/session): a running instance's
// monitor, whose file server will do the work as the container's root, or a stopped
// instance's root filesystem, mounted on the host and the instance locked until Release,
// so that it cannot start (and mount a second overlay on the same upper layer) meanwhile.
type FilesRoot struct {
	IDs     idmap.Set
	Running *container.Monitor // nil when the instance is stopped
	Root    *fileio.Root       // the stopped instance's; its user closes it before Release
	Release func()             // the stopped instance's: unmounts and unlocks it
}

// OpenFilesRoot opens an instance for the files API (FilesRoot).
func (m *Manager) OpenFilesRoot(ctx context.Context, name string) (*FilesRoot, error) {
	inst, profiles, err := m.load(ctx, name)
	if err != nil {
		return nil, err
	}

	_, devices := Expand(inst, profiles)
	pool, err := m.pools.of(devices)
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
		return &FilesRoot{IDs: ids, Running: mon}, nil
	}

	rootfs, err := pool.MountInstance(name, ids)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("mounting root of %q: %w", name, err)
	}

	release := func() {
		err := pool.UnmountInstance(name)
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

	return &FilesRoot{IDs: ids, Root: root, Release: release}, nil
}

// Running is the monitor of a running instance, nil when it is stopped.
func (m *Manager) Running(name string) *container.Monitor {
	return m.monitor(name)
}
