package storage

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/idmap"
)

// dirDriver copies the image into each instance, shifting ownership into the instance's
// range on the way (idmap.CopyShifted). It works on any filesystem and kernel, at the cost
// of a full copy per instance.
//
//	containers/<name>/rootfs  the instance's tree, owned by its host ids
type dirDriver struct {
	*pool
}

func newDir(p *pool) driver { return &dirDriver{pool: p} }

func (d *dirDriver) Name() string { return "dir" }

func (d *dirDriver) load() error { return nil }

// DeleteImage implements Driver. Instances hold full copies, so it never refuses.
func (d *dirDriver) DeleteImage(fp string) error {
	return d.deleteImage(fp, nil)
}

// CreateInstanceFromImage implements Driver by a shifted copy of the image tree.
func (d *dirDriver) CreateInstanceFromImage(name, fp string, ids idmap.Set) error {
	return d.createInstance(name, fp, ids, func(tmp string) error {
		return ids.CopyShifted(context.Background(), d.imageRootfs(fp), filepath.Join(tmp, "rootfs"))
	})
}

// DeleteInstance implements Driver. A missing instance is not an error.
func (d *dirDriver) DeleteInstance(name string) error {
	return d.deleteInstance(name, d.UnmountInstance)
}

// MountInstance implements Driver with a bind mount of rootfs on itself: this makes rootfs a
// mount point (pivot_root needs one) and adds nodev, as the overlay driver does. Ownership
// inside was shifted at creation; ids owns the instance directory.
func (d *dirDriver) MountInstance(name string, ids idmap.Set) (string, error) {
	err := d.instanceExists(name)
	if err != nil {
		return "", err
	}

	err = restrictInstanceDir(d.instanceDir(name), ids)
	if err != nil {
		return "", err
	}

	rootfs := filepath.Join(d.instanceDir(name), "rootfs")

	mounted, err := isMountRoot(rootfs)
	if err != nil {
		return "", err
	}

	if mounted {
		return rootfs, nil
	}

	err = bindNodev(rootfs, rootfs)
	if err != nil {
		return "", fmt.Errorf("mounting instance %q: %w", name, err)
	}

	return rootfs, nil
}

// UnmountInstance implements Driver. Idempotent.
func (d *dirDriver) UnmountInstance(name string) error {
	err := checkName("instance", name)
	if err != nil {
		return err
	}

	err = unmountAll(filepath.Join(d.instanceDir(name), "rootfs"))
	if err != nil {
		return fmt.Errorf("unmounting instance %q: %w", name, err)
	}

	return nil
}

// Mountpoints implements Driver.
func (d *dirDriver) Mountpoints(name string) []string {
	return []string{filepath.Join(d.instanceDir(name), "rootfs")}
}
