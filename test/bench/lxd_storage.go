package main

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// storageFill adds about 290 MB to the root filesystem: one 128 MB file and a copy of /usr
// (160 MB in ~7,500 small files), so snapshot, restore and copy costs are dominated by
// data rather than by fixed overheads. Berth's storage figures should run the same script
// (`berth exec c -- sh -c "$storageFill"`) to be comparable.
const storageFill = `set -e
dd if=/dev/urandom of=/big bs=1M count=128 status=none
mkdir -p /data
cp -a /usr /data/u1
sync`

// storageRuns caps the samples of the storage figures: with the dir driver each one copies
// the whole rootfs, and the LXD part must stay within a few minutes.
func storageRuns() int { return min(*runs, 3) }

// lxdStorage times, with the dir driver: a snapshot of the running instance, a restore of
// it after damage (the command returns with the instance running again), and a copy of
// the running instance without its snapshots.
func lxdStorage(ctx context.Context, l *lxdDaemon, r *report, name string) error {
	_, err := l.lxc(ctx, "exec", name, "--", "sh", "-c", storageFill)
	if err != nil {
		return err
	}

	mb, files := treeSize(filepath.Join(l.dir, "p", "containers", name, "rootfs"))
	r.note("LXD: snapshot/restore/copy on a rootfs of %d MB in %d files (dir driver: full copies)", mb, files)

	last := ""
	for i := 0; i < storageRuns(); i++ {
		last = fmt.Sprintf("s%d", i)
		t0 := time.Now()
		_, err := l.lxc(ctx, "snapshot", name, last)
		if err != nil {
			return err
		}

		r.add("LXD: snapshot, running instance (dir)", time.Since(t0))
	}

	for i := 0; i < storageRuns(); i++ {
		_, err := l.lxc(ctx, "exec", name, "--", "rm", "-rf", "/data/u1")
		if err != nil {
			return err
		}

		t0 := time.Now()
		_, err = l.lxc(ctx, "restore", name, last)
		if err != nil {
			return err
		}

		r.add("LXD: restore, running instance (dir)", time.Since(t0))
	}

	for i := 0; i < storageRuns(); i++ {
		cp := fmt.Sprintf("%scp%d", l.prefix, i)
		t0 := time.Now()
		_, err := l.lxc(ctx, "copy", name, cp, "--instance-only")
		if err != nil {
			return err
		}

		r.add("LXD: copy, running instance (dir)", time.Since(t0))
		_, err = l.lxc(ctx, "delete", cp)
		if err != nil {
			return err
		}
	}

	return nil
}

// treeSize returns the apparent size in MB and the number of entries under dir.
func treeSize(dir string) (int64, int) {
	var size int64
	files := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}

		files++
		info, err := d.Info()
		if err == nil && info.Mode().IsRegular() {
			size += info.Size()
		}

		return nil
	})

	return size >> 20, files
}
