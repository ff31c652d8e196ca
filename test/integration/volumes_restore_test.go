package integration

import (
	"strings"
	"testing"
)

// TestVolumeRestoreStoppedLXC: with the stock lxc, a custom volume attached to a
// container is restored from its snapshot once the container is stopped, without a
// detach (LXD refuses only while an instance using it runs); the container reads the
// snapshot's content at its next start. While it runs the restore is refused naming it,
// and the volume keeps its content.
func TestVolumeRestoreStoppedLXC(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	cleanupPoolMounts(t, d)
	lxc, must := poolLXC(t, d)
	t.Cleanup(func() {
		_, _ = lxc("delete", "-f", "c1")
		_, _ = lxc("storage", "volume", "delete", "default", "v1")
	})

	must("storage", "volume", "create", "default", "v1")
	must("launch", "debian/12", "c1")
	d.waitRunning("c1")
	must("storage", "volume", "attach", "default", "v1", "c1", "/data")
	mustInside(t, d, "c1", "echo one > /data/marker; sync")
	must("storage", "volume", "snapshot", "default", "v1", "s1")
	mustInside(t, d, "c1", "echo two > /data/marker; sync")

	out, err := lxc("storage", "volume", "restore", "default", "v1", "s1")
	if err == nil || !strings.Contains(out, "/1.0/instances/c1") || !strings.Contains(out, "running") {
		t.Errorf("restoring under a running container: err %v\n%s", err, out)
	}

	if got := strings.TrimSpace(mustInside(t, d, "c1", "cat /data/marker")); got != "two" {
		t.Errorf("a refused restore changed the volume: %q", got)
	}

	must("stop", "-f", "c1")
	must("storage", "volume", "restore", "default", "v1", "s1")
	if out := must("config", "device", "show", "c1"); !strings.Contains(out, "source: v1") {
		t.Errorf("the restore detached v1 from c1:\n%s", out)
	}

	must("start", "c1")
	d.waitRunning("c1")
	if got := strings.TrimSpace(mustInside(t, d, "c1", "cat /data/marker")); got != "one" {
		t.Errorf("after the restore c1 reads %q, want one", got)
	}
}
