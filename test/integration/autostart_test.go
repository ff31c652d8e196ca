package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestoreAfterHostRestart: what ran comes back at the daemon's next start, as with
// LXD (boot.autostart unset: the last state is restored), and what was stopped on
// purpose does not. The host's end is played with the daemon down: its shutdown sends
// every process SIGTERM (the monitors then stop their containers cleanly), a power loss
// kills them (SIGKILL to the monitor, the orphaned init killed by the daemon's cleanup).
// One monitor gets its SIGTERM while the daemon still runs, as when the host's shutdown
// reaches the monitors first.
func TestRestoreAfterHostRestart(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	names := []string{"down", "early", "lost", "never", "off"}
	for _, n := range names {
		d.berth("init", "debian/12", n)
	}

	d.berth("config", "set", "never", "boot.autostart=false")
	d.berth("config", "set", "lost", "boot.autostart.priority=10")
	for _, n := range names {
		d.berth("start", n)
		if st := d.waitRunning(n); st != "running" {
			t.Fatalf("%s is %q", n, st)
		}
	}

	old := map[string]int{}
	for _, n := range names {
		old[n] = d.initPID(n)
	}

	// early's monitor gets SIGTERM while the daemon runs: stopped, still meant to run.
	monitorSignal(t, d, "early", syscall.SIGTERM)
	waitUntil(t, time.Minute, func() bool { return cfgStatus(t, d, "early") == "Stopped" })
	if inst, _, err := d.c.GetInstance(t.Context(), "early"); err != nil || inst.Config["volatile.last_state.power"] != "RUNNING" {
		t.Errorf("early's last state after its monitor's SIGTERM: %v %v, want RUNNING", inst.Config["volatile.last_state.power"], err)
	}

	d.kill(syscall.SIGKILL)

	// The host shuts down: down's and never's monitors get SIGTERM.
	for _, n := range []string{"down", "never"} {
		monitorSignal(t, d, n, syscall.SIGTERM)
	}

	// A power loss takes lost: its monitor dies at once.
	monitorSignal(t, d, "lost", syscall.SIGKILL)

	// off was powered off from inside while the daemon was away: it stays off.
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(old["off"]), "-a", "--", "systemctl", "poweroff")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("systemctl poweroff in off: %v: %s", err, out)
	}

	// Their monitors have recorded how they ended (the record comes before the monitor's
	// socket goes) before the daemon starts.
	for _, n := range []string{"down", "never", "off"} {
		exit := filepath.Join(d.dir, "instances", n, "run", "exit.json")
		waitUntil(t, time.Minute, func() bool { _, err := os.Stat(exit); return err == nil })
		if alive(old[n], 30*time.Second) {
			t.Fatalf("%s's init %d still runs after its stop", n, old[n])
		}
	}

	d.start()
	for _, n := range []string{"down", "early", "lost"} {
		waitUntil(t, time.Minute, func() bool { return cfgStatus(t, d, n) == "Running" })
		if pid := d.initPID(n); pid == old[n] {
			t.Errorf("%s runs its old init %d: not restarted", n, pid)
		}

		if st := d.waitRunning(n); st != "running" {
			t.Errorf("%s restored is %q", n, st)
		}
	}

	if alive(old["lost"], 5*time.Second) {
		t.Errorf("lost's orphaned init %d survived the daemon's start", old["lost"])
	}

	if !d.waitLog(`msg="autostart done" started=3 failed=0`) {
		t.Errorf("autostart did not start 3:\n%s", tail(d.log.String(), 40))
	}

	for _, n := range []string{"never", "off"} {
		if st := cfgStatus(t, d, n); st != "Stopped" {
			t.Errorf("%s is %s after the restart, want Stopped", n, st)
		}
	}

	for _, want := range []string{
		`msg="instance went down without being stopped: its last state stays running" instance=down`,
		`msg="instance went down without being stopped: its last state stays running" instance=lost`,
		`msg="instance stopped while the daemon was away" instance=off reason=poweroff`,
	} {
		if !d.waitLog(want) {
			t.Errorf("daemon log lacks %s:\n%s", want, tail(d.log.String(), 40))
		}
	}

	log := d.log.String()
	if i, j := strings.Index(log, `msg="autostarting instance" instance=lost`), strings.Index(log, `msg="autostarting instance" instance=down`); i < 0 || j < i {
		t.Errorf("lost (priority 10) did not start before down:\n%s", tail(log, 40))
	}
}

// monitorSignal sends sig to the monitor of name (the daemon may be down).
func monitorSignal(t *testing.T, d *daemon, name string, sig syscall.Signal) {
	t.Helper()
	mon := readPID(t, filepath.Join(d.dir, "instances", name, "run", "monitor.pid"))
	err := syscall.Kill(mon, sig)
	if err != nil {
		t.Fatalf("signalling the monitor %d of %s: %v", mon, name, err)
	}
}

// waitUntil polls cond until it holds, failing t after limit: a clean stop may take its
// 30 s budget on a loaded host.
func waitUntil(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not so after %s", limit)
		}

		time.Sleep(50 * time.Millisecond)
	}
}
