package main

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// storageFill is the fill of Berth's snapshot figures (snapshot.go), so the rows compare:
// 300 files of 1 MiB that the container wrote itself.
const storageFill = `mkdir -p /srv/data && for i in $(seq 1 300); do head -c 1048576 /dev/urandom > /srv/data/f$i; done && sync`

// storageRuns caps the samples of the storage figures: with the dir driver each one copies
// the whole rootfs, and the LXD part must stay within a few minutes.
func storageRuns() int { return min(*runs, 3) }

// lxdStorage times, with the dir driver and as Berth's snapshot figures do: a snapshot of
// the running instance, a restore of the first snapshot (the command returns with the
// instance running again), and a copy of the running instance without its snapshots.
func lxdStorage(ctx context.Context, l *lxdDaemon, r *report, name string) error {
	_, err := l.lxc(ctx, "exec", name, "--", "sh", "-c", storageFill)
	if err != nil {
		return err
	}

	mb, files := treeSize(filepath.Join(l.dir, "p", "containers", name, "rootfs"))
	r.note("LXD: the dir driver copies the whole rootfs on snapshot and copy: %d MB in %d files here; restore is an rsync back", mb, files)

	for i := 0; i < storageRuns(); i++ {
		t0 := time.Now()
		_, err := l.lxc(ctx, "snapshot", name, fmt.Sprintf("s%d", i))
		if err != nil {
			return err
		}

		r.add("LXD: snapshot, running, 300 MB written (dir)", time.Since(t0))
	}

	for i := 0; i < storageRuns(); i++ {
		t0 := time.Now()
		_, err := l.lxc(ctx, "restore", name, "s0")
		if err != nil {
			return err
		}

		r.add("LXD: restore, running (dir)", time.Since(t0))
	}

	for i := 0; i < storageRuns(); i++ {
		cp := fmt.Sprintf("%scp%d", l.prefix, i)
		t0 := time.Now()
		_, err := l.lxc(ctx, "copy", name, cp, "--instance-only")
		if err != nil {
			return err
		}

		r.add("LXD: copy, running, 300 MB written (dir)", time.Since(t0))
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
