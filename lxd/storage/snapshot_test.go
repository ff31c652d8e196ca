package storage

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestSnapshotSuite checks snapshots, restore and copies on every driver.
func TestSnapshotSuite(t *testing.T) {
	for _, driver := range Drivers() {
		t.Run(driver, func(t *testing.T) {
			testutil.RequireRoot(t, "mount and chown")
			requireDriver(t, driver, newPoolDir(t))
			t.Run("SnapshotRestore", func(t *testing.T) { testSnapshotRestore(t, driver) })
			t.Run("Copy", func(t *testing.T) { testCopy(t, driver) })
		})
	}
}

func testSnapshotRestore(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)
	ids := testIDs[0]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(d.CreateInstanceFromImage("c1", "img", ids))
	rootfs := mountInstance(t, d, "c1", ids)
	asContainerRoot(t, ids, "echo before > "+rootfs+"/etc/state && rm "+rootfs+"/etc/shadow")

	// Snapshotting a mounted (frozen, in real life) instance works.
	must(d.CreateSnapshot(context.Background(), "c1", "snap0"))
	err := d.CreateSnapshot(context.Background(), "c1", "snap0")
	if !api.StatusErrorCheck(err, http.StatusConflict) {
		t.Fatalf("second snap0: %v, want 409", err)
	}

	asContainerRoot(t, ids, "echo after > "+rootfs+"/etc/state && echo back > "+rootfs+"/etc/shadow && mkdir "+rootfs+"/new")

	err = d.RestoreSnapshot(context.Background(), "c1", "snap0")
	if !api.StatusErrorCheck(err, http.StatusConflict) {
		t.Fatalf("restore while mounted: %v, want 409", err)
	}

	must(d.UnmountInstance("c1"))
	must(d.RestoreSnapshot(context.Background(), "c1", "snap0"))
	rootfs = mountInstance(t, d, "c1", ids)
	if got := readString(t, filepath.Join(rootfs, "etc/state")); got != "before" {
		t.Errorf("after restore etc/state = %q", got)
	}

	notExist(t, filepath.Join(rootfs, "etc/shadow")) // the deletion (a whiteout on overlay) came back
	notExist(t, filepath.Join(rootfs, "new"))
	wantOwner(t, filepath.Join(rootfs, "etc/state"), ids.HostUID, ids.HostGID)

	must(d.RenameSnapshot("c1", "snap0", "first"))
	notExist(t, filepath.Join(poolDir, snapshotsDir, "c1/snap0"))
	must(d.DeleteSnapshot("c1", "first"))
	notExist(t, filepath.Join(poolDir, snapshotsDir, "c1/first"))

	must(d.CreateSnapshot(context.Background(), "c1", "snap1"))
	must(d.UnmountInstance("c1"))
	must(d.DeleteInstance("c1"))
	notExist(t, filepath.Join(poolDir, snapshotsDir, "c1"))
}

func testCopy(t *testing.T, driver string) {
	d, poolDir := loadWithImage(t, driver)
	from, to := testIDs[0], testIDs[1]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(d.CreateInstanceFromImage("c1", "img", from))
	rootfs := mountInstance(t, d, "c1", from)
	asContainerRoot(t, from, "echo one > "+rootfs+"/etc/state && mkdir -p "+rootfs+"/home/u && chown 1000:1000 "+rootfs+"/home/u")
	must(d.CreateSnapshot(context.Background(), "c1", "snap0"))
	asContainerRoot(t, from, "echo two > "+rootfs+"/etc/state")

	must(d.CopyInstance(context.Background(), "c1", "", "c2", from, to))
	must(d.CopySnapshot(context.Background(), "c1", "snap0", "c2", "snap0", from, to))
	must(d.CopyInstance(context.Background(), "c1", "snap0", "c3", from, to))

	r2 := mountInstance(t, d, "c2", to)
	if got := readString(t, filepath.Join(r2, "etc/state")); got != "two" {
		t.Errorf("copy has etc/state = %q", got)
	}

	wantOwner(t, filepath.Join(r2, "etc/state"), to.HostUID, to.HostGID)
	wantOwner(t, filepath.Join(r2, "home/u"), to.HostUID+1000, to.HostGID+1000)
	wantOwner(t, filepath.Join(r2, "etc/passwd"), to.HostUID, to.HostGID)
	asContainerRoot(t, to, "echo mine > "+r2+"/etc/state")
	if got := readString(t, filepath.Join(rootfs, "etc/state")); got != "two" {
		t.Errorf("writing the copy changed the source: %q", got)
	}

	r3 := mountInstance(t, d, "c3", to)
	if got := readString(t, filepath.Join(r3, "etc/state")); got != "one" {
		t.Errorf("copy of snap0 has etc/state = %q", got)
	}

	_, err := os.Stat(filepath.Join(poolDir, snapshotsDir, "c2/snap0", imageFile))
	must(err)

	err = d.CopyInstance(context.Background(), "c1", "", "c2", from, to)
	if !api.StatusErrorCheck(err, http.StatusConflict) {
		t.Fatalf("copy onto an existing instance: %v, want 409", err)
	}
}

func TestMountSnapshot(t *testing.T) {
	for _, driver := range Drivers() {
		t.Run(driver, func(t *testing.T) {
			testutil.RequireRoot(t, "mount and chown")
			requireDriver(t, driver, newPoolDir(t))
			d, poolDir := loadWithImage(t, driver)
			ids := testIDs[0]
			if err := d.CreateInstanceFromImage("c1", "img", ids); err != nil {
				t.Fatal(err)
			}

			rootfs := mountInstance(t, d, "c1", ids)
			asContainerRoot(t, ids, "echo snap > "+rootfs+"/etc/state && rm "+rootfs+"/etc/shadow")
			if err := d.CreateSnapshot(context.Background(), "c1", "s"); err != nil {
				t.Fatal(err)
			}

			view, release, err := d.MountSnapshot("c1", "s", ids)
			if err != nil {
				t.Fatal(err)
			}

			if got := readString(t, filepath.Join(view, "etc/state")); got != "snap" {
				t.Errorf("snapshot view etc/state = %q", got)
			}

			notExist(t, filepath.Join(view, "etc/shadow"))
			wantOwner(t, filepath.Join(view, "etc/passwd"), ids.HostUID, ids.HostGID)
			if err := os.WriteFile(filepath.Join(view, "etc/x"), nil, 0o644); err == nil {
				t.Error("snapshot view is writable")
			}

			release()
			mounts, _ := mountsUnder(filepath.Join(poolDir, snapshotsDir))
			if len(mounts) > 0 {
				t.Errorf("left mounted: %v", mounts)
			}
		})
	}
}
