package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

func TestOverlayLayers(t *testing.T) {
	testutil.RequireRoot(t, "mount and chown")
	requireDriver(t, "overlay", newPoolDir(t))

	d, poolDir := loadWithImage(t, "overlay")
	ids := testIDs[1]

	err := d.CreateInstanceFromImage("c1", "img", ids)
	if err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(poolDir, "containers/c1")
	if got := dirEntries(t, dir); !slices.Equal(got, []string{"image", "lower", "rootfs", "upper", "work"}) {
		t.Errorf("instance tree = %v", got)
	}

	// Nothing copied: the upper layer starts empty, owned by the container's root.
	if got := dirEntries(t, filepath.Join(dir, "upper")); len(got) != 0 {
		t.Errorf("upper not empty after create: %v", got)
	}

	wantOwner(t, filepath.Join(dir, "upper"), ids.HostUID, ids.HostGID)

	want := []string{filepath.Join(dir, "rootfs"), filepath.Join(dir, "lower")}
	if got := d.Mountpoints("c1"); !slices.Equal(got, want) {
		t.Errorf("Mountpoints = %v, want %v", got, want)
	}

	rootfs := mountInstance(t, d, "c1", ids)

	// The lower mount is the image seen through the instance's idmap.
	wantOwner(t, filepath.Join(dir, "lower/etc/shadow"), ids.HostUID, ids.HostGID+42)

	asContainerRoot(t, ids, "echo new > "+rootfs+"/etc/new && echo changed >> "+rootfs+"/etc/passwd && chown 1000:1000 "+rootfs+"/etc/new")

	// New and modified files land in upper with the container's host ids.
	wantOwner(t, filepath.Join(dir, "upper/etc/new"), ids.HostUID+1000, ids.HostGID+1000)
	wantOwner(t, filepath.Join(dir, "upper/etc/passwd"), ids.HostUID, ids.HostGID)
	wantOwner(t, filepath.Join(dir, "upper/etc"), ids.HostUID, ids.HostGID)
	notExist(t, filepath.Join(dir, "upper/etc/shadow"))

	// A directory rename works (redirect_dir=on) instead of failing with EXDEV.
	err = os.Rename(filepath.Join(rootfs, "usr/bin"), filepath.Join(rootfs, "usr/sbin"))
	if err != nil {
		t.Errorf("renaming an image directory: %v", err)
	}

	// The image stays as unpacked.
	wantOwner(t, filepath.Join(poolDir, "images/img/rootfs/etc/passwd"), 0, 0)
	if got := readString(t, filepath.Join(poolDir, "images/img/rootfs/etc/passwd")); got != "root:x:0:0:root:/root:/bin/sh" {
		t.Errorf("image passwd = %q", got)
	}

	_, err = os.Stat(filepath.Join(poolDir, "images/img/rootfs/usr/bin"))
	if err != nil {
		t.Errorf("image usr/bin after rename in instance: %v", err)
	}
}

func TestDeleteRefusesStrayMount(t *testing.T) {
	testutil.RequireRoot(t, "mount and chown")

	for _, driver := range Drivers() {
		t.Run(driver, func(t *testing.T) {
			requireDriver(t, driver, newPoolDir(t))

			d, poolDir := loadWithImage(t, driver)

			err := d.CreateInstanceFromImage("c1", "img", testIDs[0])
			if err != nil {
				t.Fatal(err)
			}

			// Something the driver did not mount (say, a leaked bind of the image) sits inside
			// the instance tree: deleting through it would destroy what it shows.
			stray := filepath.Join(poolDir, "containers/c1/stray")
			err = os.Mkdir(stray, 0o700)
			if err != nil {
				t.Fatal(err)
			}

			err = unix.Mount(filepath.Join(poolDir, "images/img/rootfs"), stray, "", unix.MS_BIND, "")
			if err != nil {
				t.Fatal(err)
			}

			t.Cleanup(func() { _ = unix.Unmount(stray, unix.MNT_DETACH) })

			err = d.DeleteInstance("c1")
			if !errors.Is(err, ErrStillMounted) {
				t.Fatalf("DeleteInstance with a stray mount: %v", err)
			}

			if got := readString(t, filepath.Join(poolDir, "images/img/rootfs/etc/passwd")); got == "" {
				t.Error("image damaged")
			}

			err = unix.Unmount(stray, 0)
			if err != nil {
				t.Fatal(err)
			}

			err = d.DeleteInstance("c1")
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadUnknownDriver(t *testing.T) {
	_, err := Load("zfs", t.TempDir(), nil)
	if !errors.Is(err, ErrUnknownDriver) {
		t.Errorf("Load(zfs) = %v", err)
	}

	if got := Drivers(); !slices.Equal(got, []string{"dir", "overlay"}) {
		t.Errorf("Drivers() = %v", got)
	}
}

func TestDefaultDriver(t *testing.T) {
	testutil.RequireRoot(t, "mount and chown")

	poolDir := newPoolDir(t)
	got := DefaultDriver(poolDir)

	want := "dir"
	if ProbeOverlay(poolDir) == nil {
		want = "overlay"
	}

	if got != want {
		t.Errorf("DefaultDriver = %q, want %q", got, want)
	}

	// The probe cleans up after itself.
	if entries := dirEntries(t, poolDir); len(entries) != 0 {
		t.Errorf("probe left %v", entries)
	}
}
