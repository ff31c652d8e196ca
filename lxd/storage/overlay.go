package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/revert"
)

// overlayOptions are fixed for every instance:
//   - index=off: the index ties an upper layer to one set of lower inodes and refuses
//     remounts after lower changes; we need neither hard-link preservation on copy-up nor
//     NFS export.
//   - metacopy=off: a chown or chmod copies the whole file up, so each upper layer is
//     self-contained and never refers back to lower data through xattrs.
//   - redirect_dir=on: renaming a directory that comes from the image works (recorded as a
//     redirect xattr in upper) instead of failing with EXDEV, which package managers inside
//     a system container would hit. Safe because our lower layer never changes.
const overlayOptions = "index=off,metacopy=off,redirect_dir=on"

// overlay keeps one read-only image tree per fingerprint and gives each instance an
// overlayfs whose lower layer is that tree mounted idmapped into the instance's range:
// creation makes four empty directories, and nothing is copied or chowned.
//
//	containers/<name>/upper   instance changes, owned by the instance's host root
//	containers/<name>/work    overlayfs work directory
//	containers/<name>/lower   mount point of the idmapped image tree
//	containers/<name>/rootfs  mount point of the overlay
type overlay struct {
	*pool
}

func newOverlay(p *pool) driver { return &overlay{pool: p} }

func (d *overlay) Name() string { return "overlay" }

func (d *overlay) load() error {
	if strings.ContainsAny(d.dir, ",:") {
		return fmt.Errorf("pool path %q contains ',' or ':', which overlayfs options cannot carry", d.dir)
	}

	return nil
}

// DeleteImage implements Driver: while instances or snapshots have this image as their
// lower layer (containers/*/image), it is released rather than removed.
func (d *overlay) DeleteImage(fp string) error {
	return d.deleteImage(fp, d.imageUsers)
}

// CreateInstanceFromImage implements Driver in a few directory creations.
func (d *overlay) CreateInstanceFromImage(name, fp string, ids idmap.Set) error {
	return d.createInstance(name, fp, ids, func(tmp string) error {
		var root syscall.Stat_t
		err := syscall.Stat(d.imageRootfs(fp), &root)
		if err != nil {
			return fmt.Errorf("reading image root: %w", err)
		}

		for _, sub := range []string{"upper", "work", "lower", "rootfs"} {
			err := os.Mkdir(filepath.Join(tmp, sub), 0o700)
			if err != nil {
				return err
			}
		}

		// The overlay's root directory takes its attributes from upper: make it the image
		// root's mode, owned by the container's root.
		upper := filepath.Join(tmp, "upper")
		err = os.Chown(upper, int(ids.HostUID), int(ids.HostGID))
		if err != nil {
			return err
		}

		return unix.Chmod(upper, root.Mode&0o7777)
	})
}

// DeleteInstance implements Driver. A missing instance is not an error.
func (d *overlay) DeleteInstance(name string) error {
	return d.deleteInstance(name, d.UnmountInstance)
}

// MountInstance implements Driver: the image tree, idmapped by ids, on lower; the overlay
// on rootfs. It is idempotent, and half a mount is undone on failure.
func (d *overlay) MountInstance(name string, ids idmap.Set) (string, error) {
	err := d.instanceExists(name)
	if err != nil {
		return "", err
	}

	dir := d.instanceDir(name)
	rootfs := filepath.Join(dir, "rootfs")
	lower := filepath.Join(dir, "lower")

	err = restrictInstanceDir(dir, ids)
	if err != nil {
		return "", err
	}

	mounted, err := isMountRoot(rootfs)
	if err != nil {
		return "", err
	}

	if mounted {
		return rootfs, nil
	}

	fp, err := d.instanceImage(name)
	if err != nil {
		return "", err
	}

	r := revert.New()
	defer r.Fail()

	// A lower left mounted (e.g. by a crash between the two mounts) may carry another
	// mapping; remount it so the overlay matches ids.
	err = unmountAll(lower)
	if err != nil {
		return "", err
	}

	err = mountIdmapped(d.imageRootfs(fp), lower, ids)
	if err != nil {
		return "", fmt.Errorf("mounting instance %q: %w", name, err)
	}

	r.Add(func() { _ = unmountAll(lower) })

	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,%s", lower, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), overlayOptions)

	// nodev: device nodes in an image must not give the container a way to host devices.
	err = unix.Mount("overlay", rootfs, "overlay", unix.MS_NODEV, opts)
	if err != nil {
		return "", fmt.Errorf("mounting overlay of instance %q on %q: %w", name, rootfs, err)
	}

	r.Success()

	return rootfs, nil
}

// UnmountInstance implements Driver. Idempotent.
func (d *overlay) UnmountInstance(name string) error {
	err := checkName("instance", name)
	if err != nil {
		return err
	}

	for _, mp := range d.Mountpoints(name) {
		err := unmountAll(mp)
		if err != nil {
			return fmt.Errorf("unmounting instance %q: %w", name, err)
		}
	}

	return nil
}

// Mountpoints implements Driver: the overlay, then the idmapped image under it.
func (d *overlay) Mountpoints(name string) []string {
	dir := d.instanceDir(name)

	return []string{filepath.Join(dir, "rootfs"), filepath.Join(dir, "lower")}
}
