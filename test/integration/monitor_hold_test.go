package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// heldRSSMax bounds a held monitor's private memory (lxd/container/hold.go):
// a Go monitor has ~2.3 MB, the C holder ~110 KB.
const heldRSSMax = 400 << 10

// monitorPID reads the instance's monitor.pid.
func (d *daemon) monitorPID(name string) int {
	d.t.Helper()

	b, err := os.ReadFile(filepath.Join(d.dir, "instances", name, "run", "monitor.pid"))
	if err != nil {
		d.t.Fatal(err)
	}

	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		d.t.Fatal(err)
	}

	return pid
}

// statusNumber is the number in a /proc/<pid>/status field ("8", "2104 kB").
func statusNumber(t *testing.T, pid int, key string) int {
	t.Helper()

	n, err := strconv.Atoi(strings.Fields(procStatus(t, pid)[key] + " x")[0])
	if err != nil {
		t.Fatalf("%s of %d: %v", key, pid, err)
	}

	return n
}

// waitHeld waits until the monitor runs the C holder (one thread: a Go
// runtime has several before main) and checks its private memory.
func waitHeld(t *testing.T, pid int) {
	t.Helper()

	deadline := time.Now().Add(15 * time.Second)
	for statusNumber(t, pid, "Threads") > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("monitor %d still runs Go 15 s after its last request", pid)
		}

		time.Sleep(50 * time.Millisecond)
	}

	rss := statusNumber(t, pid, "RssAnon") << 10
	t.Logf("MEASURE held monitor %d: RssAnon %d kB", pid, rss>>10)

	if rss > heldRSSMax {
		t.Errorf("held monitor %d has RssAnon %d kB, want <= %d kB", pid, rss>>10, heldRSSMax>>10)
	}
}

// TestMonitorHold: an idle container's monitor is the C holder through the
// daemon's death and restart, pause and resume, a reboot inside, the console
// and the stop; the monitor keeps its pid throughout.
func TestMonitorHold(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "held")

	if s := d.waitRunning("held"); s != "running" && s != "degraded" {
		t.Fatalf("is-system-running = %q", s)
	}

	pid := d.initPID("held")
	mon := d.monitorPID("held")
	waitHeld(t, mon)

	// The daemon dies: the container and its held monitor do not notice.
	d.kill(syscall.SIGKILL)

	if syscall.Kill(pid, 0) != nil || syscall.Kill(mon, 0) != nil {
		t.Fatal("init or its monitor died with the daemon")
	}

	waitHeld(t, mon)

	// A new daemon takes it over from the holder (its watch and state).
	d.start()

	out := d.berth("list", "--format", "csv")
	if !strings.Contains(out, "held,RUNNING") {
		t.Fatalf("after the restart, list says:\n%s", out)
	}

	if got := d.initPID("held"); got != pid {
		t.Fatalf("init pid %d after the restart, was %d", got, pid)
	}

	waitHeld(t, mon)

	c := d.api()

	code, log := c.rawGet("/1.0/instances/held/console")
	if code != 200 || !strings.Contains(string(log), "systemd") {
		t.Errorf("console log from the holder: %d %q", code, tail(string(log), 300))
	}

	// Pause and resume go through Go and back.
	d.berth("pause", "held")

	waitHeld(t, mon)

	if out := d.berth("list", "--format", "csv"); !strings.Contains(out, "held,FROZEN") {
		t.Errorf("after pause, list says:\n%s", out)
	}

	d.berth("start", "held")
	waitHeld(t, mon)

	// A reboot inside: init exits under the holder, the monitor restarts
	// it in place and holds again.
	_, _ = d.inside("held", "systemctl", "reboot")

	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := d.c.GetInstanceState(t.Context(), "held")
		if err == nil && st.Pid != 0 && int(st.Pid) != pid && st.Status == "Running" {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("no restart in place after reboot: %+v, %v", st, err)
		}

		time.Sleep(200 * time.Millisecond)
	}

	if s := d.waitRunning("held"); s != "running" && s != "degraded" {
		t.Fatalf("after reboot: is-system-running = %q", s)
	}

	if got := d.monitorPID("held"); got != mon {
		t.Fatalf("monitor pid %d after the reboot, was %d", got, mon)
	}

	waitHeld(t, mon)

	d.berth("stop", "held")

	if out := d.berth("list", "--format", "csv"); !strings.Contains(out, "held,STOPPED") {
		t.Fatalf("after stop, list says:\n%s", out)
	}

	if alive(mon, 5*time.Second) {
		t.Errorf("monitor %d still alive after stop", mon)
	}
}
