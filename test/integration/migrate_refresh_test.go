package integration

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 15: lxc copy --refresh (container_incremental_copy) between two berthd: an
// existing stopped copy is brought up to date with only what changed.

// receivedBytes is the received_bytes of the last "refreshed instance" line in d's log.
func receivedBytes(t *testing.T, d *daemon) int64 {
	t.Helper()
	m := regexp.MustCompile(`refreshed instance.*received_bytes[=":]+(\d+)`).FindAllStringSubmatch(d.log.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no refreshed instance line in the log of %s", d.dir)
	}

	n, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	return n
}

func TestMigrateRefresh(t *testing.T) {
	parallel(t)
	f := newMigrationFixture(t)
	f.lxc.must("copy", "A:c1", "B:c1")
	f.lxc.must("copy", "A:c1", "A:lc") // for the same-server refresh below

	// On the source: a changed file, a new snapshot, snap0 deleted.
	f.a.berth("start", "c1")
	f.a.waitRunning("c1")
	out, err := f.a.inside("c1", "sh", "-c", "echo refreshed > /root/small && echo changed > /home/u/owned && sync")
	if err != nil {
		t.Fatalf("writing c1: %v %s", err, out)
	}

	want := f.insideSums(t, f.a, "c1")
	f.a.berth("stop", "c1")
	f.a.berth("snapshot", "c1", "snap2")
	f.lxc.must("delete", "A:c1/snap0")

	f.lxc.must("copy", "A:c1", "B:c1", "--refresh")
	if got := strings.Join(snapshotNames(t, f.b, "c1"), ","); got != "snap1,snap2" {
		t.Errorf("snapshots of B:c1 after the refresh: %q, want snap1,snap2 (snap0 deleted, snap2 added)", got)
	}

	// The 100 MiB file is unchanged: the refresh sends far less than the tree.
	moved := receivedBytes(t, f.b)
	t.Logf("lxc copy --refresh (one new snapshot, two small files changed, 100 MiB unchanged): %d bytes received", moved)
	if moved <= 0 || moved > 8<<20 {
		t.Errorf("the refresh received %d bytes; the unchanged 100 MiB must not travel again", moved)
	}

	f.b.berth("start", "c1")
	f.b.waitRunning("c1")
	if got := f.insideSums(t, f.b, "c1"); got != want {
		t.Errorf("B:c1 after the refresh:\n%s\nwant\n%s", got, want)
	}

	if out, err := f.b.inside("c1", "cat", "/root/small"); err != nil || strings.TrimSpace(out) != "refreshed" {
		t.Errorf("/root/small on B:c1: %v %q, want the source's new file", err, out)
	}

	// The new snapshot holds the source's state at snap2.
	code, env := f.b.raw("GET", "/1.0/instances/c1/snapshots/snap2", nil)
	if code != http.StatusOK {
		t.Errorf("B:c1/snap2: %d %s", code, env.Error)
	}

	// A running target is refused, and left as it was.
	t.Run("running target", func(t *testing.T) {
		out, err := f.lxc.run("copy", "A:c1", "B:c1", "--refresh")
		if err == nil || !strings.Contains(out, "refresh a running instance") {
			t.Fatalf("lxc copy --refresh to a running target: %v %q, want a refusal naming the running instance", err, out)
		}

		if _, inst := instanceOf(t, f.b, "c1"); inst.Status != "Running" {
			t.Errorf("B:c1 after the refusal: %q, want still Running", inst.Status)
		}

		if got := strings.Join(snapshotNames(t, f.b, "c1"), ","); got != "snap1,snap2" {
			t.Errorf("snapshots of B:c1 after the refusal: %q", got)
		}
	})

	// The same on one server: lxc copy --refresh c1 lc.
	t.Run("local", func(t *testing.T) {
		f.lxc.must("copy", "A:c1", "A:lc", "--refresh")
		if got := strings.Join(snapshotNames(t, f.a, "lc"), ","); got != "snap1,snap2" {
			t.Errorf("snapshots of A:lc after the refresh: %q, want snap1,snap2", got)
		}

		_, lc := instanceOf(t, f.a, "lc")
		_, c1 := instanceOf(t, f.a, "c1")
		if lc.Config["volatile.uuid"] == c1.Config["volatile.uuid"] {
			t.Errorf("A:lc took c1's uuid %q: the target keeps its own", c1.Config["volatile.uuid"])
		}

		f.a.berth("start", "lc")
		defer f.a.berth("stop", "lc")
		f.a.waitRunning("lc")
		small, err := f.a.inside("lc", "cat", "/root/small")
		if err != nil || strings.TrimSpace(small) != "refreshed" {
			t.Errorf("/root/small on A:lc: %v %q, want the source's new file", err, small)
		}

		big, err := f.a.inside("lc", "sha256sum", "/root/big")
		if err != nil || len(strings.Fields(big)) == 0 || !strings.Contains(want, strings.Fields(big)[0]) {
			t.Errorf("/root/big on A:lc: %v %q, want the source's", err, big)
		}
	})

	f.b.berth("stop", "c1")
	for _, p := range []string{filepath.Join(f.b.dir, "migrate", "jail-*"), filepath.Join(f.b.dir, "storage-pools", "default", "images", ".tmp-*")} {
		if m, _ := filepath.Glob(p); len(m) > 0 {
			t.Errorf("left after the refresh: %v", m)
		}
	}

	// A refresh cut half-way (the source killed while the new 100 MiB travel) leaves the
	// target as it was: its snapshots, its files, no images or jails of the refresh.
	t.Run("source killed", func(t *testing.T) {
		images, _ := filepath.Glob(filepath.Join(f.b.dir, "storage-pools", "default", "images", "*"))
		f.a.berth("start", "c1")
		f.a.waitRunning("c1")
		if out, err := f.a.inside("c1", "sh", "-c", "head -c 104857600 /dev/urandom > /root/big && echo cut > /root/small && sync"); err != nil {
			t.Fatalf("writing c1: %v %s", err, out)
		}

		f.a.berth("stop", "c1")
		done := make(chan error, 1)
		go func() {
			_, err := f.lxc.run("copy", "A:c1", "B:c1", "--refresh")
			done <- err
		}()

		deadline := time.Now().Add(60 * time.Second)
		for {
			m, _ := filepath.Glob(filepath.Join(f.b.dir, "migrate", "jail-*"))
			if len(m) > 0 || time.Now().After(deadline) {
				break
			}

			time.Sleep(20 * time.Millisecond)
		}

		time.Sleep(300 * time.Millisecond)
		f.a.kill(syscall.SIGKILL)
		if err := <-done; err == nil {
			t.Fatalf("lxc copy --refresh with the source killed succeeded")
		}

		if got := strings.Join(snapshotNames(t, f.b, "c1"), ","); got != "snap1,snap2" {
			t.Errorf("snapshots of B:c1 after the cut: %q, want snap1,snap2", got)
		}

		// Its pruning runs as the refresh returns: give it a moment.
		var after []string
		for range 50 {
			after, _ = filepath.Glob(filepath.Join(f.b.dir, "storage-pools", "default", "images", "*"))
			if len(after) <= len(images) {
				break
			}

			time.Sleep(100 * time.Millisecond)
		}

		if len(after) != len(images) {
			t.Errorf("pool images on B after the cut: %v, before %v", after, images)
		}

		f.b.berth("start", "c1")
		defer f.b.berth("stop", "c1")
		f.b.waitRunning("c1")
		if got := f.insideSums(t, f.b, "c1"); got != want {
			t.Errorf("B:c1 after the cut:\n%s\nwant as before\n%s", got, want)
		}

		if out, err := f.b.inside("c1", "cat", "/root/small"); err != nil || strings.TrimSpace(out) != "refreshed" {
			t.Errorf("/root/small on B:c1 after the cut: %v %q, want the previous refresh's", err, out)
		}
	})
}
