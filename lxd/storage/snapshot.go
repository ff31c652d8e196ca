package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

// Snapshot layout:
//
//	<pool>/containers-snapshots/<name>/<snap>/<data>   copy of the instance's own data
//	                                                   (overlay: upper, dir: rootfs)
//	<pool>/containers-snapshots/<name>/<snap>/image    the image the data sits on
//
// A snapshot is copied into a .tmp-* directory and renamed into place only when complete,
// so a crash never leaves a half snapshot under its name.
const snapshotsDir = "containers-snapshots"

// ErrSnapshotExists and ErrSnapshotNotFound are wrapped in 409 and 404 StatusErrors.
var (
	ErrSnapshotExists   = errors.New("snapshot already exists")
	ErrSnapshotNotFound = errors.New("snapshot not found")
)

func (p *pool) snapshotsOf(name string) string { return filepath.Join(p.dir, snapshotsDir, name) }
func (p *pool) snapshotDir(name, snap string) string {
	return filepath.Join(p.snapshotsOf(name), snap)
}

func (p *pool) checkSnapshot(name, snap string) error {
	err := p.instanceExists(name)
	if err != nil {
		return err
	}

	return checkName("snapshot", snap)
}

func (p *pool) snapshotExists(name, snap string) error {
	err := p.checkSnapshot(name, snap)
	if err != nil {
		return err
	}

	_, err = os.Lstat(p.snapshotDir(name, snap))
	if errors.Is(err, os.ErrNotExist) {
		return api.StatusErrorf(http.StatusNotFound, "snapshot %q of %q: %w", snap, name, ErrSnapshotNotFound)
	}

	return err
}

// createSnapshot copies the instance's data directory (sub) as snapshot snap, keeping
// every owner. The caller makes the data still (a frozen or stopped container).
func (p *pool) createSnapshot(ctx context.Context, name, snap, sub string) error {
	err := p.checkSnapshot(name, snap)
	if err != nil {
		return err
	}

	_, err = os.Lstat(p.snapshotDir(name, snap))
	if err == nil {
		return api.StatusErrorf(http.StatusConflict, "snapshot %q of %q: %w", snap, name, ErrSnapshotExists)
	}

	parent := p.snapshotsOf(name)
	err = os.MkdirAll(parent, 0o700)
	if err != nil {
		return fmt.Errorf("creating snapshot %q of %q: %w", snap, name, err)
	}

	if p.subvolumeSnapshots(name) {
		return p.snapshotSubvolume(name, snap)
	}

	tmp, err := os.MkdirTemp(parent, tmpPrefix+snap+"-")
	if err != nil {
		return fmt.Errorf("creating snapshot %q of %q: %w", snap, name, err)
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = os.RemoveAll(tmp) })

	err = idmap.CopyExact(ctx, filepath.Join(p.instanceDir(name), sub), filepath.Join(tmp, sub))
	if err != nil {
		return fmt.Errorf("copying %q for snapshot %q: %w", name, snap, err)
	}

	err = copyImageFile(filepath.Join(p.instanceDir(name), imageFile), filepath.Join(tmp, imageFile))
	if err != nil {
		return err
	}

	err = syncFS(tmp)
	if err != nil {
		return err
	}

	err = os.Rename(tmp, p.snapshotDir(name, snap))
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return api.StatusErrorf(http.StatusConflict, "snapshot %q of %q: %w", snap, name, ErrSnapshotExists)
	}

	if err != nil {
		return fmt.Errorf("publishing snapshot %q of %q: %w", snap, name, err)
	}

	r.Success()
	syncDir(parent)
	p.log.Info("created snapshot", "instance", name, "snapshot", snap)
	return nil
}

// DeleteSnapshot implements Driver. A missing snapshot is not an error.
func (p *pool) DeleteSnapshot(name, snap string) error {
	err := p.checkSnapshot(name, snap)
	if err != nil {
		return err
	}

	_, err = os.Lstat(p.snapshotDir(name, snap))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}

	return p.removeTree(p.snapshotDir(name, snap), p.snapshotsOf(name))
}

// RenameSnapshot implements Driver.
func (p *pool) RenameSnapshot(name, oldSnap, newSnap string) error {
	err := p.snapshotExists(name, oldSnap)
	if err != nil {
		return err
	}

	err = checkName("snapshot", newSnap)
	if err != nil {
		return err
	}

	err = unix.Renameat2(unix.AT_FDCWD, p.snapshotDir(name, oldSnap), unix.AT_FDCWD, p.snapshotDir(name, newSnap), unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return api.StatusErrorf(http.StatusConflict, "snapshot %q of %q: %w", newSnap, name, ErrSnapshotExists)
	}

	if err != nil {
		return fmt.Errorf("renaming snapshot %q of %q: %w", oldSnap, name, err)
	}

	return nil
}

// restoreSnapshot replaces the instance's data directory (sub) by a copy of the snapshot's,
// swapped in with one renameat2(RENAME_EXCHANGE), and points the instance at the
// snapshot's image. The instance must be unmounted. On btrfs the whole subvolume is
// swapped instead (restoreSubvolume); fixup then adjusts the new tree.
func (p *pool) restoreSnapshot(ctx context.Context, name, snap, sub string, fixup func(dir string) error) error {
	err := p.snapshotExists(name, snap)
	if err != nil {
		return err
	}

	dir := p.instanceDir(name)
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}

	if len(mounts) > 0 {
		return api.StatusErrorf(http.StatusConflict, "restoring %q: %w", name, ErrStillMounted)
	}

	if p.subvolumeSnapshots(name) {
		err = p.restoreSubvolume(name, snap, fixup)
		if !errors.Is(err, errSwapUnsupported) {
			return err
		}
	}

	tmp, err := os.MkdirTemp(dir, tmpPrefix+"restore-")
	if err != nil {
		return fmt.Errorf("restoring %q: %w", name, err)
	}

	defer func() { _ = os.RemoveAll(tmp) }()

	err = idmap.CopyExact(ctx, filepath.Join(p.snapshotDir(name, snap), sub), filepath.Join(tmp, sub))
	if err != nil {
		return fmt.Errorf("copying snapshot %q of %q: %w", snap, name, err)
	}

	err = syncFS(tmp)
	if err != nil {
		return err
	}

	err = unix.Renameat2(unix.AT_FDCWD, filepath.Join(tmp, sub), unix.AT_FDCWD, filepath.Join(dir, sub), unix.RENAME_EXCHANGE)
	if err != nil {
		return fmt.Errorf("swapping in snapshot %q of %q: %w", snap, name, err)
	}

	// The old data is now in tmp, removed on return.
	err = copyImageFile(filepath.Join(p.snapshotDir(name, snap), imageFile), filepath.Join(dir, imageFile))
	if err != nil {
		return err
	}

	p.log.Info("restored snapshot", "instance", name, "snapshot", snap)
	return nil
}

// removeSnapshots deletes every snapshot of an instance (with the instance).
func (p *pool) removeSnapshots(name string) error {
	_, err := os.Lstat(p.snapshotsOf(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}

	err = os.MkdirAll(filepath.Join(p.dir, snapshotsDir), 0o700)
	if err != nil {
		return err
	}

	return p.removeTree(p.snapshotsOf(name), filepath.Join(p.dir, snapshotsDir))
}

// renameSnapshots follows an instance rename.
func (p *pool) renameSnapshots(oldName, newName string) error {
	err := os.Rename(p.snapshotsOf(oldName), p.snapshotsOf(newName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("renaming snapshots of %q: %w", oldName, err)
	}

	return nil
}

// snapshotImageUsers lists "instance/snapshot" for snapshots sitting on image fp.
func (p *pool) snapshotImageUsers(fp string) []string {
	matches, _ := filepath.Glob(filepath.Join(p.dir, snapshotsDir, "*", "*", imageFile))
	var users []string
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err == nil && string(trimNL(data)) == fp {
			snapDir := filepath.Dir(m)
			users = append(users, filepath.Base(filepath.Dir(snapDir))+"/"+filepath.Base(snapDir))
		}
	}

	return users
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}

	return b
}

func copyImageFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading image record: %w", err)
	}

	err = os.WriteFile(dst, data, 0o644)
	if err != nil {
		return fmt.Errorf("writing image record: %w", err)
	}

	return nil
}
