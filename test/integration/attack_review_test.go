package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/test/testutil"
)

// buildSubvol compiles the subvolume-creating attack helper, static.
func buildSubvol(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "subvol")
	b, err := exec.Command("gcc", "-static", "-O2", "-Wall", "-o", out, "testdata/attack_subvol.c").CombinedOutput()
	if err != nil {
		testutil.SkipOrFail(t, "building the subvolume helper: %v: %s", err, b)
	}

	return out
}

// TestAttackVolumeBtrfsNestedSubvolume: root inside a container with a 64 MiB btrfs
// volume creates a subvolume inside it (BTRFS_IOC_SUBVOL_CREATE needs no capability,
// only a writable directory) and writes 100 MiB there: a new subvolume has a quota group
// of its own, outside the volume's limit. The default seccomp filter refuses the ioctl,
// so nothing is created and the volume's size holds. The control: a container started
// with security.syscalls.deny_default=false (no filter) does create the nested
// subvolume and does write past its volume's size, so the check would see the bypass.
func TestAttackVolumeBtrfsNestedSubvolume(t *testing.T) {
	parallel(t)
	helper := buildSubvol(t)
	d := startDaemon(t)
	cleanupPoolMounts(t, d)
	_, must := poolLXC(t, d)

	must("storage", "create", "bt", "btrfs", "size=1GiB")
	for _, v := range []string{"q1", "q2"} {
		must("storage", "volume", "create", "bt", v, "size=64MiB")
	}

	must("launch", "debian/12", "b1")
	must("launch", "debian/12", "b2", "-c", "security.syscalls.deny_default=false")
	t.Cleanup(func() { _, _ = d.berthErr("delete", "-f", "b1"); _, _ = d.berthErr("delete", "-f", "b2") })
	d.waitRunning("b1")
	d.waitRunning("b2")
	must("storage", "volume", "attach", "bt", "q1", "b1", "/data")
	must("storage", "volume", "attach", "bt", "q2", "b2", "/data")

	attack := func(inst string) (created bool, wrote bool, out string) {
		d.berth("file", "push", "--mode", "0755", helper, inst+"/root/subvol")
		res, _ := d.berthErr("exec", inst, "--", "/root/subvol", "/data", "nested")
		created = strings.Contains(res, "created")
		out = res
		if !created {
			return false, false, out
		}

		w, err := d.berthErr("exec", inst, "--", "sh", "-c", "dd if=/dev/zero of=/data/nested/fill bs=1M count=100 2>&1 && sync")
		return true, err == nil, out + w
	}

	created, wrote, out := attack("b1")
	if created {
		t.Errorf("root inside created a btrfs subvolume in its volume (wrote 100 MiB in a 64 MiB volume: %v):\n%s", wrote, out)
	}

	if _, err := os.Lstat(filepath.Join(d.dir, "storage-pools", "bt", "custom", "q1", "nested")); err == nil {
		t.Errorf("the volume holds a nested entry after a refused attack")
	}

	if out, err := d.inside("b1", "sh", "-c", "dd if=/dev/zero of=/data/fill bs=1M count=100 2>&1 && sync"); err == nil {
		t.Errorf("100 MiB into a 64 MiB volume:\n%s", out)
	}

	// Control: without the filter the same attack gets past the size.
	created, wrote, out = attack("b2")
	if !created || !wrote {
		t.Fatalf("control: without seccomp the nested subvolume was not made or not filled past the size (created %v, wrote %v): the test cannot see the bypass\n%s", created, wrote, out)
	}

	for _, inst := range []string{"b1", "b2"} {
		must("delete", "-f", inst)
	}

	must("storage", "volume", "delete", "bt", "q1")
	must("storage", "volume", "delete", "bt", "q2")
	must("storage", "delete", "bt")
}
