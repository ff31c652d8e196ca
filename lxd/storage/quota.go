package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Root disk quotas.
//
// A root disk size is enforced with btrfs quota groups. On a pool whose directory is on
// btrfs, every instance directory (containers/<name>: the overlay's upper and work
// directories, or the dir driver's rootfs) is created as a subvolume, and the size is the
// limit on the bytes its quota group (0/<subvolume id>) references. The subvolume id is
// the instance's quota id: btrfs allocates it, it stays with the instance for its life
// (rename moves the subvolume, restore swaps data inside it, a copy gets its own), it is
// never reused, and removing the subvolume on delete drops its quota group too. btrfs
// enforces limits against root as well (unless the admin sets quota_override), so the
// overlay's writes, made with the daemon's credentials, are bounded as the container's
// own are.
//
// Everywhere else the pool cannot enforce a size, and RootQuota says why: the instance
// layer refuses the key rather than accept a limit that does nothing. (Linux project
// quotas on ext4 or xfs could do the same job; they are not implemented yet.)

// QuotaError says why a pool cannot limit an instance's root disk.
type QuotaError struct {
	Driver string // "overlay", "dir"
	FS     string // "ext4", "btrfs", ...
	Dir    string // the pool directory
	Reason string
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%s on %s at %s cannot enforce a root disk size: %s", e.Driver, e.FS, e.Dir, e.Reason)
}

// ErrNoUsage is returned by RootUsage where the pool does not account instances' disks.
var ErrNoUsage = errors.New("the pool does not account root disk usage")

// RootQuota implements Driver.
func (p *pool) RootQuota(name string) error {
	magic, err := fsMagic(p.dir)
	if err != nil {
		return err
	}

	qe := &QuotaError{Driver: p.driver, FS: fsName(magic), Dir: p.dir}
	if magic != unix.BTRFS_SUPER_MAGIC {
		qe.Reason = fmt.Sprintf("%s has no per-instance quota Berth can set (a pool on btrfs with quotas enabled has)", qe.FS)
		return qe
	}

	qe.Reason, err = btrfsQuotaProblem(p.dir)
	if err != nil {
		return err
	}

	if qe.Reason != "" {
		return qe
	}

	if name == "" {
		return nil
	}

	err = p.instanceExists(name)
	if err != nil {
		return err
	}

	sub, err := btrfsIsSubvolume(p.instanceDir(name))
	if err != nil {
		return err
	}

	if !sub {
		qe.Reason = fmt.Sprintf("the storage of instance %q is not a btrfs subvolume (it predates quota support; a copy of it gets one)", name)
		return qe
	}

	return nil
}

// SetRootQuota implements Driver.
func (p *pool) SetRootQuota(name string, limit int64) error {
	err := p.RootQuota(name)
	if err != nil {
		return err
	}

	err = btrfsSetLimit(p.instanceDir(name), limit)
	if err != nil {
		return err
	}

	p.log.Debug("set root disk limit", "instance", name, "bytes", limit)

	return nil
}

// RootUsage implements Driver.
func (p *pool) RootUsage(name string) (int64, error) {
	err := p.RootQuota(name)
	var qe *QuotaError
	if errors.As(err, &qe) {
		return 0, fmt.Errorf("%w: %w", ErrNoUsage, err)
	}

	if err != nil {
		return 0, err
	}

	return btrfsReferenced(p.instanceDir(name))
}

// makeInstanceTemp creates the temporary directory an instance is built in under
// containers/: a btrfs subvolume where the pool is on btrfs, so that a size can be set on
// it later, else a plain directory.
func (p *pool) makeInstanceTemp(name string) (string, error) {
	parent := filepath.Join(p.dir, containersDir)

	magic, err := fsMagic(parent)
	if err != nil {
		return "", err
	}

	if magic != unix.BTRFS_SUPER_MAGIC {
		return os.MkdirTemp(parent, tmpPrefix+name+"-")
	}

	for range 8 {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		base := tmpPrefix + name + "-" + hex.EncodeToString(b)

		err = btrfsCreateSubvolume(parent, base)
		if errors.Is(err, unix.EEXIST) {
			continue
		}

		if err != nil {
			return "", err
		}

		return filepath.Join(parent, base), nil
	}

	return "", fmt.Errorf("creating a subvolume for %q: %w", name, err)
}
