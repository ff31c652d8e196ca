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
// killed has its orphaned container cleaned up, then runs again (its last state).
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
	if strings.Contains(out, "half") {
		t.Fatalf("after restart:\n%s", out)
	}

	if alive(initPID, 5*time.Second) {
		t.Errorf("the orphaned container's init %d still runs", initPID)
	}

	// m1 went down without being stopped: it was cleaned up, then started again, as LXD
	// restores an instance's last state (autostart_test.go has the cases).
	cfgWait(t, func() bool { return cfgStatus(t, d, "m1") == "Running" })
	if pid := d.initPID("m1"); pid == initPID {
		t.Fatalf("m1 runs its orphaned init %d", pid)
	}

	if st := d.waitRunning("m1"); st != "running" {
		t.Fatalf("m1 after recovery is %q", st)
	}

	// Stopped on purpose, it stays stopped across the next restart.
	d.berth("stop", "m1")
	d.kill(syscall.SIGTERM)
	d.start()
	if !d.waitLog(`msg="autostart done" started=0`) {
		t.Errorf("no autostart pass:\n%s", tail(d.log.String(), 20))
	}

	if out := d.berth("list", "--format", "csv"); !strings.Contains(out, "m1,STOPPED") {
		t.Fatalf("m1 after a stop and a restart:\n%s", out)
	}

	if left := mountsNaming(hostMounts(t), filepath.Join(d.dir, "storage-pools/default/containers/m1")); len(left) > 0 {
		t.Errorf("m1's mounts survived its stop: %v", left)
	}
}
