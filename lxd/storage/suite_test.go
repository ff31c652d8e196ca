package storage

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestDriverSuite runs the conformance suite against every registered driver
// (containerd SnapshotterSuite style): each check gets a fresh pool.
func TestDriverSuite(t *testing.T) {
	checks := []struct {
		name string
		fn   func(t *testing.T, driver string)
	}{
		{"ImageLifecycle", testImageLifecycle},
		{"ImageUnpackFailure", testImageUnpackFailure},
		{"InstanceOwnership", testInstanceOwnership},
		{"InstanceDirPrivate", testInstanceDirPrivate},
		{"ContainerRootWrites", testContainerRootWrites},
		{"InstancesIndependent", testInstancesIndependent},
		{"MountIdempotent", testMountIdempotent},
		{"UnmountIdempotent", testUnmountIdempotent},
		{"DeleteMounted", testDeleteMounted},
		{"CreateErrors", testCreateErrors},
		{"DeleteImageInUse", testDeleteImageInUse},
		{"Reload", testReload},
	}

	for _, driver := range Drivers() {
		t.Run(driver, func(t *testing.T) {
			testutil.RequireRoot(t, "mount and chown")
			requireDriver(t, driver, newPoolDir(t))

			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) { c.fn(t, driver) })
			}
		})
	}
}

func testImageLifecycle(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)

	if d.Name() != driver {
		t.Errorf("Name() = %q", d.Name())
	}

	if !d.HasImage("img") || d.HasImage("other") {
		t.Fatal("HasImage wrong after CreateImage")
	}

	// Image content is as unpacked: root-owned, untouched by the pool.
	wantOwner(t, filepath.Join(poolDir, "images/img/rootfs/etc/passwd"), 0, 0)

	called := false
	err := d.CreateImage("img", func(string) error { called = true; return nil })
	if err != nil || called {
		t.Errorf("CreateImage of a present image: err %v, unpack called %v", err, called)
	}

	err = d.DeleteImage("img")
	if err != nil {
		t.Fatal(err)
	}

	if d.HasImage("img") {
		t.Error("HasImage after DeleteImage")
	}

	err = d.DeleteImage("img")
	if err != nil {
		t.Errorf("second DeleteImage: %v", err)
	}

	if got := dirEntries(t, filepath.Join(poolDir, "images")); len(got) != 0 {
		t.Errorf("images/ not empty: %v", got)
	}
}

func testImageUnpackFailure(t *testing.T, driver string) {
	poolDir := newPoolDir(t)
	d, err := Load(driver, poolDir, nil)
	if err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	err = d.CreateImage("img", func(root string) error {
		err := unpackTestImage(root)
		if err != nil {
			return err
		}

		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("CreateImage err = %v, want the unpack error", err)
	}

	if d.HasImage("img") {
		t.Error("HasImage true after failed unpack")
	}

	if got := dirEntries(t, filepath.Join(poolDir, "images")); len(got) != 0 {
		t.Errorf("partial image left: %v", got)
	}

	// A crash mid-unpack leaves a temporary tree; the next Load removes it.
	err = os.MkdirAll(filepath.Join(poolDir, "images", ".tmp-img-123/rootfs/etc"), 0o755)
	if err != nil {
		t.Fatal(err)
	}

	d, err = Load(driver, poolDir, nil)
	if err != nil {
		t.Fatal(err)
	}

	if d.HasImage("img") {
		t.Error("HasImage true for a crashed unpack")
	}

	if got := dirEntries(t, filepath.Join(poolDir, "images")); len(got) != 0 {
		t.Errorf("leftover not cleaned by Load: %v", got)
	}
}

// testInstanceDirPrivate: an instance's directory is 0100 and owned by its root at
// creation, after a copy, and again at the next mount when something (an older berthd)
// left it searchable by others.
func testInstanceDirPrivate(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)
	from, to := testIDs[0], testIDs[1]

	check := func(name string, ids idmap.Set) {
		t.Helper()

		st := lstat(t, filepath.Join(poolDir, "containers", name))
		if st.Mode&0o7777 != 0o100 || st.Uid != uint32(ids.HostUID) || st.Gid != uint32(ids.HostGID) {
			t.Errorf("containers/%s: mode %o owner %d:%d, want 100 %d:%d", name, st.Mode&0o7777, st.Uid, st.Gid, ids.HostUID, ids.HostGID)
		}
	}

	err := d.CreateInstanceFromImage("c1", "img", from)
	if err != nil {
		t.Fatal(err)
	}

	check("c1", from)

	err = d.CopyInstance(context.Background(), "c1", "", "c2", from, to)
	if err != nil {
		t.Fatal(err)
	}

	check("c2", to)

	err = os.Chmod(filepath.Join(poolDir, "containers", "c1"), 0o711)
	if err != nil {
		t.Fatal(err)
	}

	mountInstance(t, d, "c1", from)
	check("c1", from)
}

func testInstanceOwnership(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)
	ids := testIDs[0]

	err := d.CreateInstanceFromImage("c1", "img", ids)
	if err != nil {
		t.Fatal(err)
	}

	rootfs := mountInstance(t, d, "c1", ids)
	if rootfs != filepath.Join(poolDir, "containers/c1/rootfs") {
		t.Errorf("rootfs = %q", rootfs)
	}

	for _, mp := range d.Mountpoints("c1") {
		if !isMounted(t, mp) {
			t.Errorf("Mountpoints lists %s, which is not mounted", mp)
		}
	}

	wantOwner(t, rootfs, ids.HostUID, ids.HostGID)
	wantOwner(t, filepath.Join(rootfs, "etc/passwd"), ids.HostUID, ids.HostGID)
	wantOwner(t, filepath.Join(rootfs, "etc/shadow"), ids.HostUID, ids.HostGID+42)
	wantOwner(t, filepath.Join(rootfs, "home/user"), ids.HostUID+1000, ids.HostGID+1000)
	wantOwner(t, filepath.Join(rootfs, "bin"), ids.HostUID, ids.HostGID)

	if st := lstat(t, filepath.Join(rootfs, "usr/bin/su")); st.Mode&0o7777 != 0o4755 {
		t.Errorf("su mode %o, want 4755", st.Mode&0o7777)
	}

	if st := lstat(t, filepath.Join(rootfs, "tmp")); st.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp mode %o, want 1777", st.Mode&0o7777)
	}

	if st := lstat(t, rootfs); st.Mode&0o777 != 0o755 {
		t.Errorf("root mode %o, want 755", st.Mode&0o777)
	}

	if target, _ := os.Readlink(filepath.Join(rootfs, "bin")); target != "usr/bin" {
		t.Errorf("bin -> %q", target)
	}

	a, b := lstat(t, filepath.Join(rootfs, "usr/bin/ping")), lstat(t, filepath.Join(rootfs, "usr/bin/ping4"))
	if a.Ino != b.Ino {
		t.Error("hard link not kept")
	}

	if got := readString(t, filepath.Join(rootfs, "etc/passwd")); got != "root:x:0:0:root:/root:/bin/sh" {
		t.Errorf("passwd = %q", got)
	}

	// The rootfs is nodev: opening a device node shipped in the image must fail.
	f, err := os.Open(filepath.Join(rootfs, "null"))
	if err == nil {
		_ = f.Close()
		t.Error("device node in the image opens through the instance rootfs (want nodev)")
	}
}

func testContainerRootWrites(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)
	ids := testIDs[0]

	err := d.CreateInstanceFromImage("c1", "img", ids)
	if err != nil {
		t.Fatal(err)
	}

	rootfs := mountInstance(t, d, "c1", ids)
	asContainerRoot(t, ids, "echo hello > "+rootfs+"/etc/new && echo 'root:x:0:0::/root:/bin/bash' > "+rootfs+"/etc/passwd && mkdir "+rootfs+"/srv")

	wantOwner(t, filepath.Join(rootfs, "etc/new"), ids.HostUID, ids.HostGID)
	wantOwner(t, filepath.Join(rootfs, "srv"), ids.HostUID, ids.HostGID)
	wantOwner(t, filepath.Join(rootfs, "etc/passwd"), ids.HostUID, ids.HostGID)

	if got := readString(t, filepath.Join(rootfs, "etc/passwd")); got != "root:x:0:0::/root:/bin/bash" {
		t.Errorf("passwd through the mount = %q", got)
	}

	// The image is never written.
	if got := readString(t, filepath.Join(poolDir, "images/img/rootfs/etc/passwd")); got != "root:x:0:0:root:/root:/bin/sh" {
		t.Errorf("image passwd changed to %q", got)
	}

	notExist(t, filepath.Join(poolDir, "images/img/rootfs/etc/new"))
}

func testInstancesIndependent(t *testing.T, driver string) {
	d, _ := loadWithImage(t, driver)

	for i, name := range []string{"a", "b"} {
		err := d.CreateInstanceFromImage(name, "img", testIDs[i])
		if err != nil {
			t.Fatal(err)
		}
	}

	ra := mountInstance(t, d, "a", testIDs[0])
	rb := mountInstance(t, d, "b", testIDs[1])

	// Same image file, each instance's own range.
	wantOwner(t, filepath.Join(ra, "etc/passwd"), testIDs[0].HostUID, testIDs[0].HostGID)
	wantOwner(t, filepath.Join(rb, "etc/passwd"), testIDs[1].HostUID, testIDs[1].HostGID)

	asContainerRoot(t, testIDs[0], "echo a > "+ra+"/etc/only-a && rm "+ra+"/etc/shadow")

	notExist(t, filepath.Join(rb, "etc/only-a"))
	if got := readString(t, filepath.Join(rb, "etc/shadow")); got != "root:*::::::" {
		t.Errorf("b's shadow = %q after a removed its own", got)
	}

	err := d.DeleteInstance("a")
	if err != nil {
		t.Fatal(err)
	}

	wantOwner(t, filepath.Join(rb, "etc/passwd"), testIDs[1].HostUID, testIDs[1].HostGID)
}

func testMountIdempotent(t *testing.T, driver string) {
	d, _ := loadWithImage(t, driver)

	err := d.CreateInstanceFromImage("c1", "img", testIDs[0])
	if err != nil {
		t.Fatal(err)
	}

	r1 := mountInstance(t, d, "c1", testIDs[0])
	r2 := mountInstance(t, d, "c1", testIDs[0])
	if r1 != r2 {
		t.Errorf("second mount returned %q, first %q", r2, r1)
	}

	dir := filepath.Dir(r1)
	mounts, err := mountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}

	want := slices.Clone(d.Mountpoints("c1"))
	slices.Sort(want)
	slices.Sort(mounts)
	if !slices.Equal(mounts, want) {
		t.Errorf("mounts after two MountInstance = %v, want %v", mounts, want)
	}
}

func testUnmountIdempotent(t *testing.T, driver string) {
	d, _ := loadWithImage(t, driver)

	err := d.CreateInstanceFromImage("c1", "img", testIDs[0])
	if err != nil {
		t.Fatal(err)
	}

	// Unmount before any mount is fine.
	err = d.UnmountInstance("c1")
	if err != nil {
		t.Fatal(err)
	}

	rootfs := mountInstance(t, d, "c1", testIDs[0])
	for range 2 {
		err = d.UnmountInstance("c1")
		if err != nil {
			t.Fatal(err)
		}
	}

	mounts, _ := mountsUnder(filepath.Dir(rootfs))
	if len(mounts) != 0 {
		t.Errorf("still mounted: %v", mounts)
	}

	// And it mounts again.
	rootfs = mountInstance(t, d, "c1", testIDs[0])
	wantOwner(t, filepath.Join(rootfs, "etc/passwd"), testIDs[0].HostUID, testIDs[0].HostGID)
}

func testDeleteMounted(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)

	err := d.CreateInstanceFromImage("c1", "img", testIDs[0])
	if err != nil {
		t.Fatal(err)
	}

	rootfs := mountInstance(t, d, "c1", testIDs[0])

	// Hold the overlay busy so the plain unmount fails and the MNT_DETACH path runs.
	busy, err := os.Open(filepath.Join(rootfs, "etc"))
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = busy.Close() }()

	err = d.DeleteInstance("c1")
	if err != nil {
		t.Fatal(err)
	}

	mounts, err := mountsUnder(poolDir)
	if err != nil {
		t.Fatal(err)
	}

	if len(mounts) != 0 {
		t.Errorf("mounts left after delete: %v", mounts)
	}

	notExist(t, filepath.Join(poolDir, "containers/c1"))

	if got := dirEntries(t, filepath.Join(poolDir, "containers")); len(got) != 0 {
		t.Errorf("containers/ not empty: %v", got)
	}

	// Deleting through the mounts would have emptied the shared image.
	if got := readString(t, filepath.Join(poolDir, "images/img/rootfs/etc/passwd")); got == "" {
		t.Error("image damaged by instance deletion")
	}

	err = d.DeleteInstance("c1")
	if err != nil {
		t.Errorf("second DeleteInstance: %v", err)
	}
}

func testCreateErrors(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)

	err := d.CreateInstanceFromImage("c1", "missing", testIDs[0])
	if api.StatusCodeOf(err) != http.StatusNotFound || !errors.Is(err, ErrImageNotFound) {
		t.Errorf("unknown image: %v", err)
	}

	err = d.CreateInstanceFromImage("c1", "img", testIDs[0])
	if err != nil {
		t.Fatal(err)
	}

	err = d.CreateInstanceFromImage("c1", "img", testIDs[0])
	if api.StatusCodeOf(err) != http.StatusConflict || !errors.Is(err, ErrInstanceExists) {
		t.Errorf("duplicate instance: %v", err)
	}

	for _, bad := range []string{"", ".", "..", "../x", ".hidden", "a/b", "a,b"} {
		err = d.CreateInstanceFromImage(bad, "img", testIDs[0])
		if api.StatusCodeOf(err) != http.StatusBadRequest {
			t.Errorf("instance name %q: %v", bad, err)
		}

		_, err = d.MountInstance(bad, testIDs[0])
		if err == nil {
			t.Errorf("MountInstance(%q) succeeded", bad)
		}
	}

	err = d.CreateImage("../escape", unpackTestImage)
	if api.StatusCodeOf(err) != http.StatusBadRequest {
		t.Errorf("image name ../escape: %v", err)
	}

	_, err = d.MountInstance("nope", testIDs[0])
	if api.StatusCodeOf(err) != http.StatusNotFound {
		t.Errorf("mounting a missing instance: %v", err)
	}

	if got := readString(t, filepath.Join(poolDir, "containers/c1/image")); got != "img" {
		t.Errorf("recorded image = %q", got)
	}
}

// testDeleteImageInUse: deleting an image instances sit on succeeds, as in LXD. The
// overlay keeps the shared lower layer (released, no longer adopted by any image row)
// until its last user goes; re-creating the image adopts the layer again.
func testDeleteImageInUse(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)

	for _, name := range []string{"c1", "c2"} {
		err := d.CreateInstanceFromImage(name, "img", testIDs[0])
		if err != nil {
			t.Fatal(err)
		}
	}

	err := d.DeleteImage("img")
	if err != nil {
		t.Fatalf("deleting an image instances were made from: %v", err)
	}

	if driver == "overlay" {
		if !d.HasImage("img") {
			t.Fatal("the lower layer of running instances was removed")
		}

		if got := readString(t, filepath.Join(mountInstance(t, d, "c1", testIDs[0]), "etc/passwd")); got == "" {
			t.Error("instance on a released layer does not mount")
		}

		err = d.UnmountInstance("c1")
		if err != nil {
			t.Fatal(err)
		}

		if got, _ := d.ListImages(); len(got) != 0 {
			t.Errorf("ListImages lists a released layer: %v", got)
		}
	}

	// One user left: the layer stays.
	err = d.DeleteInstance("c1")
	if err != nil {
		t.Fatal(err)
	}

	d.PruneBackupImages()
	if driver == "overlay" && !d.HasImage("img") {
		t.Fatal("the layer went with its first user while another sits on it")
	}

	// Re-importing the image adopts the layer: the last user going no longer removes it.
	err = d.CreateImage("img", func(root string) error {
		if driver == "overlay" {
			t.Error("unpacked a present image")
		}

		return unpackTestImage(root)
	})
	if err != nil {
		t.Fatal(err)
	}

	err = d.DeleteInstance("c2")
	if err != nil {
		t.Fatal(err)
	}

	d.PruneBackupImages()
	if !d.HasImage("img") {
		t.Fatal("an adopted image was pruned")
	}

	if got, _ := d.ListImages(); !slices.Equal(got, []string{"img"}) {
		t.Errorf("ListImages = %v, want [img]", got)
	}

	// Released with no user left: the last prune removes it, and nothing stays behind.
	err = d.CreateInstanceFromImage("c3", "img", testIDs[0])
	if err == nil {
		err = d.DeleteImage("img")
	}

	if err == nil {
		err = d.DeleteInstance("c3")
	}

	if err != nil {
		t.Fatal(err)
	}

	d.PruneBackupImages()
	if d.HasImage("img") {
		t.Error("released image still present after its last user went")
	}

	if got := dirEntries(t, filepath.Join(poolDir, "images")); len(got) != 0 {
		t.Errorf("images/ not empty: %v", got)
	}
}

func testReload(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)

	err := d.CreateInstanceFromImage("c1", "img", testIDs[0])
	if err != nil {
		t.Fatal(err)
	}

	rootfs := mountInstance(t, d, "c1", testIDs[0])
	asContainerRoot(t, testIDs[0], "echo kept > "+rootfs+"/etc/kept")

	err = d.UnmountInstance("c1")
	if err != nil {
		t.Fatal(err)
	}

	// A crashed create leaves a temporary instance tree; Load removes it.
	err = os.MkdirAll(filepath.Join(poolDir, "containers/.tmp-c2-1/rootfs"), 0o755)
	if err != nil {
		t.Fatal(err)
	}

	d2, err := Load(driver, poolDir, nil)
	if err != nil {
		t.Fatal(err)
	}

	if got := dirEntries(t, filepath.Join(poolDir, "containers")); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("containers/ after Load = %v", got)
	}

	rootfs = mountInstance(t, d2, "c1", testIDs[0])
	if got := readString(t, filepath.Join(rootfs, "etc/kept")); got != "kept" {
		t.Errorf("etc/kept = %q after reload", got)
	}

	var st syscall.Stat_t
	err = syscall.Stat(filepath.Join(rootfs, "etc/kept"), &st)
	if err != nil || int64(st.Uid) != testIDs[0].HostUID {
		t.Errorf("etc/kept owner %d, %v", st.Uid, err)
	}
}

// ensure the idmap import is used even if checks change.
var _ = idmap.DefaultSize
