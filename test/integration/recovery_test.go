package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRecoveryAfterCrashes covers what a crash leaves: a half-created instance (storage and
// files but no DB row) is removed at the next start, and an instance whose monitor was
// killed shows Stopped, with its container, cgroups and mounts cleaned up.
func TestRecoveryAfterCrashes(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "m1")
	if st := d.waitRunning("m1"); st != "running" {
		t.Fatalf("m1 is %q", st)
	}

	// A create that crashed after making storage but before its row.
	d.berth("init", "debian/12", "half")
	d.kill(syscall.SIGKILL)
	for _, p := range []string{"instances/half", "storage-pools/default/containers/half"} {
		if _, err := os.Stat(filepath.Join(d.dir, p)); err != nil {
			t.Fatalf("setting up the half-made instance: %v", err)
		}
	}

	removeRow(t, d.dir, "half")

	// The monitor of m1 dies (SIGKILL: no chance to clean up).
	initPID := d.initPIDFromFile("m1")
	monPID := readPID(t, filepath.Join(d.dir, "instances/m1/run/monitor.pid"))
	_ = syscall.Kill(monPID, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)

	d.start()
	for _, p := range []string{"instances/half", "storage-pools/default/containers/half"} {
		if _, err := os.Stat(filepath.Join(d.dir, p)); err == nil {
			t.Errorf("%s survived the restart", p)
		}
	}

	out := d.berth("list", "--format", "csv")
	if !strings.Contains(out, "m1,STOPPED") || strings.Contains(out, "half") {
		t.Fatalf("after restart:\n%s", out)
	}

	if alive(initPID, 5*time.Second) {
		t.Errorf("the orphaned container's init %d still runs", initPID)
	}

	if left := mountsNaming(hostMounts(t), filepath.Join(d.dir, "storage-pools/default/containers/m1")); len(left) > 0 {
		t.Errorf("m1's mounts survived: %v", left)
	}

	// And it starts again.
	d.berth("start", "m1")
	if st := d.waitRunning("m1"); st != "running" {
		t.Fatalf("m1 after recovery is %q", st)
	}
}
