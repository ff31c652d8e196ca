package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchVolumes measures custom volumes through the stock lxc: create + attach (hotplug)
// to a running container, and a snapshot of a volume holding 1 GB on a loop-backed btrfs
// pool (a btrfs snapshot) against the default pool (a copy). Failures are notes.
func benchVolumes(b *berthd, r *report) {
	err := benchVolumesRun(b, r)
	if err != nil {
		r.note("volumes: %v", err)
	}
}

func benchVolumesRun(b *berthd, r *report) error {
	bin, err := exec.LookPath("lxc")
	if err != nil {
		return fmt.Errorf("the stock lxc is needed (Debian package lxd-client): %w", err)
	}

	conf, err := os.MkdirTemp("", "bench-lxc-")
	if err != nil {
		return err
	}

	defer func() { _ = os.RemoveAll(conf) }()
	lxc := func(args ...string) error {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "LXD_DIR="+b.dir, "LXD_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("lxc %s: %w: %s", strings.Join(args, " "), err, out)
		}

		return nil
	}

	_ = lxc("list")

	const name = "volbench"
	_, err = b.berth("launch", "debian/12", name)
	if err != nil {
		return err
	}

	defer func() { _, _ = b.berth("delete", "-f", name) }()
	_, err = b.waitInstance(name)
	if err != nil {
		return err
	}

	r.reserve("volume create + attach to a running container", "volume snapshot, 1 GB, btrfs", "volume snapshot, 1 GB, default pool")
	for i := 0; i < *runs; i++ {
		v := fmt.Sprintf("vb%d", i)
		t0 := time.Now()
		err = lxc("storage", "volume", "create", "default", v)
		if err == nil {
			err = lxc("storage", "volume", "attach", "default", v, name, "/mnt/"+v)
		}

		if err != nil {
			return err
		}

		r.add("volume create + attach to a running container", time.Since(t0))
		err = lxc("storage", "volume", "detach", "default", v, name)
		if err == nil {
			err = lxc("storage", "volume", "delete", "default", v)
		}

		if err != nil {
			return err
		}
	}

	err = lxc("storage", "create", "volbtrfs", "btrfs", "size=4GiB")
	if err != nil {
		return err
	}

	defer func() { _ = lxc("storage", "delete", "volbtrfs") }()
	for _, pool := range []struct{ name, label string }{{"volbtrfs", "btrfs"}, {"default", "default pool"}} {
		err = benchVolumeSnapshots(b, r, lxc, pool.name, "volume snapshot, 1 GB, "+pool.label)
		if err != nil {
			return err
		}
	}

	return nil
}

func benchVolumeSnapshots(b *berthd, r *report, lxc func(args ...string) error, pool, row string) error {
	err := lxc("storage", "volume", "create", pool, "big")
	if err != nil {
		return err
	}

	defer func() { _ = lxc("storage", "volume", "delete", pool, "big") }()

	// 1 GB of incompressible data written from the host into the volume's directory.
	dir := filepath.Join(b.dir, "storage-pools", pool, "custom", "big")
	out, err := exec.Command("sh", "-c", "head -c 1000000000 /dev/urandom > "+dir+"/data && sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("filling the volume: %w: %s", err, out)
	}

	for i := 0; i < *runs; i++ {
		t0 := time.Now()
		err = lxc("storage", "volume", "snapshot", pool, "big", fmt.Sprintf("s%d", i))
		if err != nil {
			return err
		}

		r.add(row, time.Since(t0))
	}

	for i := 0; i < *runs; i++ {
		_ = lxc("storage", "volume", "delete", pool, fmt.Sprintf("big/s%d", i))
	}

	return nil
}
