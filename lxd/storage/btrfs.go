package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few btrfs ioctls root disk quotas need (linux/btrfs.h). x/sys/unix has none of them.
// Their numbers use the generic _IOC layout (amd64, arm64, riscv64).
var (
	btrfsIocSubvolCreate = ioc(iocWrite, 14, unsafe.Sizeof(btrfsVolArgs{}))
	btrfsIocInoLookup    = ioc(iocRead|iocWrite, 18, unsafe.Sizeof(btrfsInoLookupArgs{}))
	btrfsIocFSInfo       = ioc(iocRead, 31, unsafe.Sizeof(btrfsFSInfoArgs{}))
	btrfsIocQgroupLimit  = ioc(iocRead, 43, unsafe.Sizeof(btrfsQgroupLimitArgs{}))
)

const (
	iocWrite = 1
	iocRead  = 2

	btrfsIoctlMagic = 0x94
	// btrfsFirstFreeObjectID is the inode number of every subvolume's root directory.
	btrfsFirstFreeObjectID = 256
	// btrfsQgroupLimitMaxRfer selects the limit on referenced bytes; the value ^0 clears it.
	btrfsQgroupLimitMaxRfer = 1
	btrfsLimitClear         = ^uint64(0)
)

func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | btrfsIoctlMagic<<8 | nr
}

type btrfsVolArgs struct {
	FD   int64
	Name [4088]byte
}

type btrfsInoLookupArgs struct {
	TreeID   uint64
	ObjectID uint64
	Name     [4080]byte
}

type btrfsFSInfoArgs struct {
	MaxID        uint64
	NumDevices   uint64
	FSID         [16]byte
	Nodesize     uint32
	Sectorsize   uint32
	CloneAlign   uint32
	CsumType     uint16
	CsumSize     uint16
	Flags        uint64
	Generation   uint64
	MetadataUUID [16]byte
	Reserved     [944]byte
}

type btrfsQgroupLimitArgs struct {
	QgroupID uint64
	Flags    uint64
	MaxRfer  uint64
	MaxExcl  uint64
	RsvRfer  uint64
	RsvExcl  uint64
}

func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}

	return nil
}

// openDir opens a directory the daemon made (never a path inside a container's tree).
func openDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %q: %w", path, err)
	}

	return fd, nil
}

// btrfsCreateSubvolume makes an empty subvolume parent/name (mode 0755, root-owned).
func btrfsCreateSubvolume(parent, name string) error {
	if len(name) >= len(btrfsVolArgs{}.Name) || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid subvolume name %q", name)
	}

	fd, err := openDir(parent)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(fd) }()

	var args btrfsVolArgs
	copy(args.Name[:], name)
	err = ioctlPtr(fd, btrfsIocSubvolCreate, unsafe.Pointer(&args))
	if err != nil {
		return fmt.Errorf("creating btrfs subvolume %q: %w", filepath.Join(parent, name), err)
	}

	return nil
}

// btrfsIsSubvolume reports whether path is the root of a btrfs subvolume.
func btrfsIsSubvolume(path string) (bool, error) {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	if err != nil {
		return false, fmt.Errorf("checking subvolume %q: %w", path, err)
	}

	magic, err := fsMagic(path)
	if err != nil {
		return false, err
	}

	return magic == unix.BTRFS_SUPER_MAGIC && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ino == btrfsFirstFreeObjectID, nil
}

// btrfsSubvolumeID returns the id of the subvolume whose root is path; its quota group
// is 0/<id>.
func btrfsSubvolumeID(path string) (uint64, error) {
	fd, err := openDir(path)
	if err != nil {
		return 0, err
	}

	defer func() { _ = unix.Close(fd) }()

	args := btrfsInoLookupArgs{ObjectID: btrfsFirstFreeObjectID}
	err = ioctlPtr(fd, btrfsIocInoLookup, unsafe.Pointer(&args))
	if err != nil {
		return 0, fmt.Errorf("looking up subvolume id of %q: %w", path, err)
	}

	return args.TreeID, nil
}

// btrfsSysfs is the filesystem's directory under /sys/fs/btrfs (named by its fsid).
func btrfsSysfs(path string) (string, error) {
	fd, err := openDir(path)
	if err != nil {
		return "", err
	}

	defer func() { _ = unix.Close(fd) }()

	var args btrfsFSInfoArgs
	err = ioctlPtr(fd, btrfsIocFSInfo, unsafe.Pointer(&args))
	if err != nil {
		return "", fmt.Errorf("reading btrfs info of %q: %w", path, err)
	}

	u := args.FSID
	fsid := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])

	return filepath.Join("/sys/fs/btrfs", fsid), nil
}

// btrfsQuotaProblem says why quota groups cannot limit subvolumes of the filesystem at
// path, or "" when they can.
func btrfsQuotaProblem(path string) (string, error) {
	sys, err := btrfsSysfs(path)
	if err != nil {
		return "", err
	}

	// qgroups/ exists while quotas are enabled (Linux 5.9+).
	_, err = os.Stat(filepath.Join(sys, "qgroups"))
	if errors.Is(err, os.ErrNotExist) {
		return "btrfs quotas are not enabled (btrfs quota enable on its mount point)", nil
	}

	if err != nil {
		return "", err
	}

	// With quota_override set, a process holding CAP_SYS_RESOURCE (the overlay driver
	// writes with the daemon's credentials) ignores the limits.
	data, err := os.ReadFile(filepath.Join(sys, "quota_override"))
	if err == nil && strings.TrimSpace(string(data)) != "0" {
		return "btrfs quota_override is set, so the daemon's writes would ignore limits", nil
	}

	return "", nil
}

// btrfsSetLimit limits the referenced bytes of the subvolume at path (0: no limit).
func btrfsSetLimit(path string, limit int64) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(fd) }()

	// QgroupID 0: the subvolume fd is in.
	args := btrfsQgroupLimitArgs{Flags: btrfsQgroupLimitMaxRfer, MaxRfer: btrfsLimitClear}
	if limit > 0 {
		args.MaxRfer = uint64(limit)
	}

	err = ioctlPtr(fd, btrfsIocQgroupLimit, unsafe.Pointer(&args))
	if err != nil {
		return fmt.Errorf("setting quota of %q: %w", path, err)
	}

	return nil
}

// btrfsReferenced returns the bytes the subvolume at path references, as of the last
// committed transaction.
func btrfsReferenced(path string) (int64, error) {
	id, err := btrfsSubvolumeID(path)
	if err != nil {
		return 0, err
	}

	sys, err := btrfsSysfs(path)
	if err != nil {
		return 0, err
	}

	data, err := os.ReadFile(filepath.Join(sys, "qgroups", fmt.Sprintf("0_%d", id), "referenced"))
	if err != nil {
		return 0, fmt.Errorf("reading usage of %q: %w", path, err)
	}

	n, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading usage of %q: %w", path, err)
	}

	return n, nil
}

// fsMagic is the statfs type of the filesystem holding path.
func fsMagic(path string) (int64, error) {
	var st unix.Statfs_t
	err := unix.Statfs(path, &st)
	if err != nil {
		return 0, fmt.Errorf("statfs %q: %w", path, err)
	}

	return st.Type, nil
}

// fsName names a statfs type for messages.
func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}

	return fmt.Sprintf("filesystem 0x%x", magic)
}
