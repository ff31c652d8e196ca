package storage

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// isMountRoot reports whether path is the root of a mount, via statx (Linux 5.8+), falling
// back to /proc/self/mountinfo. A missing path is not a mount.
func isMountRoot(path string) (bool, error) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, unix.STATX_TYPE, &stx)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}

	if err != nil {
		return false, fmt.Errorf("checking mount at %q: %w", path, err)
	}

	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}

	mounts, err := mountsUnder(path)
	if err != nil {
		return false, err
	}

	for _, m := range mounts {
		if m == filepath.Clean(path) {
			return true, nil
		}
	}

	return false, nil
}

// mountsUnder lists the mount points at or below dir in our mount namespace.
func mountsUnder(dir string) ([]string, error) {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}

	return mountinfo.Under(mounts, dir), nil
}

// unmountAll unmounts everything stacked on path, detaching lazily when busy. A path that
// is not (or no longer) a mount point is fine.
func unmountAll(path string) error {
	for range 16 {
		err := unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(path, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH)
		}

		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}

		if err != nil {
			return fmt.Errorf("unmounting %q: %w", path, err)
		}
	}

	return fmt.Errorf("unmounting %q: still mounted after 16 unmounts", path)
}

// mountIdmapped attaches a copy of the tree at src on dst with ownership shifted by ids
// (container uid 0 → ids.HostUID), without changing anything on disk, and with nodev so
// that device nodes shipped in an image are inert.
func mountIdmapped(src, dst string, ids idmap.Set) error {
	userns, cleanup, err := ids.SharedUserns()
	if err != nil {
		return fmt.Errorf("mounting %q idmapped: %w", src, err)
	}

	defer cleanup()

	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cloning mount of %q: %w", src, err)
	}

	defer func() { _ = unix.Close(tree) }()

	attr := unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(userns.Fd()),
	}

	err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr)
	if err != nil {
		return fmt.Errorf("idmapping mount of %q: %w", src, err)
	}

	err = unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("attaching idmapped %q on %q: %w", src, dst, err)
	}

	return nil
}

// bindNodev bind-mounts src on dst adding nodev and keeping every other flag of the source
// mount (a remount with MS_NODEV would also clear nosuid or noexec set by the admin).
func bindNodev(src, dst string) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cloning mount of %q: %w", src, err)
	}

	defer func() { _ = unix.Close(tree) }()

	err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NODEV})
	if err != nil {
		return fmt.Errorf("setting nodev on mount of %q: %w", src, err)
	}

	err = unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("attaching %q on %q: %w", src, dst, err)
	}

	return nil
}
