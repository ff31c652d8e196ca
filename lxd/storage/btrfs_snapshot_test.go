package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBtrfsSnapshots: on btrfs with quotas, a snapshot is a btrfs snapshot of the
// instance's subvolume (not a copy), readable through MountSnapshot and copyable; a
// restore swaps in a new subvolume that holds the snapshot's data, keeping the root disk
// limit; nothing temporary is left behind.
func TestBtrfsSnapshots(t *testing.T) {
	for _, driver := range Drivers() {
		t.Run(driver, func(t *testing.T) { testBtrfsSnapshots(t, driver) })
	}
}

func testBtrfsSnapshots(t *testing.T, driver string) {
	mnt := newBtrfs(t)
	run(t, "btrfs", "quota", "enable", mnt)
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

	ids := testIDs[0]
	err = d.CreateInstanceFromImage("c1", "img", ids)
	if err != nil {
		t.Fatal(err)
	}

	write := func(content string) {
		t.Helper()
		rootfs, err := d.MountInstance("c1", ids)
		if err != nil {
			t.Fatal(err)
		}

		asContainerRoot(t, ids, "echo "+content+" > "+rootfs+"/marker")
		err = d.UnmountInstance("c1")
		if err != nil {
			t.Fatal(err)
		}
	}

	write("one")
	ctx := context.Background()
	err = d.CreateSnapshot(ctx, "c1", "s1")
	if err != nil {
		t.Fatal(err)
	}

	snapDir := filepath.Join(poolDir, snapshotsDir, "c1", "s1")
	sub, err := btrfsIsSubvolume(snapDir)
	if err != nil || !sub {
		t.Fatalf("snapshot %s is not a btrfs subvolume (%v): it was copied", snapDir, err)
	}

	write("two")
	view, release, err := d.MountSnapshot("c1", "s1", ids)
	if err != nil {
		t.Fatal(err)
	}

	if got := readString(t, filepath.Join(view, "marker")); got != "one" {
		t.Errorf("snapshot view reads %q, want one", got)
	}

	release()

	err = d.SetRootQuota("c1", 300<<20)
	if err != nil {
		t.Fatal(err)
	}

	before, err := btrfsSubvolumeID(filepath.Join(poolDir, containersDir, "c1"))
	if err != nil {
		t.Fatal(err)
	}

	err = d.RestoreSnapshot(ctx, "c1", "s1")
	if err != nil {
		t.Fatal(err)
	}

	// A new subvolume (a snapshot of the snapshot) was swapped in: nothing was copied.
	after, err := btrfsSubvolumeID(filepath.Join(poolDir, containersDir, "c1"))
	if err != nil || after == before {
		t.Errorf("restore kept subvolume %d (now %d, %v): it copied instead of swapping", before, after, err)
	}

	rootfs := mountInstance(t, d, "c1", ids)
	if got := readString(t, filepath.Join(rootfs, "marker")); got != "one" {
		t.Errorf("after restore the instance reads %q, want one", got)
	}

	err = d.UnmountInstance("c1")
	if err != nil {
		t.Fatal(err)
	}

	err = d.RootQuota("c1")
	if err != nil {
		t.Errorf("after restore: RootQuota = %v (no longer a subvolume?)", err)
	}

	limit, err := btrfsLimit(filepath.Join(poolDir, containersDir, "c1"))
	if err != nil || limit != 300<<20 {
		t.Errorf("after restore the limit is %d (%v), want %d", limit, err, 300<<20)
	}

	// A copy of the snapshot reads what it held.
	err = d.CopyInstance(ctx, "c1", "s1", "c2", ids, testIDs[1])
	if err != nil {
		t.Fatal(err)
	}

	rootfs = mountInstance(t, d, "c2", testIDs[1])
	if got := readString(t, filepath.Join(rootfs, "marker")); got != "one" {
		t.Errorf("copy of the snapshot reads %q, want one", got)
	}

	for _, dir := range []string{containersDir, filepath.Join(snapshotsDir, "c1")} {
		for _, name := range dirEntries(t, filepath.Join(poolDir, dir)) {
			if strings.HasPrefix(name, tmpPrefix) {
				t.Errorf("left behind: %s/%s", dir, name)
			}
		}
	}

	err = d.DeleteSnapshot("c1", "s1")
	if err != nil {
		t.Fatal(err)
	}

	notExist(t, snapDir)
	for _, name := range []string{"c1", "c2"} {
		err = d.DeleteInstance(name)
		if err != nil {
			t.Fatal(err)
		}
	}

	_, err = os.Lstat(filepath.Join(poolDir, containersDir, "c1"))
	if !os.IsNotExist(err) {
		t.Errorf("c1 left behind (%v)", err)
	}
}
