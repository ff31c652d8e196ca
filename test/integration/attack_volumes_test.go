package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/lxd/idmap"
)

// Attacks through custom storage volumes, from root inside a real container (nsenter
// into all its namespaces) or, for the pool's directory, from anyone who can write there;
// each asserts the attack fails, the target is unchanged, and has a positive control.

// TestAttackVolumeSetuid: root inside plants a setuid-root copy of id(1) in an attached
// volume. On the host the stored file is not setuid host-root (it is stored with the
// neutral VolumeBase, behind a 0700 directory), and inside the mount is nosuid, locked:
// a non-root user running it stays itself, and root inside cannot remount it suid. The
// control: the same binary planted in the container's own root filesystem (not nosuid)
// does make that user root, so the check would see a working setuid.
func TestAttackVolumeSetuid(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	_, must := poolLXC(t, d)

	must("storage", "volume", "create", "default", "sv")
	must("launch", "debian/12", "a1")
	d.waitRunning("a1")
	must("storage", "volume", "attach", "default", "sv", "a1", "/data")

	mustInside(t, d, "a1", "useradd -u 1500 -M alice; cp /usr/bin/id /data/id && chown root:root /data/id && chmod 4755 /data/id")

	// The host: the file is there, with the setuid bit the attacker set, but not owned by
	// host root; the directories above it keep host users out.
	backing := filepath.Join(d.dir, "storage-pools", "default", "custom", "sv", "id")
	var st syscall.Stat_t
	if err := syscall.Lstat(backing, &st); err != nil {
		t.Fatalf("the planted file is not in the volume: %v", err)
	}

	if st.Mode&syscall.S_ISUID == 0 {
		t.Fatalf("control: the planted file lost its setuid bit (mode %o): the attack was not made", st.Mode)
	}

	if st.Uid == 0 {
		t.Errorf("a setuid binary planted in a volume is setuid host root: uid %d mode %o", st.Uid, st.Mode)
	}

	if int64(st.Uid) != idmap.VolumeBase {
		t.Errorf("the planted file is stored with uid %d, want the neutral root %d", st.Uid, idmap.VolumeBase)
	}

	var dirSt syscall.Stat_t
	if err := syscall.Stat(filepath.Join(d.dir, "storage-pools", "default", "custom"), &dirSt); err != nil || dirSt.Mode&0o077 != 0 || dirSt.Uid != 0 {
		t.Errorf("the pool's custom/ directory is open to host users: mode %o uid %d (%v)", dirSt.Mode, dirSt.Uid, err)
	}

	// Inside: nosuid holds for a non-root user, and root cannot clear it.
	if opts := mountOptsInside(t, d, "a1", "/data"); !strings.Contains(opts, "nosuid") {
		t.Errorf("the volume is mounted without nosuid: %s", opts)
	}

	if got := strings.TrimSpace(mustInside(t, d, "a1", "runuser -u alice -- /data/id -u")); got != "1500" {
		t.Errorf("alice ran the planted setuid binary as uid %s", got)
	}

	out, err := d.inside("a1", "mount", "-o", "remount,suid,bind", "/data")
	if err == nil {
		if opts := mountOptsInside(t, d, "a1", "/data"); !strings.Contains(opts, "nosuid") {
			t.Errorf("root inside cleared nosuid on the volume: %s\n%s", opts, out)
		}
	}

	if got := strings.TrimSpace(mustInside(t, d, "a1", "runuser -u alice -- /data/id -u")); got != "1500" {
		t.Errorf("after a remount attempt alice ran the planted binary as uid %s", got)
	}

	// Control: where setuid works, the check sees it.
	mustInside(t, d, "a1", "cp /usr/bin/id /root/id && chmod 4755 /root/id && chmod 755 /root")
	if got := strings.TrimSpace(mustInside(t, d, "a1", "runuser -u alice -- /root/id -u")); got != "0" {
		t.Fatalf("control: a setuid-root binary in the container's own tree gave uid %s, not 0: the check cannot see setuid working", got)
	}
}

// TestAttackVolumeSymlinkSwap: the volume's directory in the pool is swapped for a symlink
// to a host directory (by anyone who can write the pool's directory). Attaching the
// volume then refuses (the directory is resolved with openat2 beneath the pool without
// following symlinks) and nothing of the host directory appears in the container; a bind
// mount put there instead is refused too (no mount crossing). The control: with the real
// directory back the same attach works and shows the volume's content.
func TestAttackVolumeSymlinkSwap(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	lxc, must := poolLXC(t, d)

	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "host-secret")
	if err := os.WriteFile(secret, []byte("host only\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	before := diskStat(t, secret)

	must("storage", "volume", "create", "default", "sw")
	must("launch", "debian/12", "a2")
	d.waitRunning("a2")

	volDir := filepath.Join(d.dir, "storage-pools", "default", "custom", "sw")
	if err := os.WriteFile(filepath.Join(volDir, "volume-file"), []byte("in the volume\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	aside := volDir + ".aside"
	if err := os.Rename(volDir, aside); err != nil {
		t.Fatal(err)
	}

	if err := os.Symlink(secretDir, volDir); err != nil {
		t.Fatal(err)
	}

	out, err := lxc("storage", "volume", "attach", "default", "sw", "a2", "/data")
	if err == nil {
		t.Errorf("attaching a volume whose directory is a symlink worked:\n%s", out)
	}

	if out, err := d.inside("a2", "cat", "/data/host-secret"); err == nil {
		t.Errorf("the host directory behind the symlink is visible in the container: %s", out)
	}

	// A bind mount in place of the directory.
	if err := os.Remove(volDir); err != nil {
		t.Fatal(err)
	}

	if err := os.Mkdir(volDir, 0o755); err != nil {
		t.Fatal(err)
	}

	if err := syscall.Mount(secretDir, volDir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = syscall.Unmount(volDir, syscall.MNT_DETACH) })

	out, err = lxc("storage", "volume", "attach", "default", "sw", "a2", "/data")
	if err == nil {
		t.Errorf("attaching a volume whose directory is a bind mount worked:\n%s", out)
	}

	if out, err := d.inside("a2", "cat", "/data/host-secret"); err == nil {
		t.Errorf("the bind-mounted host directory is visible in the container: %s", out)
	}

	if err := syscall.Unmount(volDir, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}

	if after := diskStat(t, secret); after != before {
		t.Errorf("the host secret changed: %+v -> %+v", before, after)
	}

	// Control: the real directory back, the attach works and shows the volume.
	if err := os.Remove(volDir); err != nil {
		t.Fatal(err)
	}

	if err := os.Rename(aside, volDir); err != nil {
		t.Fatal(err)
	}

	must("storage", "volume", "attach", "default", "sw", "a2", "/data")
	if got := mustInside(t, d, "a2", "cat /data/volume-file"); got != "in the volume\n" {
		t.Fatalf("control: the attached volume shows %q", got)
	}
}
