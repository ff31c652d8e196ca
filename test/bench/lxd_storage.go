package main

import (
	"context"
	"fmt"
	"time"
)

// storageFill is the fill of Berth's snapshot figures (snapshot.go), so the rows compare:
// 300 files of 1 MiB that the container wrote itself.
const storageFill = `mkdir -p /srv/data && for i in $(seq 1 300); do head -c 1048576 /dev/urandom > /srv/data/f$i; done && sync`

// storageRuns caps the samples of the storage figures: the LXD part must stay within a
// few minutes.
func storageRuns() int { return min(*runs, 3) }

// lxdStorage times, on the bench's LXD pool (lxdPool) and as Berth's snapshot figures
// do: a snapshot of the running instance, a restore of the first snapshot (the command
// returns with the instance running again), and a copy of the running instance without
// its snapshots.
func lxdStorage(ctx context.Context, l *lxdDaemon, r *report, name string) error {
	_, err := l.lxc(ctx, "exec", name, "--", "sh", "-c", storageFill)
	if err != nil {
		return err
	}

	r.note("LXD: pool driver %s (loop file)", lxdPool)

	for i := 0; i < storageRuns(); i++ {
		t0 := time.Now()
		_, err := l.lxc(ctx, "snapshot", name, fmt.Sprintf("s%d", i))
		if err != nil {
			return err
		}

		r.add("LXD: snapshot, running, 300 MB written", time.Since(t0))
	}

	for i := 0; i < storageRuns(); i++ {
		t0 := time.Now()
		_, err := l.lxc(ctx, "restore", name, "s0")
		if err != nil {
			return err
		}

		r.add("LXD: restore, running", time.Since(t0))
	}

	for i := 0; i < storageRuns(); i++ {
		cp := fmt.Sprintf("%scp%d", l.prefix, i)
		t0 := time.Now()
		_, err := l.lxc(ctx, "copy", name, cp, "--instance-only")
		if err != nil {
			return err
		}

		r.add("LXD: copy, running, 300 MB written", time.Since(t0))
		_, err = l.lxc(ctx, "delete", cp)
		if err != nil {
			return err
		}
	}

	return nil
}
