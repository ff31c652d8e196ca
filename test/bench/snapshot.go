package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// benchSnapshots measures, on a running container holding 300 MB of its own files:
// snapshot (container frozen while its data is copied), restore (kill, swap the data, start
// again), and copy to a new instance (frozen source, owners moved to a new id range).
// Failures are reported as notes.
func benchSnapshots(b *berthd, r *report) {
	err := benchSnapshotsRun(b, r)
	if err != nil {
		r.note("snapshots: %v", err)
	}
}

func benchSnapshotsRun(b *berthd, r *report) error {
	const name = "snapbench"
	_, err := b.berth("launch", "debian/12", name)
	if err != nil {
		return err
	}

	defer func() { _, _ = b.berth("delete", "-f", name) }()
	pid, err := b.waitInstance(name)
	if err != nil {
		return err
	}

	// 300 files of 1 MiB: data the container wrote itself (the overlay's upper layer).
	fill := `mkdir -p /srv/data && for i in $(seq 1 300); do head -c 1048576 /dev/urandom > /srv/data/f$i; done && sync`
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-a", "--", "sh", "-c", fill).CombinedOutput()
	if err != nil {
		return fmt.Errorf("writing 300 MB inside: %v: %s", err, out)
	}

	for i := 0; i < *runs; i++ {
		snap := fmt.Sprintf("s%d", i)
		t0 := time.Now()
		_, err := b.berth("snapshot", name, snap)
		if err != nil {
			return err
		}

		r.add("snapshot, running, 300 MB written", time.Since(t0))
	}

	for i := 0; i < *runs; i++ {
		t0 := time.Now()
		_, err := b.berth("restore", name, "s0")
		if err != nil {
			return err
		}

		r.add("restore, running (kill, swap, start)", time.Since(t0))
	}

	for i := 0; i < *runs; i++ {
		dst := fmt.Sprintf("snapcopy%d", i)
		t0 := time.Now()
		_, err := b.berth("copy", name, dst, "--instance-only")
		if err != nil {
			return err
		}

		r.add("copy, running, 300 MB written", time.Since(t0))
		_, err = b.berth("delete", dst)
		if err != nil {
			return err
		}
	}

	for i := 0; i < *runs; i++ {
		_, _ = b.berth("delete", fmt.Sprintf("%s/s%d", name, i))
	}

	r.note("snapshots: overlay driver copies only the instance's upper layer (300 MB here); the LXD rows below use LXD on btrfs (lxdPool), which snapshots copy-on-write")
	return nil
}
