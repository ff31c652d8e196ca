package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/mountinfo"
	"github.com/berth-dev/berth/test/testutil"
)

// The test image: a debootstrapped bookworm, built once and cached, then a
// copy shifted into the container's id range, also cached. Each test boots
// an overlay of the shifted copy, so nothing it does persists.
const (
	testRootfs  = "/var/cache/berth/test-rootfs-rt"
	testHostID  = 1000000
	testIDRange = 65536
)

// needRoot skips (fails, in strict mode) without what booting a test container needs.
func needRoot(t *testing.T) {
	t.Helper()

	testutil.RequireRoot(t, "create user namespaces, cgroups and mounts")
	testutil.LookPath(t, "nsenter", "util-linux: runs commands inside")
}

// baseRootfs returns the cached debootstrap, building it if missing.
func baseRootfs(t *testing.T) string {
	t.Helper()

	_, err := os.Stat(filepath.Join(testRootfs, "lib/systemd/systemd"))
	if err == nil {
		return testRootfs
	}

	_, err = exec.LookPath("debootstrap")
	if err != nil {
		testutil.SkipOrFail(t, "no test rootfs at %s and no debootstrap to build it", testRootfs)
	}

	t.Logf("building %s with debootstrap (once)", testRootfs)

	tmp := testRootfs + ".tmp"
	_ = os.RemoveAll(tmp)

	out, err := exec.Command("debootstrap", "--variant=minbase",
		"--include=systemd,systemd-sysv,dbus,sudo,iproute2,procps", "bookworm", tmp).CombinedOutput()
	if err != nil {
		testutil.SkipOrFail(t, "debootstrap failed: %v\n%s", err, out)
	}

	err = os.Rename(tmp, testRootfs)
	if err != nil {
		t.Fatal(err)
	}

	return testRootfs
}

// shiftedRootfs returns a copy of the base rootfs owned by the container's
// id range, building it once.
func shiftedRootfs(t *testing.T) string {
	t.Helper()

	base := baseRootfs(t)
	dst := fmt.Sprintf("%s-shift-%d", base, testHostID)
	stamp := dst + ".done"

	_, err := os.Stat(stamp)
	if err == nil {
		return dst
	}

	t.Logf("shifting %s into %s (once)", base, dst)

	_ = os.RemoveAll(dst)

	out, err := exec.Command("cp", "-a", base, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("copying rootfs: %v: %s", err, out)
	}

	err = shiftTree(dst, testHostID)
	if err != nil {
		t.Fatal(err)
	}

	err = os.WriteFile(stamp, nil, 0o644)
	if err != nil {
		t.Fatal(err)
	}

	return dst
}

// shiftTree adds off to every owner in the tree. lchown clears setuid and
// setgid bits, so the mode is restored after it (not for symlinks, whose
// mode does not matter).
func shiftTree(root string, off int) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		info, err := d.Info()
		if err != nil {
			return err
		}

		st := info.Sys().(*syscall.Stat_t)

		err = os.Lchown(path, int(st.Uid)+off, int(st.Gid)+off)
		if err != nil {
			return fmt.Errorf("shifting %q: %w", path, err)
		}

		if d.Type()&fs.ModeSymlink == 0 && st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			err = unix.Chmod(path, st.Mode&0o7777)
			if err != nil {
				return fmt.Errorf("restoring mode of %q: %w", path, err)
			}
		}

		return nil
	})
}

// overlayRootfs mounts a throwaway overlay of the shifted rootfs and returns
// its mount point; the test's cleanup unmounts it if the monitor has not.
// Like the daemon's templates will, it writes /etc/hostname: systemd sets
// the hostname from it at boot, overriding the one the runtime set.
func overlayRootfs(t *testing.T, hostname string) string {
	t.Helper()

	lower := shiftedRootfs(t)
	dir := t.TempDir()

	var err error

	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{upper, work, merged} {
		err = os.Mkdir(d, 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	// The overlay's root directory takes its owner from upper.
	err = os.Chown(upper, testHostID, testHostID)
	if err != nil {
		t.Fatal(err)
	}

	err = unix.Mount("overlay", merged, "overlay", 0, fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work))
	if err != nil {
		testutil.SkipOrFail(t, "mounting overlay: %v", err)
	}

	hn := filepath.Join(merged, "etc/hostname")

	err = os.WriteFile(hn, []byte(hostname+"\n"), 0o644)
	if err == nil {
		err = os.Lchown(hn, testHostID, testHostID)
	}

	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		err := unix.Unmount(merged, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmounting %s: %v", merged, err)
		}
	})

	return merged
}

// isMounted reports whether path (or anything below it) is a mount point
// in our mount namespace.
func isMounted(t *testing.T, path string) bool {
	t.Helper()

	mounts, err := mountinfo.Self()
	if err != nil {
		t.Fatal(err)
	}

	return len(mountinfo.Under(mounts, path)) > 0
}
