package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// floorRsyncArgs are the options of Berth's migration sender (lxd/migration: -a, devices,
// numeric ids, sparse, and the xattrs both ends agree on), for a local run.
var floorRsyncArgs = []string{"-a", "--devices", "--numeric-ids", "--partial", "--sparse", "--xattrs"}

// migrateFloor builds, under tmp, the tree a moved container carries (the image's rootfs
// plus -migrate-mb of 1 MiB random files in srv/data) and times a plain rsync of it into
// an empty directory on the same filesystem. It returns the tree's size in MB (10^6 bytes)
// and its number of entries, and removes both trees.
func migrateFloor(ctx context.Context, image, tmp string, r *report) (float64, int, error) {
	dir := filepath.Join(tmp, "floor")
	defer func() { _ = os.RemoveAll(dir) }()

	src := filepath.Join(dir, "src")
	err := os.MkdirAll(src, 0o700)
	if err != nil {
		return 0, 0, err
	}

	out, err := exec.CommandContext(ctx, "tar", "-xpf", image, "-C", src, "--numeric-owner").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("unpacking the image: %w: %s", err, trim(string(out)))
	}

	tree := filepath.Join(src, "rootfs")
	err = writeRandomFiles(filepath.Join(tree, "srv", "data"), *migrateMB)
	if err != nil {
		return 0, 0, err
	}

	size, entries := treeBytes(tree)
	dst := filepath.Join(dir, "dst")
	row := fmt.Sprintf(rowFloor, *migrateMB)
	for i := 0; i < moveRuns(); i++ {
		err := os.RemoveAll(dst)
		if err != nil {
			return 0, 0, err
		}

		settle()
		args := append(append([]string{}, floorRsyncArgs...), tree+"/", dst+"/")
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, "rsync", args...).CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("rsync: %w: %s", err, trim(string(out)))
		}

		r.add(row, time.Since(t0))
	}

	return float64(size) / 1e6, entries, nil
}

// writeRandomFiles writes n files of 1 MiB of random bytes, f1..fn, into dir.
func writeRandomFiles(dir string, n int) error {
	err := os.MkdirAll(dir, 0o755)
	if err != nil {
		return err
	}

	for i := 1; i <= n; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%d", i)))
		if err != nil {
			return err
		}

		_, err = io.CopyN(f, rand.Reader, 1<<20)
		cerr := f.Close()
		if err == nil {
			err = cerr
		}

		if err != nil {
			return err
		}
	}

	return nil
}

// treeBytes is the apparent size of the regular files under dir and the number of
// entries there.
func treeBytes(dir string) (int64, int) {
	var size int64
	entries := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}

		entries++
		info, err := d.Info()
		if err == nil && info.Mode().IsRegular() {
			size += info.Size()
		}

		return nil
	})

	return size, entries
}
