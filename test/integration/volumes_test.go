package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/lxd/idmap"
)

// mountOptsInside returns the mount options of the mount at path inside a container, as
// its /proc/self/mountinfo says (per-mount options, then super options).
func mountOptsInside(t *testing.T, d *daemon, name, path string) string {
	t.Helper()
	out, err := d.inside(name, "findmnt", "-n", "-o", "OPTIONS", "--mountpoint", path)
	if err != nil {
		t.Fatalf("findmnt %s in %s: %v\n%s", path, name, err, out)
	}

	return strings.TrimSpace(out)
}

func mustInside(t *testing.T, d *daemon, name, script string) string {
	t.Helper()
	out, err := d.inside(name, "sh", "-c", script)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", name, script, err, out)
	}

	return out
}

// TestVolumesLXC drives custom volumes with the stock lxc end to end: a volume created,
// hotplugged into a running container, written by a non-root user there; the container
// deleted and a new one attached to the same volume sees the file with the same owner
// (the volume is container-neutral: no chown); a second attach without security.shared is
// a 400 and allowed with it; a volume in use is not deleted; snapshot and restore; a size
// on a pool that cannot enforce it is refused; the volume and its files go with delete.
func TestVolumesLXC(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	cleanupPoolMounts(t, d)
	lxc, must := poolLXC(t, d)

	must("storage", "volume", "create", "default", "v1")
	out := must("storage", "volume", "list", "default", "--format", "csv")
	if !strings.Contains(out, "custom,v1,") {
		t.Fatalf("lxc storage volume list lacks v1:\n%s", out)
	}

	out, err := lxc("storage", "volume", "create", "default", "vs", "size=1GiB")
	if err == nil || !strings.Contains(out, "size") {
		t.Errorf("a size on a pool that cannot enforce it: err %v\n%s", err, out)
	}

	must("launch", "debian/12", "c1")
	d.waitRunning("c1")
	must("storage", "volume", "attach", "default", "v1", "c1", "/data")

	opts := mountOptsInside(t, d, "c1", "/data")
	for _, want := range []string{"nosuid", "nodev"} {
		if !strings.Contains(opts, want) {
			t.Errorf("volume mount in c1 lacks %s: %s", want, opts)
		}
	}

	mustInside(t, d, "c1", "useradd -u 1500 -M alice && mkdir /data/alice && chown alice:alice /data/alice && runuser -u alice -- sh -c 'echo written by alice > /data/alice/f'")
	if got := mustInside(t, d, "c1", "stat -c %U:%u /data/alice/f"); strings.TrimSpace(got) != "alice:1500" {
		t.Errorf("owner of alice's file in c1: %q", got)
	}

	// Stored neutral on the host: container uid 1500 is VolumeBase+1500 whoever wrote it.
	backing := filepath.Join(d.dir, "storage-pools", "default", "custom", "v1", "alice", "f")
	var st syscall.Stat_t
	if err := syscall.Lstat(backing, &st); err != nil {
		t.Fatal(err)
	}
	if int64(st.Uid) != idmap.VolumeBase+1500 {
		t.Errorf("alice's file is stored with host uid %d, want %d", st.Uid, idmap.VolumeBase+1500)
	}

	out, err = lxc("storage", "volume", "delete", "default", "v1")
	if err == nil || !strings.Contains(out, "c1") {
		t.Errorf("deleting an attached volume: err %v\n%s", err, out)
	}

	must("delete", "-f", "c1")

	must("launch", "debian/12", "c2")
	d.waitRunning("c2")
	must("storage", "volume", "attach", "default", "v1", "c2", "/srv/v")
	mustInside(t, d, "c2", "useradd -u 1500 -M alice")
	got := mustInside(t, d, "c2", "stat -c %U:%u /srv/v/alice/f; stat -c %U /srv/v; cat /srv/v/alice/f")
	if want := "alice:1500\nroot\nwritten by alice\n"; got != want {
		t.Errorf("c2 reads the volume as %q, want %q", got, want)
	}

	// Two at once only with security.shared.
	must("init", "debian/12", "c3")
	out, err = lxc("storage", "volume", "attach", "default", "v1", "c3", "/data")
	if err == nil || !strings.Contains(out, "security.shared") || !strings.Contains(out, "c2") {
		t.Errorf("attaching v1 to c3 while c2 has it: err %v\n%s", err, out)
	}

	if out := must("config", "device", "list", "c3"); strings.Contains(out, "v1") {
		t.Errorf("a refused attach left a device on c3: %s", out)
	}

	must("storage", "volume", "set", "default", "v1", "security.shared=true")
	must("storage", "volume", "attach", "default", "v1", "c3", "/data")
	out = must("storage", "volume", "show", "default", "v1")
	for _, want := range []string{"/1.0/instances/c2", "/1.0/instances/c3"} {
		if !strings.Contains(out, want) {
			t.Errorf("used_by lacks %s:\n%s", want, out)
		}
	}

	must("storage", "volume", "detach", "default", "v1", "c3")

	// Snapshot, change, restore (detached: a restore swaps the volume's directory).
	must("storage", "volume", "snapshot", "default", "v1", "s1")
	mustInside(t, d, "c2", "echo changed > /srv/v/alice/f; touch /srv/v/new")
	out, err = lxc("storage", "volume", "restore", "default", "v1", "s1")
	if err == nil || !strings.Contains(out, "c2") {
		t.Errorf("restoring an attached volume: err %v\n%s", err, out)
	}

	must("storage", "volume", "detach", "default", "v1", "c2")
	must("storage", "volume", "restore", "default", "v1", "s1")
	must("storage", "volume", "attach", "default", "v1", "c2", "/srv/v")
	got = mustInside(t, d, "c2", "cat /srv/v/alice/f; stat -c %U /srv/v/alice/f; test -e /srv/v/new && echo new-still-there || true")
	if want := "written by alice\nalice\n"; got != want {
		t.Errorf("after restore c2 reads %q, want %q", got, want)
	}

	out = must("storage", "volume", "show", "default", "v1/s1")
	if !strings.Contains(out, "name: s1") {
		t.Errorf("lxc storage volume show v1/s1:\n%s", out)
	}

	// Export with its snapshot and import under another name: same content, owners and
	// snapshot.
	tarball := filepath.Join(t.TempDir(), "v1.tar.gz")
	must("storage", "volume", "export", "default", "v1", tarball)
	must("storage", "volume", "import", "default", tarball, "v1imp")
	must("storage", "volume", "show", "default", "v1imp/s1")
	must("storage", "volume", "attach", "default", "v1imp", "c2", "/srv/imp")
	got = mustInside(t, d, "c2", "cat /srv/imp/alice/f; stat -c %U /srv/imp/alice/f; stat -c %U:%a /srv/imp")
	if want := "written by alice\nalice\nroot:755\n"; got != want {
		t.Errorf("the imported volume reads %q, want %q", got, want)
	}

	must("storage", "volume", "detach", "default", "v1imp", "c2")

	// Copy to another pool, then move back under a new name.
	must("storage", "create", "p2", "dir")
	must("storage", "volume", "copy", "default/v1imp", "p2/v1c")
	copied := filepath.Join(d.dir, "storage-pools", "p2", "custom", "v1c", "alice", "f")
	if err := syscall.Lstat(copied, &st); err != nil || int64(st.Uid) != idmap.VolumeBase+1500 {
		t.Errorf("the copy in p2: uid %d, %v", st.Uid, err)
	}

	must("storage", "volume", "show", "p2", "v1c/s1") // snapshots come with a copy
	must("storage", "volume", "move", "p2/v1c", "default/v1m")
	must("storage", "volume", "show", "default", "v1m/s1")
	if _, err := os.Lstat(filepath.Dir(copied)); err == nil {
		t.Errorf("the moved volume stayed in p2")
	}

	if out := must("storage", "volume", "list", "default", "--format", "csv"); !strings.Contains(out, "custom,v1m,") {
		t.Errorf("the moved volume is not listed in default:\n%s", out)
	}

	must("storage", "volume", "delete", "default", "v1m")
	must("storage", "volume", "delete", "default", "v1imp")
	must("storage", "delete", "p2")

	must("storage", "volume", "delete", "default", "v1/s1")
	must("storage", "volume", "detach", "default", "v1", "c2")
	must("storage", "volume", "delete", "default", "v1")
	for _, p := range []string{"custom/v1", "custom-snapshots/v1"} {
		if _, err := os.Lstat(filepath.Join(d.dir, "storage-pools", "default", p)); err == nil {
			t.Errorf("%s outlived the volume", p)
		}
	}

	if out := must("storage", "volume", "list", "default", "--format", "csv"); strings.Contains(out, "v1") {
		t.Errorf("v1 still listed:\n%s", out)
	}
}

// TestVolumesBtrfsLXC: on a loop-backed btrfs pool a volume is a subvolume whose size is
// enforced (a container cannot write 100 MiB into a 64 MiB volume, 32 MiB go through),
// its snapshot is a read-only btrfs snapshot, and restore brings the content back.
func TestVolumesBtrfsLXC(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	cleanupPoolMounts(t, d)
	_, must := poolLXC(t, d)

	must("storage", "create", "bt", "btrfs", "size=1GiB")
	must("storage", "volume", "create", "bt", "q1", "size=64MiB")
	must("launch", "debian/12", "b1")
	d.waitRunning("b1")
	must("storage", "volume", "attach", "bt", "q1", "b1", "/data")

	write := func(mib string) (string, error) {
		return d.inside("b1", "sh", "-c", "rm -f /data/fill; sync; dd if=/dev/zero of=/data/fill bs=1M count="+mib+" 2>&1 && sync")
	}

	if out, err := write("100"); err == nil || !(strings.Contains(out, "quota") || strings.Contains(out, "No space")) {
		t.Errorf("100 MiB into a 64 MiB volume: err %v\n%s", err, out)
	}

	if out, err := write("32"); err != nil {
		t.Fatalf("32 MiB into a 64 MiB volume: %v\n%s", err, out)
	}

	mustInside(t, d, "b1", "echo before > /data/mark")
	must("storage", "volume", "snapshot", "bt", "q1", "s1")
	snap := filepath.Join(d.dir, "storage-pools", "bt", "custom-snapshots", "q1", "s1")
	var st syscall.Stat_t
	if err := syscall.Lstat(snap, &st); err != nil || st.Ino != 256 {
		t.Errorf("the snapshot is not a btrfs subvolume: inode %d, %v", st.Ino, err)
	}

	if err := os.WriteFile(filepath.Join(snap, "x"), nil, 0o644); err == nil {
		t.Errorf("the snapshot is writable")
	}

	mustInside(t, d, "b1", "echo after > /data/mark")
	must("storage", "volume", "detach", "bt", "q1", "b1")
	must("storage", "volume", "restore", "bt", "q1", "s1")
	must("storage", "volume", "attach", "bt", "q1", "b1", "/data")
	if got := mustInside(t, d, "b1", "cat /data/mark"); got != "before\n" {
		t.Errorf("after restore: %q", got)
	}

	if out, err := write("100"); err == nil {
		t.Errorf("the restored volume lost its size:\n%s", out)
	}

	must("storage", "volume", "detach", "bt", "q1", "b1")
	must("delete", "-f", "b1")
	must("storage", "volume", "delete", "bt", "q1")

	// A project's volumes count against its limits.disk by their size, and one without
	// a size is refused there, as in LXD.
	lxc, _ := poolLXC(t, d)
	must("project", "create", "pq", "-c", "limits.disk=100MiB")
	t.Cleanup(func() {
		for _, v := range []string{"v1", "v2", "v3"} {
			_, _ = lxc("storage", "volume", "delete", "bt", v, "--project", "pq")
		}

		_, _ = lxc("project", "delete", "pq")
	})

	must("storage", "volume", "create", "bt", "v1", "size=64MiB", "--project", "pq")
	if out, err := lxc("storage", "volume", "create", "bt", "v2", "size=64MiB", "--project", "pq"); err == nil || !strings.Contains(out, "limits.disk") {
		t.Errorf("a second 64 MiB volume under limits.disk=100MiB: %v\n%s", err, out)
	}

	if out, err := lxc("storage", "volume", "create", "bt", "v3", "--project", "pq"); err == nil || !strings.Contains(out, "sets no size") {
		t.Errorf("a volume without a size under limits.disk: %v\n%s", err, out)
	}

	if out, err := lxc("storage", "volume", "set", "bt", "v1", "size=200MiB", "--project", "pq"); err == nil || !strings.Contains(out, "limits.disk") {
		t.Errorf("growing a volume past limits.disk: %v\n%s", err, out)
	}

	if out := must("storage", "volume", "list", "bt", "--project", "pq", "--format", "csv"); strings.Contains(out, "v2") || strings.Contains(out, "v3") {
		t.Errorf("a refused volume was made:\n%s", out)
	}

	must("storage", "volume", "delete", "bt", "v1", "--project", "pq")
	must("project", "delete", "pq")
	must("storage", "delete", "bt")
}
