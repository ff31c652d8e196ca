package integration

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

const rootSizeRefused = "cannot enforce a root disk size"

func rootDisk(size string) map[string]string {
	d := map[string]string{"type": "disk", "path": "/", "pool": "default"}
	if size != "" {
		d["size"] = size
	}

	return d
}

// TestRootDiskSizeEnforced runs a berthd whose state directory is a loop-file btrfs with
// quotas on: a container with root size=64MiB cannot write 100 MiB (EDQUOT) but can write
// 32 MiB, its usage shows in the state, and raising the size while it runs lets the
// 100 MiB through. Without enforcement the first write succeeds and the test fails.
func TestRootDiskSizeEnforced(t *testing.T) {
	parallel(t)
	requireSetup(t)
	mnt := loopBtrfs(t)
	d := startDaemonIn(t, mnt)
	ctx := context.Background()

	op, err := d.c.CreateInstance(ctx, api.InstancesPost{
		Name:        "q1",
		Source:      api.InstanceSource{Type: "image", Alias: "debian/12"},
		InstancePut: api.InstancePut{Devices: map[string]map[string]string{"root": rootDisk("64MiB")}},
	})
	if err == nil {
		err = op.Wait(ctx)
	}

	if err != nil {
		t.Fatalf("creating q1 with root size=64MiB on btrfs: %v", err)
	}

	d.berth("start", "q1")
	d.waitRunning("q1")

	write := func(mib string) (string, error) {
		return d.inside("q1", "sh", "-c", "rm -f /root/fill; sync; dd if=/dev/zero of=/root/fill bs=1M count="+mib+" 2>&1 && sync")
	}

	out, err := write("100")
	if err == nil {
		t.Fatalf("100 MiB written under a 64 MiB root disk:\n%s", out)
	}

	if !strings.Contains(out, "Disk quota exceeded") && !strings.Contains(out, "No space left") {
		t.Fatalf("100 MiB write failed for another reason than the quota:\n%s", out)
	}

	out, err = write("32")
	if err != nil {
		t.Fatalf("32 MiB under a 64 MiB root disk: %v\n%s", err, out)
	}

	// btrfs updates a quota group's count when it commits the transaction, which a busy
	// host may do a little after the sync returned: the usage gets a few seconds.
	var used int64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		st, err := d.c.GetInstanceState(ctx, "q1")
		if err != nil {
			t.Fatal(err)
		}

		used = st.Disk["root"].Usage
		if used >= 32<<20 && used <= 64<<20 || time.Now().After(deadline) {
			break
		}
	}

	if used < 32<<20 || used > 64<<20 {
		t.Errorf("root disk usage after 32 MiB = %d, want between 32 and 64 MiB", used)
	}

	// Raised live: the same write now fits.
	inst, etag, err := d.c.GetInstance(ctx, "q1")
	if err != nil {
		t.Fatal(err)
	}

	inst.Devices["root"] = rootDisk("256MiB")
	op, err = d.c.UpdateInstance(ctx, "q1", inst.InstancePut, etag)
	if err == nil {
		err = op.Wait(ctx)
	}

	if err != nil {
		t.Fatalf("raising the root size of running q1: %v", err)
	}

	out, err = write("100")
	if err != nil {
		t.Fatalf("100 MiB after raising the root size to 256 MiB: %v\n%s", err, out)
	}
}

// TestRootDiskSizeRefused: on a pool that cannot enforce a size (the temporary directory's
// ext4), a root disk size is refused with a 400 naming the pool and why, at create, at an
// instance update, at a profile update and at copy, and nothing changes. An instance that
// has a size from before still starts, with a warning in the log.
func TestRootDiskSizeRefused(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	ctx := context.Background()

	wantRefused := func(what string, code int, env api.Response) {
		t.Helper()
		if code != http.StatusBadRequest || !strings.Contains(env.Error, rootSizeRefused) || !strings.Contains(env.Error, "pool default (") {
			t.Fatalf("%s: got %d %q, want 400 saying the pool %s", what, code, env.Error, rootSizeRefused)
		}
	}

	// Create.
	code, env, _ := d.rawH("POST", "/1.0/instances", api.InstancesPost{
		Name:        "big",
		Source:      api.InstanceSource{Type: "image", Alias: "debian/12"},
		InstancePut: api.InstancePut{Devices: map[string]map[string]string{"root": rootDisk("2GiB")}},
	}, nil)
	wantRefused("create", code, env)
	t.Logf("create refused: %s", env.Error)
	code, _, _ = d.rawH("GET", "/1.0/instances/big", nil, nil)
	if code != http.StatusNotFound {
		t.Errorf("instance big after a refused create: GET says %d", code)
	}

	for _, p := range []string{"instances/big", "storage-pools/default/containers/big"} {
		_, err := os.Lstat(filepath.Join(d.dir, p))
		if !os.IsNotExist(err) {
			t.Errorf("%s exists after a refused create (%v)", p, err)
		}
	}

	// Instance update.
	d.berth("init", "debian/12", "c1")
	_, env, etag := d.rawH("GET", "/1.0/instances/c1", nil, nil)
	code, env, _ = d.rawH("PATCH", "/1.0/instances/c1", map[string]any{"devices": map[string]any{"root": rootDisk("1GiB")}}, map[string]string{"If-Match": etag})
	wantRefused("instance update", code, env)
	inst, _, err := d.c.GetInstance(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}

	if _, ok := inst.Devices["root"]; ok {
		t.Errorf("c1 got a local root disk from a refused update: %v", inst.Devices)
	}

	// Profile update.
	prof, _, err := d.c.GetProfile(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}

	code, env, _ = d.rawH("PATCH", "/1.0/profiles/default", map[string]any{"devices": map[string]any{"root": rootDisk("1GiB")}}, nil)
	wantRefused("profile update", code, env)
	after, _, err := d.c.GetProfile(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}

	if after.Devices["root"]["size"] != prof.Devices["root"]["size"] {
		t.Errorf("default profile root changed to %v by a refused update", after.Devices["root"])
	}

	// Copy.
	code, env, _ = d.rawH("POST", "/1.0/instances", api.InstancesPost{
		Name:        "c2",
		Source:      api.InstanceSource{Type: "copy", Source: "c1"},
		InstancePut: api.InstancePut{Devices: map[string]map[string]string{"root": rootDisk("1GiB")}},
	}, nil)
	wantRefused("copy", code, env)
	code, _, _ = d.rawH("GET", "/1.0/instances/c2", nil, nil)
	if code != http.StatusNotFound {
		t.Errorf("instance c2 after a refused copy: GET says %d", code)
	}

	// A size written before this check existed: the instance still starts.
	setDevicesBehindDaemon(t, d.dir, "c1", map[string]map[string]string{"root": rootDisk("1GiB")})
	d.berth("start", "c1")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.log.String(), "root disk size is not enforced") {
		if time.Now().After(deadline) {
			t.Fatal("no warning in the log for the unenforced size of c1")
		}

		time.Sleep(50 * time.Millisecond)
	}
}

// setDevicesBehindDaemon writes an instance's local devices straight into the database,
// as an older berthd would have accepted them.
func setDevicesBehindDaemon(t *testing.T, dir, name string, devices map[string]map[string]string) {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}

	defer store.Close()
	err = store.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		inst, err := tx.GetInstance(ctx, name)
		if err != nil {
			return err
		}

		inst.Devices = devices
		return tx.UpdateInstance(ctx, name, *inst)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// loopBtrfs mounts a fresh sparse loop-file btrfs with quotas enabled and returns its
// mount point (short, for the unix sockets below it). The mount and the file go on
// cleanup, after the daemon using it (cleanups run last-registered first).
func loopBtrfs(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"mkfs.btrfs", "btrfs"} {
		testutil.LookPath(t, tool, "Debian package btrfs-progs, in DEB_PKGS")
	}

	dir, err := os.MkdirTemp("/tmp", "bq-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	img, mnt := filepath.Join(dir, "img"), filepath.Join(dir, "m")
	sh := func(name string, args ...string) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}

	sh("truncate", "-s", "3G", img)
	sh("mkfs.btrfs", "-q", "-f", img)
	err = os.Mkdir(mnt, 0o711)
	if err != nil {
		t.Fatal(err)
	}

	// A loop device from mount -o loop is released with the unmount (autoclear).
	sh("mount", "-o", "loop", img, mnt)
	t.Cleanup(func() {
		err := syscall.Unmount(mnt, 0)
		if err != nil {
			t.Errorf("unmounting the test btrfs: %v", err)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})

	sh("btrfs", "quota", "enable", mnt)
	err = os.Chmod(dir, 0o711)
	if err != nil {
		t.Fatal(err)
	}

	return mnt
}

// startDaemonIn is startDaemon with a given (empty) state directory.
func startDaemonIn(t *testing.T, dir string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir}
	d.start()
	t.Cleanup(func() { d.destroy() })

	out := d.berth("image", "import", imagePath, "--alias", "debian/12")
	if !strings.Contains(out, "fingerprint") {
		t.Fatalf("image import said %q", out)
	}

	return d
}
