package integration

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// TestSnapshotsAndCopy snapshots a running container, changes it, restores it, copies it
// (running) and boots the copy with its own uid range and identity.
func TestSnapshotsAndCopy(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	ctx := context.Background()
	d.berth("launch", "debian/12", "s1")
	waitUp(t, d, "s1")

	write := func(name, content string) {
		t.Helper()
		_, err := d.inside(name, "sh", "-c", "echo "+content+" > /root/state && sync")
		must(t, err)
	}

	read := func(name string) string {
		t.Helper()
		out, err := d.inside(name, "cat", "/root/state")
		if err != nil {
			t.Fatalf("reading /root/state in %s: %v %s", name, err, out)
		}

		return strings.TrimSpace(out)
	}

	t.Run("snapshot-restore-running", func(t *testing.T) {
		write("s1", "v1")
		d.berth("snapshot", "s1")
		snaps, err := d.c.GetInstanceSnapshots(ctx, "s1")
		if err != nil || len(snaps) != 1 || snaps[0].Name != "snap0" {
			t.Fatalf("snapshots after berth snapshot: %+v %v", snaps, err)
		}

		if out := d.berth("info", "s1"); !strings.Contains(out, "snap0") {
			t.Fatalf("berth info lacks snap0:\n%s", out)
		}

		if st, _ := d.c.GetInstanceState(ctx, "s1"); st.Status != "Running" {
			t.Fatalf("after the snapshot s1 is %s, want Running (thawed)", st.Status)
		}

		write("s1", "v2")
		_, err = d.inside("s1", "rm", "-f", "/etc/motd")
		must(t, err)
		d.berth("restore", "s1", "snap0")
		waitUp(t, d, "s1")
		if got := read("s1"); got != "v1" {
			t.Fatalf("after restore /root/state = %q, want v1", got)
		}

		if _, err := d.inside("s1", "test", "-e", "/etc/motd"); err != nil {
			t.Fatal("/etc/motd deleted after the snapshot is still missing after restore")
		}
	})

	t.Run("names-rename-delete", func(t *testing.T) {
		d.berth("snapshot", "s1", "before-upgrade")
		out, err := d.berthErr("snapshot", "s1", "before-upgrade")
		if err == nil {
			t.Fatalf("duplicate snapshot name accepted: %s", out)
		}

		d.berth("snapshot", "s1", "before-upgrade", "--reuse")
		op, err := d.c.RenameInstanceSnapshot(ctx, "s1", "before-upgrade", "pre")
		must(t, err)
		must(t, op.Wait(ctx))
		d.berth("snapshot", "s1") // snap0 is taken: snap1
		d.berth("delete", "s1/pre")

		snaps, err := d.c.GetInstanceSnapshots(ctx, "s1")
		must(t, err)
		var names []string
		for _, s := range snaps {
			names = append(names, s.Name)
		}

		if strings.Join(names, ",") != "snap0,snap1" {
			t.Fatalf("snapshots = %v, want snap0,snap1", names)
		}

		if code, _ := d.raw("GET", "/1.0/instances/s1/snapshots/pre", nil); code != 404 {
			t.Fatalf("deleted snapshot: GET answers %d", code)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		// expires_at on creation, and snapshots.expiry for those taken without one.
		soon := time.Now().Add(1500 * time.Millisecond)
		op, err := d.c.CreateInstanceSnapshot(ctx, "s1", api.InstanceSnapshotsPost{Name: "brief", ExpiresAt: &soon})
		must(t, err)
		must(t, op.Wait(ctx))

		out, err := d.berthErr("config", "set", "s1", "snapshots.expiry=3x")
		if err == nil || !strings.Contains(out, "snapshots.expiry") {
			t.Errorf("a bad snapshots.expiry: %v %s", err, out)
		}

		d.berth("config", "set", "s1", "snapshots.expiry=2d 3H")
		d.berth("snapshot", "s1", "kept")
		d.berth("config", "unset", "s1", "snapshots.expiry")

		kept, err := d.c.GetInstanceSnapshot(ctx, "s1", "kept")
		must(t, err)
		want := time.Now().Add(51 * time.Hour)
		if kept.ExpiresAt.Before(want.Add(-time.Minute)) || kept.ExpiresAt.After(want.Add(time.Minute)) {
			t.Errorf("kept expires at %v, want about %v", kept.ExpiresAt, want)
		}

		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := d.c.GetInstanceSnapshot(ctx, "s1", "brief")
			if api.StatusErrorCheck(err, 404) {
				break
			}

			if time.Now().After(deadline) {
				t.Fatalf("the expired snapshot is still there (%v)", err)
			}

			time.Sleep(100 * time.Millisecond)
		}

		if time.Now().Before(soon) {
			t.Error("the snapshot went before its expiry")
		}

		d.berth("delete", "s1/kept")
	})

	t.Run("copy-running", func(t *testing.T) {
		write("s1", "copied")
		d.berth("copy", "s1", "s2")
		d.berth("start", "s2")
		waitUp(t, d, "s2")

		if got := read("s2"); got != "copied" {
			t.Fatalf("copy has /root/state = %q", got)
		}

		host, _ := d.inside("s2", "hostname")
		if strings.TrimSpace(host) != "s2" {
			t.Errorf("copy's hostname is %q: copy templates not rendered", host)
		}

		b1, b2 := uidBase(t, d, "s1"), uidBase(t, d, "s2")
		if b1 == b2 {
			t.Fatalf("copy shares the uid range %s", b1)
		}

		// Files in the copy belong to its own range, so its root can write them.
		out, err := d.inside("s2", "sh", "-c", "stat -c %u /etc/passwd && echo ok >> /etc/passwd-test && apt-get --version >/dev/null && echo fine")
		if err != nil || !strings.Contains(out, "fine") || !strings.HasPrefix(out, "0\n") {
			t.Fatalf("inside the copy: %q %v", out, err)
		}

		i1, _, _ := d.c.GetInstance(ctx, "s1")
		i2, _, _ := d.c.GetInstance(ctx, "s2")
		if i1.Config["volatile.uuid"] == i2.Config["volatile.uuid"] {
			t.Error("copy kept volatile.uuid")
		}

		for k, v := range i2.Config {
			if strings.HasSuffix(k, ".hwaddr") && v == i1.Config[k] {
				t.Errorf("copy kept %s=%s", k, v)
			}
		}

		if a1, a2 := ipv4(t, d, "s1"), ipv4(t, d, "s2"); a1 != "" && a1 == a2 {
			t.Errorf("copy got the same address %s", a1)
		}

		snaps, _ := d.c.GetInstanceSnapshots(ctx, "s2")
		if len(snaps) != 2 {
			t.Errorf("copy has %d snapshots, want 2", len(snaps))
		}

		// Restoring the copied snapshot works in the copy's range.
		d.berth("restore", "s2", "snap0")
		waitUp(t, d, "s2")
		if got := read("s2"); got != "v1" {
			t.Errorf("copy restored to snap0 has %q", got)
		}

		if got := read("s1"); got != "copied" {
			t.Errorf("restoring the copy changed the source: %q", got)
		}
	})

	t.Run("copy-snapshot", func(t *testing.T) {
		d.berth("copy", "s1/snap0", "s3", "--instance-only")
		d.berth("start", "s3")
		waitUp(t, d, "s3")
		if got := read("s3"); got != "v1" {
			t.Fatalf("copy of snap0 has %q", got)
		}

		snaps, _ := d.c.GetInstanceSnapshots(ctx, "s3")
		if len(snaps) != 0 {
			t.Errorf("copy of a snapshot has %d snapshots", len(snaps))
		}
	})

	t.Run("stock-lxc", func(t *testing.T) {
		lxc := stockLXC(t, d)
		write("s1", "lxc-before")
		lxc("snapshot", "s1", "lxcsnap")
		write("s1", "lxc-after")
		lxc("restore", "s1", "lxcsnap")
		waitUp(t, d, "s1")
		if got := read("s1"); got != "lxc-before" {
			t.Fatalf("after lxc restore: %q", got)
		}

		out := lxc("info", "s1")
		if !strings.Contains(out, "lxcsnap") {
			t.Errorf("lxc info lacks the snapshot:\n%s", out)
		}

		lxc("delete", "s1/lxcsnap")
		lxc("copy", "s1", "s4")
		out = lxc("list", "s4", "--format", "csv", "-c", "ns")
		if !strings.Contains(out, "s4,STOPPED") {
			t.Errorf("lxc copy: %q", out)
		}
	})

	// Deleting an instance removes its snapshots on disk.
	d.berth("delete", "-f", "s2")
	leftovers, _ := os.ReadDir(d.dir + "/storage-pools/default/containers-snapshots/s2")
	if len(leftovers) > 0 {
		t.Errorf("snapshots of s2 left on disk: %d", len(leftovers))
	}
}

func waitUp(t *testing.T, d *daemon, name string) {
	t.Helper()
	st := d.waitRunning(name)
	if st != "running" && st != "degraded" {
		t.Fatalf("%s: systemd is %q", name, st)
	}
}

func uidBase(t *testing.T, d *daemon, name string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", d.initPID(name)))
	must(t, err)
	f := strings.Fields(string(data))
	if len(f) < 2 {
		t.Fatalf("uid_map of %s: %q", name, data)
	}

	return f[1]
}

// ipv4 returns the first global IPv4 address of eth0 inside, or "" without one.
func ipv4(t *testing.T, d *daemon, name string) string {
	t.Helper()
	out, err := d.inside(name, "sh", "-c", "ip -4 -o addr show dev eth0 scope global 2>/dev/null | awk '{print $4}' | head -1")
	if err != nil {
		return ""
	}

	return strings.TrimSpace(out)
}

// TestPublishExportImport publishes a container (and a snapshot) as images and launches
// them, exports a running container with snapshots, deletes, imports and boots it, and
// feeds the importer hostile backups.
func TestPublishExportImport(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	ctx := context.Background()
	local := t.TempDir()
	d.berth("launch", "debian/12", "p1")
	waitUp(t, d, "p1")
	_, err := d.inside("p1", "sh", "-c", "echo pub > /root/state && install -o 1000 -g 1001 -m 0640 /dev/null /root/owned && sync")
	must(t, err)

	t.Run("publish", func(t *testing.T) {
		if out, err := d.berthErr("publish", "p1", "--alias", "mine"); err == nil {
			t.Fatalf("publishing a running instance without --force: %s", out)
		}

		out := d.berth("publish", "p1", "--alias", "mine", "--force", "description=from p1")
		if !strings.Contains(out, "fingerprint") {
			t.Fatalf("publish said %q", out)
		}

		if st, _ := d.c.GetInstanceState(ctx, "p1"); st.Status != "Running" {
			t.Errorf("p1 is %s after publish --force, want it restarted", st.Status)
		}

		d.berth("launch", "mine", "p2")
		waitUp(t, d, "p2")
		out, err := d.inside("p2", "sh", "-c", "cat /root/state; stat -c '%u %g %a' /root/owned /etc/shadow; hostname")
		if err != nil || out != "pub\n1000 1001 640\n0 42 640\np2\n" {
			t.Fatalf("inside the instance from the published image: %q %v", out, err)
		}

		d.berth("snapshot", "p1", "snap0")
		d.berth("publish", "p1/snap0", "--alias", "fromsnap")
		img, _, err := d.c.GetImageAlias(ctx, "fromsnap")
		if err != nil || img.Target == "" {
			t.Fatalf("alias of the snapshot image: %+v %v", img, err)
		}
	})

	t.Run("export-import", func(t *testing.T) {
		d.berth("snapshot", "p1", "keep")
		_, err := d.inside("p1", "sh", "-c", "echo after-keep > /root/state && sync")
		must(t, err)
		file := local + "/p1.tar.gz"
		d.berth("export", "p1", file)
		oldBase := uidBase(t, d, "p1")
		d.berth("delete", "-f", "p1")
		d.berth("import", file)

		snaps, err := d.c.GetInstanceSnapshots(ctx, "p1")
		if err != nil || len(snaps) != 2 {
			t.Fatalf("imported snapshots: %+v %v", snaps, err)
		}

		d.berth("start", "p1")
		waitUp(t, d, "p1")
		out, err := d.inside("p1", "sh", "-c", "cat /root/state; stat -c '%u %g' /root/owned")
		if err != nil || out != "after-keep\n1000 1001\n" {
			t.Fatalf("inside the imported instance: %q %v", out, err)
		}

		t.Logf("uid base before export %s, after import %s", oldBase, uidBase(t, d, "p1"))
		d.berth("restore", "p1", "keep")
		waitUp(t, d, "p1")
		if out, _ := d.inside("p1", "cat", "/root/state"); out != "pub\n" {
			t.Fatalf("imported snapshot restored: %q", out)
		}

		// Same backup under another name, with the stock client.
		lxc := stockLXC(t, d)
		lxc("import", file, "p5")
		lxc("start", "p5")
		waitUp(t, d, "p5")
		lxcFile := local + "/p5-lxc.tar.gz"
		lxc("export", "p5", lxcFile, "--instance-only")
		if fi, err := os.Stat(lxcFile); err != nil || fi.Size() < 1<<20 {
			t.Fatalf("lxc export wrote %v %v", fi, err)
		}
	})

	t.Run("hostile-backups", func(t *testing.T) {
		cases := map[string][]tarMember{
			"dotdot":     {{name: "backup/container/rootfs/../../../../tmp/berth-evil", body: "x"}},
			"hardlink":   {{name: "backup/container/rootfs/etc/x", link: "backup/snapshots/s/rootfs/etc/shadow", hard: true}},
			"hardlink-2": {{name: "backup/container/rootfs/etc/x", link: "/etc/shadow", hard: true}},
		}

		for name, members := range cases {
			path := writeBackup(t, local, name, members)
			out, err := d.berthErr("import", path, "evil-"+name)
			if err == nil {
				t.Errorf("%s: hostile backup imported: %s", name, out)
			}
		}

		// An absolute name is taken below the backup's root, as GNU tar and LXD take it: it
		// lands inside the new instance, never at that path on the host.
		path := writeBackup(t, local, "absolute", []tarMember{{name: "/backup/container/rootfs/etc/abs", body: "x"}})
		if out, err := d.berthErr("import", path, "abs"); err != nil {
			t.Errorf("backup with absolute names: %v\n%s", err, out)
		} else {
			if _, _, ferr := d.c.GetInstanceFile(ctx, "abs", "/etc/abs"); ferr != nil {
				t.Errorf("absolute member not inside the instance: %v", ferr)
			}

			d.berth("delete", "abs")
		}

		if _, err := os.Stat("/backup/container/rootfs/etc/abs"); err == nil {
			t.Fatal("an absolute backup member was written on the host")
		}

		// Device nodes are skipped and a symlink to / only leads inside the new root.
		path = writeBackup(t, local, "tricks", []tarMember{
			{name: "backup/container/rootfs/etc/", dir: true},
			{name: "backup/container/rootfs/dev-null", dev: true},
			{name: "backup/container/rootfs/escape", link: "/"},
			{name: "backup/container/rootfs/escape/tmp/berth-import-escape", body: "x"},
		})
		out, err := d.berthErr("import", path, "tricks")
		if _, serr := os.Stat("/tmp/berth-import-escape"); serr == nil {
			_ = os.Remove("/tmp/berth-import-escape")
			t.Fatal("a backup member was written through a symlink onto the host")
		}

		if err == nil {
			if _, _, ferr := d.c.GetInstanceFile(ctx, "tricks", "/dev-null"); ferr == nil {
				t.Error("device node from the backup was created")
			}
		} else {
			t.Logf("tricky backup refused: %s", out)
		}
	})
}

type tarMember struct {
	name, body, link string
	dir, hard, dev   bool
}

// writeBackup writes a gzip backup tarball: a valid index, then members.
func writeBackup(t *testing.T, dir, name string, members []tarMember) string {
	t.Helper()
	path := dir + "/" + name + ".tar.gz"
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	index := "name: " + name + "\nsnapshots: [s]\nconfig:\n  container:\n    architecture: x86_64\n    profiles: [default]\n  snapshots:\n    - name: s\n"
	must(t, tw.WriteHeader(&tar.Header{Name: "backup/index.yaml", Mode: 0o644, Size: int64(len(index)), Typeflag: tar.TypeReg}))
	_, err = tw.Write([]byte(index))
	must(t, err)
	must(t, tw.WriteHeader(&tar.Header{Name: "backup/container/rootfs/", Mode: 0o755, Typeflag: tar.TypeDir}))
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(m.body))}
		switch {
		case m.dir:
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case m.dev:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, 1, 3
		case m.hard:
			h.Typeflag, h.Linkname = tar.TypeLink, m.link
		case m.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, m.link
		}

		must(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(m.body))
			must(t, err)
		}
	}

	must(t, tw.Close())
	must(t, gz.Close())
	return path
}
