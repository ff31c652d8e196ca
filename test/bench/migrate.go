package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// migrateMB is how much the moved container writes before it is stopped and moved.
var migrateMB = flag.Int("migrate-mb", envInt("BENCH_MIGRATE_MB", 500), "MB the container of the migrate section writes (default $BENCH_MIGRATE_MB, else 500)")

// migrateBudget bounds the whole migrate section; cleanup comes on top.
const migrateBudget = 20 * time.Minute

// The rows of the migrate section; the MB figure of the fill goes into the names.
const (
	rowFloor      = "migrate: rsync -a of the tree, dir to dir (floor, %d MB written)"
	rowBerthMove  = "migrate: Berth -> Berth, lxc move (stopped, %d MB written)"
	rowLXDMove    = "migrate: LXD -> LXD, lxc move (stopped, %d MB written, dir)"
	rowBerthImage = "migrate: Berth -> Berth, lxc image copy (pull)"
	rowLXDImage   = "migrate: LXD -> LXD, lxc image copy (pull)"
)

// migrateFill has the container write its data itself: 1 MiB files of random bytes.
func migrateFill(mb int) string {
	return fmt.Sprintf(`mkdir -p /srv/data && for i in $(seq 1 %d); do head -c 1048576 /dev/urandom > /srv/data/f$i; done && sync`, mb)
}

// benchMigrate measures issue 15's speed figures: a stopped container that wrote
// -migrate-mb of its own data moved between two berthd (A→B, then back, one sample
// each), the same between two LXD 5.0.2 daemons, and the floor: a plain rsync of the same
// tree (the image's rootfs plus as many 1 MiB random files) between two local
// directories; and `lxc image copy` of the test image between each pair. The stock lxc
// drives both pairs over HTTPS on loopback. Throughput is the tree's size over the
// median. Everything it starts (the second berthd, both LXDs, containers) is gone when it
// returns; failures become notes.
func benchMigrate(b *berthd, image string, r *report) {
	quietBerth(b)
	ctx, cancel := context.WithTimeout(context.Background(), migrateBudget)
	defer cancel()

	// Ctrl-C or SIGTERM cut the measurements short but still clean up.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	lxc, err := exec.LookPath("lxc")
	if err != nil {
		r.note("migrate: lxc not installed (apt-get install lxd): section skipped")
		return
	}

	tmp, err := os.MkdirTemp("/tmp", "bench-migrate-")
	if err != nil {
		r.note("migrate: %v", err)
		return
	}

	defer func() { _ = os.RemoveAll(tmp) }()

	r.reserve(fmt.Sprintf(rowFloor, *migrateMB), fmt.Sprintf(rowBerthMove, *migrateMB), fmt.Sprintf(rowLXDMove, *migrateMB), rowBerthImage, rowLXDImage)
	fmt.Fprintln(os.Stderr, "migrate: rsync floor")
	treeMB, entries, err := migrateFloor(ctx, image, tmp, r)
	if err != nil {
		r.note("migrate: rsync floor: %v", err)
	}

	fmt.Fprintln(os.Stderr, "migrate: Berth -> Berth")
	err = migrateBerth(ctx, b, lxc, tmp, image, r)
	if err != nil {
		r.note("migrate: Berth figures stopped early: %v", err)
	}

	_, err = exec.LookPath("lxd")
	if err != nil {
		r.note("migrate: LXD not installed: its figures skipped (apt-get install lxd)")
	} else {
		fmt.Fprintln(os.Stderr, "migrate: LXD -> LXD (two private daemons, dir pools, no network)")
		err = migrateLXD(ctx, lxc, tmp, image, r)
		if err != nil {
			r.note("migrate: LXD figures stopped early: %v", err)
		}
	}

	migrateNotes(r, image, treeMB, entries)
}

// migrateNotes turns the medians into throughput: the tree's size for the moves and the
// floor, the image's for the image copies.
func migrateNotes(r *report, image string, treeMB float64, entries int) {
	rate := func(row string, mb float64) string {
		s := r.samples[row]
		if len(s) == 0 || mb == 0 {
			return "not measured"
		}

		return fmt.Sprintf("%.0f MB/s", mb/median(s).Seconds())
	}

	floor := fmt.Sprintf(rowFloor, *migrateMB)
	if treeMB > 0 {
		r.note("migrate: the tree is %.0f MB in %d entries (the image's rootfs plus %d MB of 1 MiB random files); throughput at the median: rsync floor %s, Berth move %s, LXD move %s",
			treeMB, entries, *migrateMB, rate(floor, treeMB), rate(fmt.Sprintf(rowBerthMove, *migrateMB), treeMB), rate(fmt.Sprintf(rowLXDMove, *migrateMB), treeMB))
	}

	fi, err := os.Stat(image)
	if err == nil {
		mb := float64(fi.Size()) / 1e6
		r.note("migrate: image copy of %.0f MB: Berth %s, LXD %s (Berth's import also unpacks the image into the pool, imagestore.Import; LXD's dir pool unpacks it at the first launch)", mb, rate(rowBerthImage, mb), rate(rowLXDImage, mb))
	}

	r.note("migrate: a move is one lxc command (source and target over HTTPS on loopback, one rsync over the migration websocket); LXD's two ends agree on rsync --compress, Berth's do not compress (loopback); the floor is one local rsync with the options of Berth's sender")
}

// moveRuns is the number of moves per pair: each moves the whole tree.
func moveRuns() int { return max(1, min(*runs, 5)) }

// settle flushes what the last sample left dirty, so the next one starts alike.
func settle() { unix.Sync() }

// timedMoves moves name between remotes from and to (back and forth, one sample per
// move) with lxc in env, and returns the remote it ends on.
func timedMoves(ctx context.Context, r *report, row, lxc string, env []string, name, from, to string) (string, error) {
	for i := 0; i < moveRuns(); i++ {
		settle()
		t0 := time.Now()
		_, err := runClient(ctx, lxc, env, "move", from+":"+name, to+":"+name)
		if err != nil {
			return from, err
		}

		r.add(row, time.Since(t0))
		from, to = to, from
	}

	return from, nil
}

// timedImageCopies copies image fp from remote from to remote to (pull mode, lxc's
// default), deleting it on to before each sample.
func timedImageCopies(ctx context.Context, r *report, row, lxc string, env []string, fp, from, to string) error {
	_, _ = runClient(ctx, lxc, env, "image", "delete", to+":"+fp) // none there, as a rule
	for i := 0; i < moveRuns(); i++ {
		settle()
		t0 := time.Now()
		_, err := runClient(ctx, lxc, env, "image", "copy", from+":"+fp, to+":")
		if err != nil {
			return err
		}

		r.add(row, time.Since(t0))
		_, err = runClient(ctx, lxc, env, "image", "delete", to+":"+fp)
		if err != nil {
			return err
		}
	}

	return nil
}

// runClient runs lxc (or berth) with env added.
func runClient(ctx context.Context, bin string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %v: %w: %s", filepath.Base(bin), args, err, trim(string(out)))
	}

	return string(out), nil
}

// fileSHA256 is the fingerprint of a unified image: the sha256 of its tarball.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}

	defer func() { _ = f.Close() }()
	h := sha256.New()
	_, err = io.Copy(h, f)
	if err != nil {
		return "", err
	}

	return hex.EncodeToString(h.Sum(nil)), nil
}
