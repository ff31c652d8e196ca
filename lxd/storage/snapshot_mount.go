package storage

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/revert"
)

// MountSnapshot implements Driver: a read-only overlay of the snapshot's upper layer over
// its image (idmapped by ids), in a temporary directory next to the snapshot. The upper
// layer is a lower layer here, so it is never written.
func (d *overlay) MountSnapshot(name, snap string, ids idmap.Set) (string, func(), error) {
	err := d.snapshotExists(name, snap)
	if err != nil {
		return "", nil, err
	}

	snapDir := d.snapshotDir(name, snap)
	data, err := os.ReadFile(filepath.Join(snapDir, imageFile))
	if err != nil {
		return "", nil, fmt.Errorf("reading image of snapshot %q: %w", snap, err)
	}

	fp := string(trimNL(data))
	tmp, err := os.MkdirTemp(d.snapshotsOf(name), tmpPrefix+"mnt-")
	if err != nil {
		return "", nil, err
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = os.RemoveAll(tmp) })

	lower, rootfs := filepath.Join(tmp, "lower"), filepath.Join(tmp, "rootfs")
	for _, dir := range []string{lower, rootfs} {
		err := os.Mkdir(dir, 0o700)
		if err != nil {
			return "", nil, err
		}
	}

	err = mountIdmapped(d.imageRootfs(fp), lower, ids)
	if err != nil {
		return "", nil, err
	}

	r.Add(func() { _ = unmountAll(lower) })

	opts := fmt.Sprintf("lowerdir=%s:%s,redirect_dir=follow,metacopy=off", filepath.Join(snapDir, "upper"), lower)
	err = unix.Mount("overlay", rootfs, "overlay", unix.MS_RDONLY|unix.MS_NODEV, opts)
	if err != nil {
		return "", nil, fmt.Errorf("mounting snapshot %q of %q: %w", snap, name, err)
	}

	r.Success()
	release := func() {
		_ = unmountAll(rootfs)
		_ = unmountAll(lower)
		_ = os.RemoveAll(tmp)
	}

	return rootfs, release, nil
}

// MountSnapshot implements Driver: a read-only bind mount of the snapshot's tree.
func (d *dirDriver) MountSnapshot(name, snap string, _ idmap.Set) (string, func(), error) {
	err := d.snapshotExists(name, snap)
	if err != nil {
		return "", nil, err
	}

	tmp, err := os.MkdirTemp(d.snapshotsOf(name), tmpPrefix+"mnt-")
	if err != nil {
		return "", nil, err
	}

	rootfs := filepath.Join(tmp, "rootfs")
	err = os.Mkdir(rootfs, 0o700)
	if err == nil {
		err = bindReadOnly(filepath.Join(d.snapshotDir(name, snap), "rootfs"), rootfs)
	}

	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("mounting snapshot %q of %q: %w", snap, name, err)
	}

	return rootfs, func() {
		_ = unmountAll(rootfs)
		_ = os.RemoveAll(tmp)
	}, nil
}

// bindReadOnly attaches a read-only, nodev copy of the mount tree at src on dst.
func bindReadOnly(src, dst string) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cloning mount of %q: %w", src, err)
	}

	defer func() { _ = unix.Close(tree) }()

	err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV})
	if err != nil {
		return fmt.Errorf("making mount of %q read-only: %w", src, err)
	}

	return unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH)
}
