package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

// On a filesystem without per-instance quotas (the temporary directory: ext4 or tmpfs
// here) the pool says so and why, and refuses to set a limit.
func TestRootQuotaRefusedWithoutQuotas(t *testing.T) {
	poolDir := newPoolDir(t)
	d, err := Load("dir", poolDir, nil)
	if err != nil {
		t.Fatal(err)
	}

	magic, err := fsMagic(poolDir)
	if err != nil {
		t.Fatal(err)
	}

	if magic == unix.BTRFS_SUPER_MAGIC {
		t.Skip("the temporary directory is on btrfs; TestRootQuotaBtrfs covers it")
	}

	err = d.RootQuota("")
	var qe *QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("RootQuota = %v, want a *QuotaError", err)
	}

	want := "dir on " + fsName(magic) + " at " + poolDir + " cannot enforce a root disk size: "
	if !strings.HasPrefix(err.Error(), want) || qe.Reason == "" {
		t.Errorf("error %q, want it to start with %q and give a reason", err, want)
	}

	err = d.SetRootQuota("c1", 1<<20)
	if !errors.As(err, &qe) {
		t.Errorf("SetRootQuota = %v, want a *QuotaError", err)
	}

	_, err = d.RootUsage("c1")
	if !errors.Is(err, ErrNoUsage) {
		t.Errorf("RootUsage = %v, want ErrNoUsage", err)
	}
}

func TestIoctlNumbers(t *testing.T) {
	// Values from linux/btrfs.h as compiled on amd64.
	for name, c := range map[string][2]uintptr{
		"BTRFS_IOC_SUBVOL_CREATE":  {btrfsIocSubvolCreate, 0x5000940e},
		"BTRFS_IOC_SNAP_CREATE_V2": {btrfsIocSnapCreateV2, 0x50009417},
		"BTRFS_IOC_INO_LOOKUP":     {btrfsIocInoLookup, 0xd0009412},
		"BTRFS_IOC_FS_INFO":        {btrfsIocFSInfo, 0x8400941f},
		"BTRFS_IOC_QGROUP_LIMIT":   {btrfsIocQgroupLimit, 0x8030942b},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %#x, want %#x", name, c[0], c[1])
		}
	}
}

// newBtrfs mounts a fresh loop-file btrfs (quotas off) and returns its mount point;
// everything goes on cleanup, also after a failure.
func newBtrfs(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t, "mount and chown")

	for _, tool := range []string{"mkfs.btrfs", "btrfs"} {
		testutil.LookPath(t, tool, "btrfs-progs; make deps installs it")
	}

	// 0711 all the way, as a pool's parents must be for container roots.
	dir, err := os.MkdirTemp("", "berth-btrfs-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	img := filepath.Join(dir, "img")
	mnt := filepath.Join(dir, "mnt")
	run(t, "truncate", "-s", "256M", img)
	run(t, "mkfs.btrfs", "-q", "-f", img)
	err = os.Mkdir(mnt, 0o711)
	if err != nil {
		t.Fatal(err)
	}

	// mount -o loop sets autoclear: the loop device goes with the unmount.
	run(t, "mount", "-o", "loop", img, mnt)
	t.Cleanup(func() {
		err := unix.Unmount(mnt, 0)
		if err != nil {
			t.Errorf("unmounting test btrfs: %v", err)
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})

	for _, p := range []string{dir, mnt} {
		err = os.Chmod(p, 0o711)
		if err != nil {
			t.Fatal(err)
		}
	}

	return mnt
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()

	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestRootQuotaBtrfs(t *testing.T) {
	for _, driver := range Drivers() {
		t.Run(driver, func(t *testing.T) { testRootQuotaBtrfs(t, driver) })
	}
}

func testRootQuotaBtrfs(t *testing.T, driver string) {
	mnt := newBtrfs(t)
	poolDir := filepath.Join(mnt, "pool")
	requireDriver(t, driver, poolDir)

	d, err := Load(driver, poolDir, nil)
	if err != nil {
		t.Fatal(err)
	}

	err = d.CreateImage("img", unpackTestImage)
	if err != nil {
		t.Fatal(err)
	}

	// Quotas off: refused with the reason.
	var qe *QuotaError
	err = d.RootQuota("")
	if !errors.As(err, &qe) || !strings.Contains(qe.Reason, "not enabled") || qe.FS != "btrfs" {
		t.Fatalf("RootQuota with quotas off = %v", err)
	}

	run(t, "btrfs", "quota", "enable", mnt)
	err = d.RootQuota("")
	if err != nil {
		t.Fatalf("RootQuota with quotas on = %v", err)
	}

	ids := testIDs[0]
	err = d.CreateInstanceFromImage("c1", "img", ids)
	if err != nil {
		t.Fatal(err)
	}

	sub, err := btrfsIsSubvolume(filepath.Join(poolDir, "containers/c1"))
	if err != nil || !sub {
		t.Fatalf("instance directory is not a subvolume (%v)", err)
	}

	err = d.SetRootQuota("c1", 8<<20)
	if err != nil {
		t.Fatal(err)
	}

	rootfs := mountInstance(t, d, "c1", ids)

	// Container root cannot write past the limit; the same writes fit in a raised one.
	asContainerRoot(t, ids, "out=$(dd if=/dev/zero of="+rootfs+"/big bs=1M count=16 2>&1) && exit 1; "+
		"echo \"$out\" | grep -q 'Disk quota exceeded' && rm "+rootfs+"/big && sync")
	asContainerRoot(t, ids, "dd if=/dev/zero of="+rootfs+"/small bs=1M count=4 2>/dev/null && sync")

	used, err := d.RootUsage("c1")
	if err != nil || used < 4<<20 || used > 8<<20 {
		t.Errorf("usage after 4 MiB = %d (%v)", used, err)
	}

	err = d.SetRootQuota("c1", 64<<20)
	if err != nil {
		t.Fatal(err)
	}

	asContainerRoot(t, ids, "dd if=/dev/zero of="+rootfs+"/big bs=1M count=16 2>/dev/null")

	err = d.SetRootQuota("c1", 0)
	if err != nil {
		t.Fatal(err)
	}

	asContainerRoot(t, ids, "dd if=/dev/zero of="+rootfs+"/bigger bs=1M count=80 2>/dev/null")

	// Snapshot, restore, rename and copy keep the instance a subvolume.
	err = d.UnmountInstance("c1")
	if err != nil {
		t.Fatal(err)
	}

	err = d.CreateSnapshot(context.Background(), "c1", "s0")
	if err != nil {
		t.Fatal(err)
	}

	err = d.RestoreSnapshot(context.Background(), "c1", "s0")
	if err != nil {
		t.Fatal(err)
	}

	err = d.RenameInstance("c1", "c2")
	if err != nil {
		t.Fatal(err)
	}

	err = d.CopyInstance(context.Background(), "c2", "", "c3", ids, testIDs[1])
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"c2", "c3"} {
		err = d.RootQuota(name)
		if err != nil {
			t.Errorf("RootQuota(%s) = %v", name, err)
		}
	}

	// A pre-existing instance directory that is not a subvolume is refused by name.
	legacy := filepath.Join(poolDir, "containers/old")
	err = os.Mkdir(legacy, 0o711)
	if err != nil {
		t.Fatal(err)
	}

	err = d.RootQuota("old")
	if !errors.As(err, &qe) || !strings.Contains(qe.Reason, "not a btrfs subvolume") {
		t.Errorf("RootQuota of a plain directory = %v", err)
	}

	for _, name := range []string{"c2", "c3", "old"} {
		err = d.DeleteInstance(name)
		if err != nil {
			t.Fatal(err)
		}

		notExist(t, filepath.Join(poolDir, "containers", name))
	}
}
