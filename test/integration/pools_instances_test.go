package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// onPoolsCleanup deletes, even after a failure, the instances and then the pools a test
// made (the daemon's own cleanup deletes instances only, and a loop-backed btrfs pool
// stays mounted without its daemon), then unmounts what is still mounted.
func onPoolsCleanup(t *testing.T, d *daemon, lxc func(args ...string) (string, error), pools ...string) {
	t.Cleanup(func() {
		if d.cmd != nil {
			names, _ := d.c.GetInstanceNames(context.Background())
			for _, n := range names {
				_, _ = d.berthErr("delete", "-f", n)
			}

			for _, p := range pools {
				_, _ = lxc("storage", "delete", p)
			}
		}

		for _, m := range mountsNaming(hostMounts(t), filepath.Join(d.dir, "storage-pools")+"/") {
			if m.FSType == "btrfs" {
				_ = syscall.Unmount(m.MountPoint, unix.MNT_DETACH)
			}
		}
	})
}

// usedBy reports whether lxc storage show lists url as a user of pool.
func usedBy(must func(args ...string) string, pool, url string) bool {
	return strings.Contains(must("storage", "show", pool), "- "+url+"\n")
}

// isSubvolume reports whether path is the root of a btrfs subvolume.
func isSubvolume(path string) bool {
	var st unix.Stat_t
	var fs unix.Statfs_t
	return unix.Lstat(path, &st) == nil && unix.Statfs(path, &fs) == nil &&
		fs.Type == unix.BTRFS_SUPER_MAGIC && st.Ino == 256
}

// TestInstancesOnPoolsLXC: with the stock lxc, instances live on the pool their root disk
// names. A container launched with -s onto a loop-file btrfs pool (lxc storage create
// ... btrfs size=) has its storage there, is listed in that pool's used_by (and not the
// default's), keeps the pool from being deleted, cannot write past its root disk size
// (EDQUOT, and it keeps running), snapshots as a btrfs snapshot and restores from it; one
// launched onto a dir pool lives there; the root disk's pool cannot be changed by an edit;
// a copy to another pool (lxc copy --storage) carries the data and snapshots, and a size
// the target pool cannot enforce is refused with the reason; a backup imported with
// --storage lands on that pool; a daemon restart adopts the instances on the other pools,
// which still stop and start.
func TestInstancesOnPoolsLXC(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	lxc, must := poolLXC(t, d)
	onPoolsCleanup(t, d, lxc, "p1", "pd")
	ctx := context.Background()

	must("storage", "create", "p1", "btrfs", "size=3GiB")
	must("storage", "create", "pd", "dir")
	p1 := filepath.Join(d.dir, "storage-pools", "p1")
	pd := filepath.Join(d.dir, "storage-pools", "pd")

	must("launch", "debian/12", "c1", "-s", "p1")
	if st := d.waitRunning("c1"); st != "running" && st != "degraded" {
		t.Fatalf("c1 on btrfs: systemd is %q", st)
	}

	if !isSubvolume(filepath.Join(p1, "containers", "c1")) {
		t.Fatalf("c1's storage is not a subvolume of the btrfs pool %s", p1)
	}

	for _, p := range []string{"storage-pools/default/containers/c1", "storage-pools/pd/containers/c1"} {
		if _, err := os.Lstat(filepath.Join(d.dir, p)); err == nil {
			t.Errorf("c1 on p1 also has %s", p)
		}
	}

	if !usedBy(must, "p1", "/1.0/instances/c1") || usedBy(must, "default", "/1.0/instances/c1") {
		t.Errorf("used_by: p1 %v, default %v; want c1 on p1 only", usedBy(must, "p1", "/1.0/instances/c1"), usedBy(must, "default", "/1.0/instances/c1"))
	}

	out, err := lxc("storage", "delete", "p1")
	if err == nil || !strings.Contains(out, "in use by /1.0/instances/c1") {
		t.Errorf("deleting p1 under c1: %v\n%s", err, out)
	}

	// The root disk size: the whole root filesystem counts (the dir driver copies the
	// image), so the limit is what c1 uses now plus 64 MiB.
	_, _ = d.inside("c1", "sync")
	st, err := d.c.GetInstanceState(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}

	used := st.Disk["root"].Usage
	if used <= 0 {
		t.Fatalf("c1 on btrfs reports no root disk usage: %+v", st.Disk)
	}

	limitMiB := used>>20 + 64
	must("config", "device", "set", "c1", "root", "size="+fmt.Sprint(limitMiB)+"MiB")
	write := func(mib int) (string, error) {
		return d.inside("c1", "sh", "-c", fmt.Sprintf("rm -f /root/fill; sync; dd if=/dev/zero of=/root/fill bs=1M count=%d 2>&1 && sync", mib))
	}

	out, err = write(128)
	if err == nil {
		t.Fatalf("128 MiB written with %d MiB used under a %d MiB root disk:\n%s", used>>20, limitMiB, out)
	}

	if !strings.Contains(out, "Disk quota exceeded") && !strings.Contains(out, "No space left") {
		t.Fatalf("the write failed for another reason than the quota:\n%s", out)
	}

	if out, err = write(16); err != nil {
		t.Fatalf("16 MiB under the limit: %v\n%s", err, out)
	}

	if out = must("list", "c1", "--format", "csv", "-c", "ns"); !strings.Contains(out, "c1,RUNNING") {
		t.Fatalf("c1 after hitting its quota: %s", out)
	}

	// Snapshot and restore on btrfs.
	if out, err = d.inside("c1", "sh", "-c", "echo one > /root/marker && sync"); err != nil {
		t.Fatalf("writing the marker: %v\n%s", err, out)
	}

	must("snapshot", "c1", "s1")
	if !isSubvolume(filepath.Join(p1, "containers-snapshots", "c1", "s1")) {
		t.Error("snapshot s1 of c1 on btrfs is not a btrfs snapshot (subvolume)")
	}

	if out, err = d.inside("c1", "sh", "-c", "echo two > /root/marker && sync"); err != nil {
		t.Fatalf("rewriting the marker: %v\n%s", err, out)
	}

	must("restore", "c1", "s1")
	d.waitRunning("c1")
	if out, _ = d.inside("c1", "cat", "/root/marker"); strings.TrimSpace(out) != "one" {
		t.Errorf("after restore the marker reads %q, want one", out)
	}

	// A dir pool.
	must("launch", "debian/12", "c2", "-s", "pd")
	d.waitRunning("c2")
	if _, err := os.Lstat(filepath.Join(pd, "containers", "c2", "rootfs")); err != nil {
		t.Errorf("c2 has no storage on pd: %v", err)
	}

	if !usedBy(must, "pd", "/1.0/instances/c2") || usedBy(must, "default", "/1.0/instances/c2") {
		t.Error("used_by: c2 is not listed on pd only")
	}

	// The pool an instance lives on does not change by an edit.
	out, err = lxc("config", "device", "set", "c2", "root", "pool=p1")
	if err == nil || !strings.Contains(out, `the root disk's pool cannot change from "pd" to "p1"`) {
		t.Errorf("moving c2's root disk to p1 by an edit: %v\n%s", err, out)
	}

	if out = must("config", "device", "get", "c2", "root", "pool"); strings.TrimSpace(out) != "pd" {
		t.Errorf("after the refused edit c2's root pool is %q", out)
	}

	// A copy across pools: a size pd cannot enforce is refused, then without it the copy
	// carries the data and the snapshot.
	out, err = lxc("copy", "c1", "c3", "--storage", "pd")
	if err == nil || !strings.Contains(out, "pool pd (") || !strings.Contains(out, "cannot enforce a root disk size") {
		t.Errorf("copying c1 with its size to a dir pool: %v\n%s", err, out)
	}

	must("config", "device", "unset", "c1", "root", "size")
	must("copy", "c1", "c3", "--storage", "pd")
	if _, err := os.Lstat(filepath.Join(pd, "containers", "c3", "rootfs")); err != nil {
		t.Errorf("c3 has no storage on pd: %v", err)
	}

	if _, err := os.Lstat(filepath.Join(pd, "containers-snapshots", "c3", "s1")); err != nil {
		t.Errorf("c3's snapshot s1 is not on pd: %v", err)
	}

	if !usedBy(must, "pd", "/1.0/instances/c3") || usedBy(must, "p1", "/1.0/instances/c3") {
		t.Error("used_by: c3 is not listed on pd only")
	}

	must("start", "c3")
	d.waitRunning("c3")
	if out, _ = d.inside("c3", "cat", "/root/marker"); strings.TrimSpace(out) != "one" {
		t.Errorf("the copy on pd reads %q, want one", out)
	}

	// A backup of c3 (on pd) imported onto p1 (lxc import --storage) lives there, its
	// snapshot too.
	backup := filepath.Join(t.TempDir(), "c3.tar.gz")
	must("export", "c3", backup)
	must("import", backup, "c4", "--storage", "p1")
	if !isSubvolume(filepath.Join(p1, "containers", "c4")) {
		t.Error("imported c4 is not on p1")
	}

	if _, err := os.Lstat(filepath.Join(p1, "containers-snapshots", "c4", "s1")); err != nil {
		t.Errorf("c4's snapshot s1 is not on p1: %v", err)
	}

	if !usedBy(must, "p1", "/1.0/instances/c4") || usedBy(must, "pd", "/1.0/instances/c4") {
		t.Error("used_by: c4 is not listed on p1 only")
	}

	must("start", "c4")
	d.waitRunning("c4")
	if out, _ = d.inside("c4", "cat", "/root/marker"); strings.TrimSpace(out) != "one" {
		t.Errorf("the import on p1 reads %q, want one", out)
	}

	// A restart adopts the running instances on the other pools.
	pid := d.initPID("c1")
	d.kill(syscall.SIGTERM)
	d.start()
	if got := d.initPID("c1"); got != pid {
		t.Errorf("c1's init pid after the restart: %d, was %d", got, pid)
	}

	must("stop", "c1")
	must("start", "c1")
	d.waitRunning("c1")
	if out, _ = d.inside("c1", "cat", "/root/marker"); strings.TrimSpace(out) != "one" {
		t.Errorf("c1 after a restart and a stop/start reads %q", out)
	}

	// Deleting the instances frees the pools.
	for _, n := range []string{"c1", "c2", "c3", "c4"} {
		must("delete", "-f", n)
	}

	must("storage", "delete", "p1")
	must("storage", "delete", "pd")
	for _, p := range []string{p1, pd, filepath.Join(d.dir, "disks", "p1.img")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("deleted pool left %s", p)
		}
	}
}
