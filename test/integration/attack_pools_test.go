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
