package storage

import (
	"context"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/idmap"
)

// The overlay driver snapshots and copies an instance's upper layer: the image below it
// is shared and never changes.

// CreateSnapshot implements Driver.
func (d *overlay) CreateSnapshot(ctx context.Context, name, snap string) error {
	return d.createSnapshot(ctx, name, snap, "upper")
}

// RestoreSnapshot implements Driver. The work directory is emptied: overlayfs requires
// it empty of anything belonging to the previous upper layer.
func (d *overlay) RestoreSnapshot(ctx context.Context, name, snap string) error {
	err := d.restoreSnapshot(ctx, name, snap, "upper", emptyWork)
	if err != nil {
		return err
	}

	return emptyWork(d.instanceDir(name))
}

// emptyWork empties the overlay work directory of the instance tree at dir.
func emptyWork(dir string) error {
	work := filepath.Join(dir, "work")
	err := os.RemoveAll(work)
	if err != nil {
		return err
	}

	return os.Mkdir(work, 0o700)
}

// CopyInstance implements Driver.
func (d *overlay) CopyInstance(ctx context.Context, src, srcSnap, dst string, from, to idmap.Set) error {
	return d.copyInstance(ctx, src, srcSnap, dst, "upper", from, to, func(tmp string) error {
		for _, sub := range []string{"work", "lower", "rootfs"} {
			err := os.Mkdir(filepath.Join(tmp, sub), 0o700)
			if err != nil {
				return err
			}
		}

		return nil
	})
}

// CopySnapshot implements Driver.
func (d *overlay) CopySnapshot(ctx context.Context, src, srcSnap, dst, dstSnap string, from, to idmap.Set) error {
	return d.copySnapshot(ctx, src, srcSnap, dst, dstSnap, "upper", from, to)
}

// The dir driver snapshots and copies the whole root filesystem.

// CreateSnapshot implements Driver.
func (d *dirDriver) CreateSnapshot(ctx context.Context, name, snap string) error {
	return d.createSnapshot(ctx, name, snap, "rootfs")
}

// RestoreSnapshot implements Driver.
func (d *dirDriver) RestoreSnapshot(ctx context.Context, name, snap string) error {
	return d.restoreSnapshot(ctx, name, snap, "rootfs", nil)
}

// CopyInstance implements Driver.
func (d *dirDriver) CopyInstance(ctx context.Context, src, srcSnap, dst string, from, to idmap.Set) error {
	return d.copyInstance(ctx, src, srcSnap, dst, "rootfs", from, to, nil)
}

// CopySnapshot implements Driver.
func (d *dirDriver) CopySnapshot(ctx context.Context, src, srcSnap, dst, dstSnap string, from, to idmap.Set) error {
	return d.copySnapshot(ctx, src, srcSnap, dst, dstSnap, "rootfs", from, to)
}
