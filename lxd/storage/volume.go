package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
)

// Custom volume storage (lxd/volumes owns the records and layout; these are the
// filesystem operations it needs). A volume is one directory; where its parent is on
// btrfs it is a subvolume, so that a size can be set on its quota group and a snapshot
// is a btrfs snapshot (instant, shared extents) rather than a copy.

var (
	btrfsIocSnapDestroy    = ioc(iocWrite, 15, unsafe.Sizeof(btrfsVolArgs{}))
	btrfsIocSnapCreateV2   = ioc(iocWrite, 23, unsafe.Sizeof(btrfsVolArgsV2{}))
	btrfsSubvolRdonly      = uint64(1 << 1)
	errVolumeNotSubvolumes = errors.New("not both btrfs subvolumes")
)

type btrfsVolArgsV2 struct {
	FD      int64
	TransID uint64
	Flags   uint64
	Unused  [4]uint64
	Name    [4040]byte
}

// MakeVolumeDir creates the empty directory dir for a volume: a btrfs subvolume where its
// parent is on btrfs, else a plain directory. It is root's, mode 0700, until the caller
// gives it its owner.
func MakeVolumeDir(dir string) error {
	parent, base := filepath.Split(dir)
	magic, err := fsMagic(parent)
	if err != nil {
		return err
	}

	if magic == unix.BTRFS_SUPER_MAGIC {
		err = btrfsCreateSubvolume(parent, base)
	} else {
		err = os.Mkdir(dir, 0o700)
	}

	if err != nil {
		return err
	}

	return os.Chmod(dir, 0o700)
}

// VolumeQuotaProblem says why a size cannot be enforced on the volume directory dir (or a
// volume about to be made in dir's parent when dir does not exist), "" when it can.
func VolumeQuotaProblem(dir string) (string, error) {
	probe := dir
	_, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		probe = filepath.Dir(dir)
	}

	magic, err := fsMagic(probe)
	if err != nil {
		return "", err
	}

	if magic != unix.BTRFS_SUPER_MAGIC {
		return fmt.Sprintf("the pool is on %s, which has no per-volume quota Berth can set (a btrfs pool has)", fsName(magic)), nil
	}

	reason, err := btrfsQuotaProblem(probe)
	if err != nil || reason != "" {
		return reason, err
	}

	if probe == dir {
		sub, err := btrfsIsSubvolume(dir)
		if err != nil {
			return "", err
		}

		if !sub {
			return "the volume is not a btrfs subvolume", nil
		}
	}

	return "", nil
}

// SetVolumeLimit limits the bytes the volume subvolume dir references (0: no limit).
func SetVolumeLimit(dir string, limit int64) error {
	return btrfsSetLimit(dir, limit)
}

// VolumeUsage returns the bytes the volume subvolume dir references.
func VolumeUsage(dir string) (int64, error) {
	return btrfsReferenced(dir)
}

// CopyVolumeDir makes dst (which must not exist) a copy of the volume directory src,
// ids, modes, xattrs and hard links kept: a btrfs snapshot (read-only with readOnly) when
// both are on the same btrfs filesystem and src is a subvolume, else a full copy into a
// new volume directory. A partial copy is removed.
func CopyVolumeDir(ctx context.Context, src, dst string, readOnly bool) error {
	err := btrfsVolumeSnapshot(src, dst, readOnly)
	if err == nil || !errors.Is(err, errVolumeNotSubvolumes) {
		return err
	}

	tmp := filepath.Join(filepath.Dir(dst), tmpPrefix+"copy-"+randomSuffix())
	err = FillVolumeDir(tmp, func(d string) error { return idmap.CopyExact(ctx, src, d) })
	if err == nil {
		err = os.Rename(tmp, dst)
	}

	if err != nil {
		_ = RemoveVolumeDir(tmp)
		return fmt.Errorf("copying volume: %w", err)
	}

	return nil
}

// FillVolumeDir makes the volume directory dir (MakeVolumeDir) and fills it with fill,
// which copies a tree to a path that must not exist yet: the tree goes one level down,
// then its entries move up (renames inside one directory) and dir takes the tree's
// owner and mode. On error the caller removes dir.
func FillVolumeDir(dir string, fill func(dst string) error) error {
	err := MakeVolumeDir(dir)
	if err != nil {
		return err
	}

	err = fill(filepath.Join(dir, fillDir))
	if err != nil {
		return err
	}

	return moveUp(dir)
}

// fillDir is where FillVolumeDir has a tree copied; a name no copied entry can have at
// the top at the same time (the tree is copied into it).
const fillDir = ".berth-fill"

// moveUp moves the entries of tmp/fillDir into tmp and gives tmp its owner and mode. The
// copied tree may itself have a top-level entry named fillDir (a tenant's volume can), so
// fillDir is first renamed to a random name the tree cannot have planned for.
func moveUp(tmp string) error {
	d := filepath.Join(tmp, fillDir+"-"+randomSuffix())
	err := os.Rename(filepath.Join(tmp, fillDir), d)
	if err != nil {
		return err
	}

	var st unix.Stat_t
	err = unix.Lstat(d, &st)
	if err != nil {
		return err
	}

	ents, err := os.ReadDir(d)
	if err != nil {
		return err
	}

	for _, e := range ents {
		err = os.Rename(filepath.Join(d, e.Name()), filepath.Join(tmp, e.Name()))
		if err != nil {
			return err
		}
	}

	err = os.Remove(d)
	if err == nil {
		err = os.Lchown(tmp, int(st.Uid), int(st.Gid))
	}

	if err == nil {
		err = os.Chmod(tmp, os.FileMode(st.Mode&0o7777))
	}

	return err
}

// btrfsVolumeSnapshot snapshots the volume subvolume src as dst when both are on one
// btrfs filesystem (errVolumeNotSubvolumes otherwise: the caller copies).
func btrfsVolumeSnapshot(src, dst string, readOnly bool) error {
	srcSub, err := btrfsIsSubvolume(src)
	if err != nil {
		return err
	}

	parent, base := filepath.Split(dst)
	magic, err := fsMagic(parent)
	if err != nil {
		return err
	}

	if !srcSub || magic != unix.BTRFS_SUPER_MAGIC {
		return errVolumeNotSubvolumes
	}

	var a, b unix.Stat_t
	if unix.Stat(src, &a) != nil || unix.Stat(parent, &b) != nil || a.Dev != b.Dev && !sameBtrfs(src, parent) {
		return errVolumeNotSubvolumes
	}

	err = btrfsSnapshot(src, parent, base, readOnly)
	if errors.Is(err, unix.EXDEV) {
		return errVolumeNotSubvolumes
	}

	return err
}

// sameBtrfs reports whether two paths are on one btrfs filesystem (subvolumes have
// distinct st_dev, so the fsid decides).
func sameBtrfs(a, b string) bool {
	sa, err := btrfsSysfs(a)
	if err != nil {
		return false
	}

	sb, err := btrfsSysfs(b)
	return err == nil && sa == sb
}

// RemoveVolumeDir removes a volume directory or snapshot: renamed aside first (a crash
// never leaves half a volume under its name), then a read-only btrfs snapshot is
// destroyed whole and anything else removed recursively (without following symlinks).
// It refuses while anything is mounted below it.
func RemoveVolumeDir(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}

	if len(mounts) > 0 {
		return fmt.Errorf("removing %q: %w: %s", dir, ErrStillMounted, strings.Join(mounts, ", "))
	}

	parent := filepath.Dir(dir)
	doomed := dir
	if !strings.HasPrefix(filepath.Base(dir), tmpPrefix) {
		doomed = filepath.Join(parent, tmpPrefix+"del-"+randomSuffix())
		err = os.Rename(dir, doomed)
		if err != nil {
			return fmt.Errorf("removing %q: %w", dir, err)
		}
	}

	sub, _ := btrfsIsSubvolume(doomed)
	if sub && btrfsDestroy(parent, filepath.Base(doomed)) == nil {
		return nil
	}

	err = os.RemoveAll(doomed)
	if err != nil {
		return fmt.Errorf("removing %q: %w", doomed, err)
	}

	return nil
}

func btrfsDestroy(parent, name string) error {
	fd, err := openDir(parent)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(fd) }()

	var args btrfsVolArgs
	copy(args.Name[:], name)
	return ioctlPtr(fd, btrfsIocSnapDestroy, unsafe.Pointer(&args))
}

// RemoveVolumeLeftovers removes the .tmp-* entries of dir that interrupted copies and
// deletes left.
func RemoveVolumeLeftovers(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	for _, m := range matches {
		_ = RemoveVolumeDir(m)
	}
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
