package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/test/testutil"
)

// requireDriver skips drivers this host cannot run, with the probe's reason.
func requireDriver(t testing.TB, name, poolDir string) {
	t.Helper()

	if name != "overlay" {
		return
	}

	err := ProbeOverlay(poolDir)
	if err == nil {
		return
	}

	testutil.SkipOrFail(t, "overlay unsupported here: %v", err)
}

// newPoolDir makes a pool directory that container roots can traverse (0711 all the way,
// as a real $BERTH_DIR must be) and checks that the test leaves no mounts behind.
func newPoolDir(t testing.TB) string {
	t.Helper()

	dir, err := os.MkdirTemp("", "berth-storage-")
	if err != nil {
		t.Fatal(err)
	}

	err = os.Chmod(dir, 0o711)
	if err != nil {
		t.Fatal(err)
	}

	pool := filepath.Join(dir, "pool")
	t.Cleanup(func() {
		mounts, _ := mountsUnder(dir)
		for i := len(mounts) - 1; i >= 0; i-- {
			t.Errorf("test left a mount: %s", mounts[i])
			_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
		}

		_ = os.RemoveAll(dir)
	})

	return pool
}

var testIDs = []idmap.Set{
	{HostUID: 1000000, HostGID: 1000000, Size: 65536},
	{HostUID: 1065536, HostGID: 1131072, Size: 65536},
}

// unpackTestImage writes a small root filesystem with the shapes that matter: modes,
// non-root owners, setuid, symlinks, hard links, a file capability, a fifo and a device.
func unpackTestImage(root string) error {
	steps := []func() error{
		func() error { return os.MkdirAll(filepath.Join(root, "etc"), 0o755) },
		func() error { return os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755) },
		func() error { return os.MkdirAll(filepath.Join(root, "home/user"), 0o750) },
		func() error { return os.Chown(filepath.Join(root, "home/user"), 1000, 1000) },
		func() error { return os.MkdirAll(filepath.Join(root, "tmp"), 0o755) },
		func() error { return syscall.Chmod(filepath.Join(root, "tmp"), 0o1777) },
		func() error {
			return os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
		},
		func() error { return os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("root:*::::::\n"), 0o640) },
		func() error { return os.Chown(filepath.Join(root, "etc/shadow"), 0, 42) },
		func() error { return os.WriteFile(filepath.Join(root, "usr/bin/su"), []byte("su"), 0o755) },
		func() error { return syscall.Chmod(filepath.Join(root, "usr/bin/su"), 0o4755) },
		func() error { return os.WriteFile(filepath.Join(root, "usr/bin/ping"), []byte("ping"), 0o755) },
		func() error {
			return os.Link(filepath.Join(root, "usr/bin/ping"), filepath.Join(root, "usr/bin/ping4"))
		},
		func() error {
			// cap_net_raw+ep, v2 as tarballs carry it.
			return unix.Setxattr(filepath.Join(root, "usr/bin/ping"), "security.capability",
				[]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0)
		},
		func() error { return os.Symlink("usr/bin", filepath.Join(root, "bin")) },
		func() error { return unix.Mkfifo(filepath.Join(root, "fifo"), 0o600) },
		func() error {
			return unix.Mknod(filepath.Join(root, "null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		},
	}

	for i, step := range steps {
		err := step()
		if err != nil {
			return fmt.Errorf("test image step %d: %w", i, err)
		}
	}

	return nil
}

// loadWithImage loads driver name on a fresh pool holding the test image "img".
func loadWithImage(t *testing.T, name string) (Driver, string) {
	t.Helper()

	poolDir := newPoolDir(t)
	d, err := Load(name, poolDir, nil)
	if err != nil {
		t.Fatal(err)
	}

	err = d.CreateImage("img", unpackTestImage)
	if err != nil {
		t.Fatal(err)
	}

	return d, poolDir
}

// mountInstance mounts and registers the unmount with t.Cleanup.
func mountInstance(t *testing.T, d Driver, name string, ids idmap.Set) string {
	t.Helper()

	rootfs, err := d.MountInstance(name, ids)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.UnmountInstance(name) })

	return rootfs
}

// asContainerRoot runs a shell command as root of a user namespace with ids, i.e. as the
// container's root would.
func asContainerRoot(t *testing.T, ids idmap.Set, script string) {
	t.Helper()

	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                ids.UIDMappings(),
		GidMappings:                ids.GIDMappings(),
		GidMappingsEnableSetgroups: true,
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0},
	}

	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out

	err := cmd.Run()
	if err != nil {
		t.Fatalf("as container root: %s: %v: %s", script, err, out.String())
	}
}

func lstat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()

	var st syscall.Stat_t
	err := syscall.Lstat(path, &st)
	if err != nil {
		t.Fatal(err)
	}

	return &st
}

func wantOwner(t *testing.T, path string, uid, gid int64) {
	t.Helper()

	st := lstat(t, path)
	if int64(st.Uid) != uid || int64(st.Gid) != gid {
		t.Errorf("%s owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
	}
}

func isMounted(t *testing.T, path string) bool {
	t.Helper()

	mounts, err := mountsUnder(path)
	if err != nil {
		t.Fatal(err)
	}

	for _, m := range mounts {
		if m == path {
			return true
		}
	}

	return false
}

func notExist(t *testing.T, path string) {
	t.Helper()

	_, err := os.Lstat(path)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists (err %v)", path, err)
	}
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}

	return names
}

func readString(t *testing.T, path string) string {
	t.Helper()

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	return strings.TrimSpace(string(data))
}
