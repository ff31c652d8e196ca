package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/atomicfile"
)

// A btrfs pool's filesystem: either one the admin mounted (the pool's source) or, as LXD
// does when no source is given, a sparse file formatted with mkfs.btrfs and mounted on the
// pool directory through a loop device. The loop device is attached with
// LO_FLAGS_AUTOCLEAR and its fd closed once mounted, so the kernel detaches it at unmount
// (or when the daemon dies before mounting): no loop device outlives its mount.

// btrfsIocQuotaCtl enables quotas (BTRFS_QUOTA_CTL_ENABLE).
var btrfsIocQuotaCtl = ioc(iocRead|iocWrite, 40, unsafe.Sizeof(btrfsQuotaCtlArgs{}))

type btrfsQuotaCtlArgs struct {
	Cmd    uint64
	Status uint64
}

const btrfsQuotaCtlEnable = 1

// mkfsTimeout bounds mkfs.btrfs on a fresh sparse file (it writes a few MiB).
const mkfsTimeout = 2 * time.Minute

// IsBtrfs reports whether path is on a btrfs filesystem.
func IsBtrfs(path string) (bool, error) {
	magic, err := fsMagic(path)
	if err != nil {
		return false, err
	}

	return magic == unix.BTRFS_SUPER_MAGIC, nil
}

// CreateBtrfsFile makes a sparse file of size bytes at path (which must not exist) and
// formats it as btrfs. On failure the file is removed.
func CreateBtrfsFile(ctx context.Context, path string, size int64) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating loop file: %w", err)
	}

	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()

	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}

	if err != nil {
		return fmt.Errorf("sizing loop file %q: %w", path, err)
	}

	ctx, cancel := context.WithTimeout(ctx, mkfsTimeout)
	defer cancel()

	// mkfs.btrfs is the one tool that formats btrfs; there is no library for it.
	out, err := exec.CommandContext(ctx, "mkfs.btrfs", "-q", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.btrfs %q: %w: %s", path, err, strings.TrimSpace(string(out)))
	}

	return nil
}

// MountBtrfsFile attaches file to a free loop device (autoclear) and mounts it on
// mountpoint with options, then enables quotas on it. Mounted already is not an error.
func MountBtrfsFile(file, mountpoint, options string) error {
	mounted, err := isMountRoot(mountpoint)
	if err != nil {
		return err
	}

	if mounted {
		ok, err := IsBtrfs(mountpoint)
		if err != nil || !ok {
			return fmt.Errorf("%q is mounted but not btrfs", mountpoint)
		}

		return nil
	}

	dev, loop, err := attachLoop(file)
	if err != nil {
		return err
	}

	// Closing the loop fd leaves the mount as its only user: autoclear then detaches it
	// at unmount. Before the mount succeeds, this close detaches it at once.
	defer func() { _ = loop.Close() }()

	err = unix.Mount(dev, mountpoint, "btrfs", unix.MS_NOSUID|unix.MS_NODEV, options)
	if err != nil {
		return fmt.Errorf("mounting %s (%s) on %q: %w", file, dev, mountpoint, err)
	}

	err = EnableBtrfsQuota(mountpoint)
	if err != nil {
		_ = unmountAll(mountpoint)
		return err
	}

	return nil
}

// EnableBtrfsQuota turns on quota groups on the btrfs filesystem at path (idempotent), so
// that root disk sizes can be enforced there.
func EnableBtrfsQuota(path string) error {
	problem, err := btrfsQuotaProblem(path)
	if err == nil && problem == "" {
		return nil
	}

	fd, err := openDir(path)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(fd) }()

	args := btrfsQuotaCtlArgs{Cmd: btrfsQuotaCtlEnable}
	err = ioctlPtr(fd, btrfsIocQuotaCtl, unsafe.Pointer(&args))
	if err != nil {
		return fmt.Errorf("enabling btrfs quotas on %q: %w", path, err)
	}

	return nil
}

// attachLoop binds file to a free loop device with autoclear and returns the device path
// and its open fd (the caller closes it once the device is in use).
func attachLoop(file string) (string, *os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("opening loop control: %w", err)
	}

	defer func() { _ = ctl.Close() }()

	backing, err := os.OpenFile(file, os.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", nil, fmt.Errorf("opening loop file: %w", err)
	}

	defer func() { _ = backing.Close() }()

	// Another process may take the free device between GET_FREE and CONFIGURE: retry.
	for range 16 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("finding a free loop device: %w", err)
		}

		dev := fmt.Sprintf("/dev/loop%d", n)
		loop, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", nil, fmt.Errorf("opening %s: %w", dev, err)
		}

		conf := unix.LoopConfig{Fd: uint32(backing.Fd())}
		conf.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(loop.Fd()), &conf)
		if errors.Is(err, unix.EBUSY) {
			_ = loop.Close()
			continue
		}

		if err != nil {
			_ = loop.Close()
			return "", nil, fmt.Errorf("attaching %q to %s: %w", file, dev, err)
		}

		return dev, loop, nil
	}

	return "", nil, errors.New("no free loop device")
}

// instanceDriverRecord names the file in a btrfs pool's directory that records which
// driver manages its instances (BtrfsInstanceDriver).
const instanceDriverRecord = ".berth-instance-driver"

// BtrfsInstanceDriver returns the driver that manages the instances of the btrfs pool at
// dir, chosen at its first load and recorded there, so that a later kernel never reads
// one layout as the other. Its instance directories are subvolumes either way (root disk
// sizes are quota group limits); they hold an overlay's upper layer where this host can
// mount one there, else a shifted copy of the image (dir). The overlay is preferred: it
// launches without a copy, and overlayfs does not pass btrfs ioctls on, so a container
// cannot make a subvolume of its own, which its root disk's quota group would not count.
func BtrfsInstanceDriver(dir string) (string, error) {
	path := filepath.Join(dir, instanceDriverRecord)
	data, err := os.ReadFile(path)
	if err == nil {
		name := strings.TrimSpace(string(data))
		if name != "overlay" && name != "dir" {
			return "", fmt.Errorf("%s names an unknown driver %q", path, name)
		}

		return name, nil
	}

	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}

	name := DefaultDriver(dir)
	err = atomicfile.WriteDurable(path, []byte(name+"\n"), 0o600)
	if err != nil {
		return "", fmt.Errorf("recording the instance driver of %q: %w", dir, err)
	}

	return name, nil
}

// UnmountPool unmounts a pool's filesystem (a loop-backed pool's loop device goes with it).
// Not mounted is not an error.
func UnmountPool(mountpoint string) error {
	mounted, err := isMountRoot(mountpoint)
	if err != nil || !mounted {
		return err
	}

	return unmountAll(mountpoint)
}

// RemovePoolLayout removes the layout Load made in dir (images/, containers/ and
// snapshots/, all of which must hold no instance) and dir itself when ownDir. It refuses
// while anything is mounted below dir.
func RemovePoolLayout(dir string, ownDir bool) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}

	for _, m := range mounts {
		if m != dir {
			return fmt.Errorf("removing pool %q: %w: %s", dir, ErrStillMounted, m)
		}
	}

	if ownDir {
		err = os.RemoveAll(dir)
	} else {
		for _, sub := range []string{imagesDir, containersDir, snapshotsDir, "custom", "custom-snapshots", instanceDriverRecord} {
			err = errors.Join(err, os.RemoveAll(dir+"/"+sub))
		}
	}

	if err != nil {
		return fmt.Errorf("removing pool %q: %w", dir, err)
	}

	return nil
}
