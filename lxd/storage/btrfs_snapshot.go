package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

// Snapshots on btrfs. Where an instance's directory is a subvolume (a pool on btrfs, see
// makeInstanceTemp), a snapshot is a btrfs snapshot of that subvolume: it shares every
// extent with the instance, so it takes constant time and no space until either side
// changes. It has the instance directory's layout (the data directory and the image
// record, plus the driver's empty mount points), which is all a snapshot's readers use.
// A restore swaps in a snapshot of the snapshot for the instance's subvolume in one
// renameat2(RENAME_EXCHANGE), carrying the root disk limit over to it. Everywhere else
// (and for an instance made before quota support, whose directory is not a subvolume)
// snapshots and restores copy, as before.

// btrfsSnapshot makes parent/name a snapshot of the subvolume at src, read-only with
// readOnly (BTRFS_IOC_SNAP_CREATE_V2, the one snapshot call of this package).
func btrfsSnapshot(src, parent, name string, readOnly bool) error {
	if len(name) >= len(btrfsVolArgsV2{}.Name) || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid subvolume name %q", name)
	}

	srcFd, err := openDir(src)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(srcFd) }()

	fd, err := openDir(parent)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(fd) }()

	args := btrfsVolArgsV2{FD: int64(srcFd)}
	if readOnly {
		args.Flags = btrfsSubvolRdonly
	}

	copy(args.Name[:], name)
	err = ioctlPtr(fd, btrfsIocSnapCreateV2, unsafe.Pointer(&args))
	if err != nil {
		return fmt.Errorf("snapshotting btrfs subvolume %q as %q: %w", src, filepath.Join(parent, name), err)
	}

	return nil
}

// subvolumeSnapshots says whether instance name's snapshots are btrfs snapshots.
func (p *pool) subvolumeSnapshots(name string) bool {
	sub, err := btrfsIsSubvolume(p.instanceDir(name))
	return err == nil && sub
}

// tempName is a fresh name for work in progress under a pool directory.
func tempName(base string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return tmpPrefix + base + "-" + hex.EncodeToString(b)
}

// snapshotSubvolume makes snapshot snap of instance name as a btrfs snapshot of its
// subvolume, published under its name by a rename once it exists.
func (p *pool) snapshotSubvolume(name, snap string) error {
	parent := p.snapshotsOf(name)
	tmp := tempName(snap)
	err := btrfsSnapshot(p.instanceDir(name), parent, tmp, false)
	if err != nil {
		return err
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = os.RemoveAll(filepath.Join(parent, tmp)) })

	err = unix.Renameat2(unix.AT_FDCWD, filepath.Join(parent, tmp), unix.AT_FDCWD, p.snapshotDir(name, snap), unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return api.StatusErrorf(http.StatusConflict, "snapshot %q of %q: %w", snap, name, ErrSnapshotExists)
	}

	if err != nil {
		return fmt.Errorf("publishing snapshot %q of %q: %w", snap, name, err)
	}

	r.Success()
	syncDir(parent)
	p.log.Info("created snapshot (btrfs)", "instance", name, "snapshot", snap)

	return nil
}

// restoreSubvolume replaces instance name's subvolume by a snapshot of its snapshot
// snap; fixup adjusts the new tree before it is swapped in (the overlay empties its work
// directory). It returns errSwapUnsupported, having changed nothing, where the snapshot
// is not a subvolume or the kernel cannot swap subvolumes, so the caller copies instead.
func (p *pool) restoreSubvolume(name, snap string, fixup func(dir string) error) error {
	src := p.snapshotDir(name, snap)
	sub, err := btrfsIsSubvolume(src)
	if err != nil || !sub {
		return errSwapUnsupported
	}

	parent := filepath.Join(p.dir, containersDir)
	tmp := filepath.Join(parent, tempName(name+"-restore"))
	err = btrfsSnapshot(src, parent, filepath.Base(tmp), false)
	if err != nil {
		return err
	}

	defer func() { _ = os.RemoveAll(tmp) }()

	if fixup != nil {
		err = fixup(tmp)
		if err != nil {
			return err
		}
	}

	// The limit belongs to the instance, not to the subvolume that holds its data.
	limit, err := btrfsLimit(p.instanceDir(name))
	if err == nil && limit > 0 {
		err = btrfsSetLimit(tmp, limit)
	}

	if err != nil {
		return fmt.Errorf("carrying the root disk limit of %q over: %w", name, err)
	}

	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p.instanceDir(name), unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return errSwapUnsupported
	}

	if err != nil {
		return fmt.Errorf("swapping in snapshot %q of %q: %w", snap, name, err)
	}

	// The old data is now at tmp, removed on return.
	p.log.Info("restored snapshot (btrfs)", "instance", name, "snapshot", snap)

	return nil
}

// errSwapUnsupported says a restore has to copy.
var errSwapUnsupported = errors.New("cannot swap btrfs subvolumes here")

// btrfsLimit returns the limit on referenced bytes of the subvolume at path, 0 for none.
func btrfsLimit(path string) (int64, error) {
	id, err := btrfsSubvolumeID(path)
	if err != nil {
		return 0, err
	}

	sys, err := btrfsSysfs(path)
	if err != nil {
		return 0, err
	}

	data, err := os.ReadFile(filepath.Join(sys, "qgroups", fmt.Sprintf("0_%d", id), "max_referenced"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}

	if err != nil {
		return 0, fmt.Errorf("reading the limit of %q: %w", path, err)
	}

	// "none", or ^0, when there is no limit.
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n < 0 {
		return 0, nil // not a number: no limit
	}

	return n, nil
}
