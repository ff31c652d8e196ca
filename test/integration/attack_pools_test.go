package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// subvolAttack is BTRFS_IOC_SUBVOL_CREATE of "sv" in a directory, in Perl (perl-base is
// in every Debian image): struct btrfs_ioctl_vol_args is an fd and a 4088-byte name.
const subvolAttack = `sysopen(my $fh, $ARGV[0], 0) or die "open: $!\n"; ` +
	`my $args = pack("q a4088", 0, "sv"); ` +
	`ioctl($fh, 0x5000940e, $args) or die "ioctl: $!\n"; print "created\n";`

// TestAttackPoolsNestedSubvolume: root in a container on a btrfs pool, with a root disk
// size, tries to make a btrfs subvolume of its own (whose quota group its root disk's
// limit would not count) to write past its size. The ioctl must fail, and no subvolume
// appears in the instance's storage on the host. The positive control runs the same
// ioctl from the host on a scratch directory of the same pool, where it makes one.
// (On a pool whose instances are a shifted copy bind-mounted from btrfs, the dir driver,
// the attack succeeds: overlayfs is the defence, it passes no btrfs ioctl on.)
func TestAttackPoolsNestedSubvolume(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	lxc, must := poolLXC(t, d)
	onPoolsCleanup(t, d, lxc, "p1")

	must("storage", "create", "p1", "btrfs", "size=2GiB")
	p1 := filepath.Join(d.dir, "storage-pools", "p1")
	must("launch", "debian/12", "a1", "-s", "p1")
	d.waitRunning("a1")
	// The limit leaves 64 MiB over what a1 uses (with a shifted copy, the whole root).
	_, _ = d.inside("a1", "sync")
	st, err := d.c.GetInstanceState(context.Background(), "a1")
	if err != nil || st.Disk["root"].Usage <= 0 {
		t.Fatalf("a1's root disk usage: %+v %v", st, err)
	}

	limit := fmt.Sprintf("%dMiB", st.Disk["root"].Usage>>20+64)
	must("config", "device", "set", "a1", "root", "size="+limit)

	out, err := lxc("exec", "a1", "--", "perl", "-e", subvolAttack, "/root")
	if err == nil || strings.Contains(out, "created") {
		t.Errorf("container root made a btrfs subvolume:\n%s", out)
	}

	if !strings.Contains(out, "ioctl:") {
		t.Errorf("the attack failed before its ioctl (no perl?):\n%s", out)
	}

	t.Logf("attack: %s", strings.TrimSpace(out))

	// Unchanged: no subvolume (nor directory) in the instance's storage on the host, and
	// the container's writes still stop at its size.
	matches, _ := filepath.Glob(filepath.Join(p1, "containers", "a1", "*", "root", "sv"))
	if len(matches) > 0 {
		t.Errorf("the attack left %v in a1's storage", matches)
	}

	out, err = lxc("exec", "a1", "--", "sh", "-c", "dd if=/dev/zero of=/root/big bs=1M count=128 2>&1; rm -f /root/big")
	if err != nil || !strings.Contains(out, "Disk quota exceeded") && !strings.Contains(out, "No space left") {
		t.Errorf("after the attack a1 wrote past its %s root disk: %v\n%s", limit, err, out)
	}

	// Positive control: the same ioctl where it reaches btrfs makes a subvolume.
	scratch := filepath.Join(p1, "scratch")
	if err := os.Mkdir(scratch, 0o700); err != nil {
		t.Fatal(err)
	}

	defer func() { _ = os.RemoveAll(scratch) }()

	ctlOut, err := exec.Command("perl", "-e", subvolAttack, scratch).CombinedOutput()
	ctl := string(ctlOut)
	if err != nil || !strings.Contains(ctl, "created") || !isSubvolume(filepath.Join(scratch, "sv")) {
		t.Fatalf("control: the ioctl on the pool from the host did not make a subvolume: %v\n%s", err, ctl)
	}
}

// TestAttackDirPoolSubvolume: on a dir pool on btrfs the container's root is a plain
// directory in its own subvolume (the quota group its root disk size limits), and no
// overlayfs stands between the container and btrfs. Root inside tries to make a subvolume
// of its own, which that quota group would not count. The default seccomp policy refuses
// the subvolume ioctls: the attack fails with EPERM, nothing appears on the host, and
// writes still stop at the size. Positive control: a container with
// security.syscalls.deny_default=false (no filter) makes one, so the filter is what stops
// it; and the attack fails without the filter's ioctl rule (the control is that case).
func TestAttackDirPoolSubvolume(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	lxc, must := poolLXC(t, d)
	mnt := loopBtrfs(t) // unmounted after the pool and its instances are gone
	onPoolsCleanup(t, d, lxc, "pd")
	src := filepath.Join(mnt, "pool")
	if err := os.Mkdir(src, 0o711); err != nil {
		t.Fatal(err)
	}

	must("storage", "create", "pd", "dir", "source="+src)
	must("launch", "debian/12", "a2", "-s", "pd", "-c", "security.syscalls.deny_default=false")
	must("launch", "debian/12", "a1", "-s", "pd")
	d.waitRunning("a1")
	d.waitRunning("a2")
	must("config", "device", "set", "a1", "root", "size=2GiB")

	out, err := lxc("exec", "a1", "--", "perl", "-e", subvolAttack, "/root")
	if err == nil || strings.Contains(out, "created") {
		t.Errorf("container root made a btrfs subvolume on a dir pool:\n%s", out)
	}

	if !strings.Contains(out, "ioctl: Operation not permitted") {
		t.Errorf("the attack did not fail with EPERM at its ioctl:\n%s", out)
	}

	subvols := func(name string) []string {
		var found []string
		_ = filepath.WalkDir(filepath.Join(src, "containers", name), func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() && e.Name() == "sv" && isSubvolume(p) {
				found = append(found, p)
			}

			return nil
		})

		return found
	}

	if got := subvols("a1"); len(got) > 0 {
		t.Errorf("the attack left subvolumes %v in a1's storage", got)
	}

	// Control: without the filter, the same call from the same kind of container works.
	out, err = lxc("exec", "a2", "--", "perl", "-e", subvolAttack, "/root")
	if err != nil || !strings.Contains(out, "created") || len(subvols("a2")) != 1 {
		t.Fatalf("control: a2 (no seccomp filter) could not make a subvolume: %v\n%s", err, out)
	}
}
