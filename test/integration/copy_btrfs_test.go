package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCopyBtrfsSnapshotLXC: within one btrfs pool, lxc copy makes the copy and its
// snapshot as btrfs snapshots with the owners moved to the copy's id range (the daemon
// says how it copied), not as byte copies: the copy is a subvolume, starts, reads the
// source's data, sees its files owned as the source saw them (root's, a user's, a
// setuid binary keeping its bit), and the source is unchanged.
func TestCopyBtrfsSnapshotLXC(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	lxc, must := poolLXC(t, d)
	onPoolsCleanup(t, d, lxc, "p1")

	must("storage", "create", "p1", "btrfs", "size=3GiB")
	p1 := filepath.Join(d.dir, "storage-pools", "p1")
	must("launch", "debian/12", "c1", "-s", "p1")
	d.waitRunning("c1")
	inside := func(name, script string) string {
		t.Helper()
		return strings.TrimSpace(must("exec", name, "--", "sh", "-c", script))
	}

	inside("c1", "useradd -u 1500 -M bob && echo data > /root/marker && mkdir /srv/bob && echo b > /srv/bob/f && chown -R bob:bob /srv/bob && dd if=/dev/urandom of=/root/big bs=1M count=64 2>/dev/null && sync")
	want := inside("c1", "sha256sum /root/big | cut -c1-16")
	must("snapshot", "c1", "s1")

	start := time.Now()
	must("copy", "c1", "c2")
	took := time.Since(start)
	// Both lines are written before the copy answers, and reach d.log through a pipe.
	d.waitLog(`msg="copied instance storage"`)
	d.waitLog(`msg="copied snapshot storage"`)
	if n := strings.Count(d.log.String(), "how=\"btrfs snapshot\""); n < 2 {
		t.Errorf("the copy and its snapshot were not made as btrfs snapshots (%d logged):\n%s", n, tail(d.log.String(), 40))
	}

	if !isSubvolume(filepath.Join(p1, "containers", "c2")) || !isSubvolume(filepath.Join(p1, "containers-snapshots", "c2", "s1")) {
		t.Error("the copy or its snapshot is not a subvolume")
	}

	must("start", "c2")
	d.waitRunning("c2")
	got := inside("c2", "cat /root/marker; stat -c %u:%g /root/marker /srv/bob/f; stat -c %a /usr/bin/passwd; sha256sum /root/big | cut -c1-16")
	if wantOut := "data\n0:0\n1500:1500\n4755\n" + want; got != wantOut {
		t.Errorf("the copy reads:\n%s\nwant:\n%s", got, wantOut)
	}

	if got := inside("c1", "stat -c %u:%g /srv/bob/f; cat /root/marker"); got != "1500:1500\ndata" {
		t.Errorf("the source after the copy reads %q", got)
	}

	t.Logf("copy of a container with 64 MiB of data and a snapshot within one btrfs pool: %v", took)
}
