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

// copyInstance creates instance dst from src's data directory (sub), or from that of its
// snapshot srcSnap, with owners moved from src's id range to dst's. extra adds the
// driver's other directories to the new tree. dst sits on the same image as its source.
func (p *pool) copyInstance(ctx context.Context, src, srcSnap, dst, sub string, from, to idmap.Set, extra func(tmp string) error) error {
	srcDir, err := p.copySource(src, srcSnap)
	if err != nil {
		return err
	}

	err = checkName("instance", dst)
	if err != nil {
		return err
	}

	p.mu.RLock()
	defer p.mu.RUnlock()

	_, err = os.Lstat(p.instanceDir(dst))
	if err == nil {
		return api.StatusErrorf(http.StatusConflict, "creating instance %q: %w", dst, ErrInstanceExists)
	}

	how := "btrfs snapshot"
	tmp, err := snapshotCopy(ctx, srcDir, filepath.Join(p.dir, containersDir), dst, sub, from, to)
	if errors.Is(err, errNoSnapshotCopy) {
		how = "copy"
		tmp, err = p.makeInstanceTemp(dst)
		if err != nil {
			return fmt.Errorf("creating instance %q: %w", dst, err)
		}
	}

	if err != nil {
		return fmt.Errorf("copying %q to %q: %w", src, dst, err)
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = os.RemoveAll(tmp) })

	if how == "copy" {
		err = p.fillCopy(ctx, srcDir, tmp, sub, from, to, extra)
		if err != nil {
			return fmt.Errorf("copying %q to %q: %w", src, dst, err)
		}
	}

	err = restrictInstanceDir(tmp, to)
	if err != nil {
		return err
	}

	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p.instanceDir(dst), unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return api.StatusErrorf(http.StatusConflict, "creating instance %q: %w", dst, ErrInstanceExists)
	}

	if err != nil {
		return fmt.Errorf("publishing instance %q: %w", dst, err)
	}

	r.Success()
	p.log.Info("copied instance storage", "source", src, "snapshot", srcSnap, "instance", dst, "how", how)
	return nil
}

// copySnapshot copies snapshot srcSnap of src as snapshot dstSnap of dst (which exists),
// with owners moved from one range to the other.
func (p *pool) copySnapshot(ctx context.Context, src, srcSnap, dst, dstSnap, sub string, from, to idmap.Set) error {
	srcDir, err := p.copySource(src, srcSnap)
	if err != nil {
		return err
	}

	err = p.checkSnapshot(dst, dstSnap)
	if err != nil {
		return err
	}

	parent := p.snapshotsOf(dst)
	err = os.MkdirAll(parent, 0o700)
	if err != nil {
		return err
	}

	// A btrfs snapshot where the source snapshot is a subvolume (copy_btrfs.go).
	fast := true
	tmp, err := snapshotCopy(ctx, srcDir, parent, dstSnap, sub, from, to)
	if errors.Is(err, errNoSnapshotCopy) {
		fast = false
		tmp, err = os.MkdirTemp(parent, tmpPrefix+dstSnap+"-")
	}

	if err != nil {
		return err
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = os.RemoveAll(tmp) })

	if !fast {
		err = p.fillCopy(ctx, srcDir, tmp, sub, from, to, nil)
		if err != nil {
			return fmt.Errorf("copying snapshot %q of %q: %w", srcSnap, src, err)
		}
	}

	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p.snapshotDir(dst, dstSnap), unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return api.StatusErrorf(http.StatusConflict, "snapshot %q of %q: %w", dstSnap, dst, ErrSnapshotExists)
	}

	if err != nil {
		return err
	}

	r.Success()
	how := "copy"
	if fast {
		how = "btrfs snapshot"
	}

	p.log.Info("copied snapshot storage", "source", src, "snapshot", srcSnap, "instance", dst, "as", dstSnap, "how", how)
	return nil
}

// copySource is the directory holding the data and image record of src or of its
// snapshot srcSnap.
func (p *pool) copySource(src, srcSnap string) (string, error) {
	if srcSnap == "" {
		return p.instanceDir(src), p.instanceExists(src)
	}

	return p.snapshotDir(src, srcSnap), p.snapshotExists(src, srcSnap)
}

func (p *pool) fillCopy(ctx context.Context, srcDir, tmp, sub string, from, to idmap.Set, extra func(tmp string) error) error {
	err := idmap.CopyRemapped(ctx, filepath.Join(srcDir, sub), filepath.Join(tmp, sub), from, to)
	if err != nil {
		return err
	}

	if extra != nil {
		err = extra(tmp)
		if err != nil {
			return err
		}
	}

	err = copyImageFile(filepath.Join(srcDir, imageFile), filepath.Join(tmp, imageFile))
	if err != nil {
		return err
	}

	return syncFS(tmp)
}
