package container

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitSystemd waits until systemd inside has opened its private socket.
func waitSystemd(t *testing.T, pid int) {
	t.Helper()

	sock := fmt.Sprintf("/proc/%d/root/run/systemd/private", pid)
	deadline := time.Now().Add(60 * time.Second)

	for {
		_, err := os.Stat(sock)
		if err == nil {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("systemd never opened %s: %v", sock, err)
		}

		time.Sleep(10 * time.Millisecond)
	}
}

func monitorPID(t *testing.T, m *Monitor) int {
	t.Helper()

	st, err := m.State()
	if err != nil {
		t.Fatal(err)
	}

	return st.MonitorPID
}

func TestForceStop(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("force-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	waitSystemd(t, pid)

	e, err := m.Stop(context.Background(), time.Minute, true)
	if err != nil {
		t.Fatal(err)
	}

	if !e.Killed || e.Signal != 9 || e.Reason != "killed" {
		t.Errorf("force stop exit = %+v, want killed by SIGKILL", *e)
	}

	checkGone(t, spec, pid, mon)
}

// TestStopTimeout gives systemd no time to halt: the monitor must escalate.
func TestStopTimeout(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("timeout-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	waitRunning(t, pid)

	e, err := m.Stop(context.Background(), time.Millisecond, false)
	if err != nil {
		t.Fatal(err)
	}

	if !e.Killed {
		t.Errorf("exit after 1ms timeout = %+v, want Killed", *e)
	}

	checkGone(t, spec, pid, mon)
}

// TestPoweroffInside: the container stops itself; Done must fire and the
// monitor must clean up without the daemon doing anything.
func TestPoweroffInside(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("poweroff-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	if s := waitRunning(t, pid); s != "running" {
		t.Fatalf("is-system-running = %q", s)
	}

	out, err := inside(t, pid, 30*time.Second, "systemctl", "poweroff")
	if err != nil {
		t.Logf("systemctl poweroff: %v: %s", err, out)
	}

	select {
	case <-m.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed 30s after poweroff inside")
	}

	// Term: only a stop on the monitor's own SIGTERM (the host's shutdown) says so.
	e := m.Exit()
	if e == nil || e.Killed || e.Reboot || e.Reason != "poweroff" || e.Term {
		t.Errorf("exit after poweroff = %+v", e)
	}

	checkGone(t, spec, pid, mon)
}

// TestRebootInside: reboot(2) inside kills init with SIGHUP; the monitor
// restarts the container in place.
func TestRebootInside(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("reboot-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	if s := waitRunning(t, pid); s != "running" {
		t.Fatalf("is-system-running = %q", s)
	}

	out, err := inside(t, pid, 30*time.Second, "systemctl", "reboot")
	if err != nil {
		t.Logf("systemctl reboot: %v: %s", err, out)
	}

	var st *State

	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err = m.State()
		if err == nil && st.Reboots == 1 {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("no in-place restart after reboot: state %+v, %v", st, err)
		}

		time.Sleep(50 * time.Millisecond)
	}

	if st.InitPID == pid || m.InitPID() != st.InitPID {
		t.Errorf("init pid after reboot = %d (handle says %d), was %d", st.InitPID, m.InitPID(), pid)
	}

	select {
	case <-m.Done():
		t.Fatal("Done closed by a reboot")
	default:
	}

	if s := waitRunning(t, st.InitPID); s != "running" {
		t.Fatalf("after reboot: is-system-running = %q", s)
	}

	e, err := m.Stop(context.Background(), 30*time.Second, false)
	if err != nil || e.Killed {
		t.Fatalf("Stop after reboot = %+v, %v", e, err)
	}

	checkGone(t, spec, st.InitPID, mon)
}

// TestSurvivesDaemon starts the container from a separate "daemon" process
// that then exits, and takes the container over with Attach.
func TestSurvivesDaemon(t *testing.T) {
	needRoot(t)

	name := fmt.Sprintf("survive-%d", os.Getpid())
	spec, m, _ := testContainer(t, name)

	// testContainer started it from this process; for the real check,
	// stop it and start again from a throwaway daemon.
	_, err := m.Stop(context.Background(), 30*time.Second, true)
	if err != nil {
		t.Fatal(err)
	}

	rootfs := overlayRootfs(t, name)
	spec.Rootfs = rootfs
	spec.Unmounts = []string{rootfs}

	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}

	daemon := exec.Command("/proc/self/exe", "-test.run", "^$")
	daemon.Env = append(os.Environ(), fakeDaemonEnv+"="+string(b))

	out, err := daemon.CombinedOutput()
	if err != nil {
		t.Fatalf("fake daemon: %v: %s", err, out)
	}

	// The daemon has exited; the container must still run.
	m2, err := Attach(spec.RunDir)
	if err != nil {
		l, _ := os.ReadFile(filepath.Join(spec.RunDir, logFile))
		t.Fatalf("Attach after daemon exit: %v\n%s", err, l)
	}

	pid := m2.InitPID()
	mon := monitorPID(t, m2)

	if s := waitRunning(t, pid); s != "running" {
		t.Fatalf("is-system-running = %q", s)
	}

	ppid, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", mon))
	t.Logf("monitor %d after daemon exit: %s", mon, strings.Fields(string(ppid))[3])

	e, err := m2.Stop(context.Background(), 30*time.Second, false)
	if err != nil || e.Killed {
		t.Fatalf("Stop = %+v, %v", e, err)
	}

	checkGone(t, spec, pid, mon)
}

// TestCleanupAfterMonitorDeath kills the monitor: init lives on (no
// parent-death signal), Attach says ErrNotRunning, and Cleanup removes
// the orphaned container.
func TestCleanupAfterMonitorDeath(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("orphan-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	waitSystemd(t, pid)

	p, err := os.FindProcess(mon)
	if err != nil {
		t.Fatal(err)
	}

	err = p.Kill()
	if err != nil {
		t.Fatal(err)
	}

	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the monitor died")
	}

	if !alive(pid) {
		t.Fatal("init died with its monitor")
	}

	_, err = Attach(spec.RunDir)
	if err == nil {
		t.Fatal("Attach succeeded with the monitor dead")
	}

	err = Cleanup(spec)
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	checkGone(t, spec, pid, mon)

	err = Cleanup(spec)
	if err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

// TestMonitorSIGTERM: SIGTERM to the monitor stops the container cleanly.
func TestMonitorSIGTERM(t *testing.T) {
	spec, m, _ := testContainer(t, fmt.Sprintf("term-%d", os.Getpid()))
	pid := m.InitPID()
	mon := monitorPID(t, m)

	waitRunning(t, pid)

	// Term: the daemon's next start brings it back, as after the host's shutdown.
	e := sigtermMonitor(t, m, mon)
	if e == nil || e.Killed || e.Reason != "poweroff" || !e.Term {
		t.Errorf("exit after SIGTERM = %+v", e)
	}

	checkGone(t, spec, pid, mon)
}

// TestMonitorSIGTERMShutdownTimeout: Spec.ShutdownTimeout (boot.host_shutdown_timeout)
// bounds the clean stop a SIGTERM'd monitor makes: at 0 init is killed at once.
func TestMonitorSIGTERMShutdownTimeout(t *testing.T) {
	needRoot(t)
	zero := time.Duration(0)
	start := func(ctx context.Context, exe string, spec Spec, log *slog.Logger) (*Monitor, error) {
		spec.ShutdownTimeout = &zero
		return Start(ctx, exe, spec, log)
	}

	name := fmt.Sprintf("termto-%d", os.Getpid())
	spec, m, _ := testContainerWith(t, name, overlayRootfs(t, name), start)
	pid := m.InitPID()
	mon := monitorPID(t, m)

	waitRunning(t, pid)

	e := sigtermMonitor(t, m, mon)
	if e == nil || !e.Killed || !e.Term {
		t.Errorf("exit after SIGTERM with a 0 s shutdown timeout = %+v, want killed and Term", e)
	}

	checkGone(t, spec, pid, mon)
}

// TestMonitorStopAndSIGTERM: the daemon's stop and the host's SIGTERM crossing each other.
// Whichever comes first, the exit record says the daemon asked (Requested): the admin's
// stop stays a stop. SIGTERM first also records Term; the daemon's stop first does not.
func TestMonitorStopAndSIGTERM(t *testing.T) {
	for _, termFirst := range []bool{true, false} {
		name := fmt.Sprintf("stopterm-%v-%d", termFirst, os.Getpid())
		spec, m, _ := testContainer(t, name)
		pid := m.InitPID()
		mon := monitorPID(t, m)
		waitRunning(t, pid)

		stopped := make(chan *Exit, 1)
		stop := func() {
			go func() {
				e, err := m.Stop(context.Background(), 30*time.Second, false)
				if err != nil {
					t.Errorf("%s: stop: %v", name, err)
				}

				stopped <- e
			}()
		}

		if !termFirst {
			stop()
			waitState(t, m, "stopping")
		}

		err := syscall.Kill(mon, syscall.SIGTERM)
		if err != nil {
			t.Fatal(err)
		}

		if termFirst {
			waitState(t, m, "stopping")
			stop()
		}

		var e *Exit
		select {
		case e = <-stopped:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: not stopped", name)
		}

		if e == nil || !e.Requested || e.Term != termFirst {
			t.Errorf("%s: exit = %+v, want Requested and Term %v", name, e, termFirst)
		}

		checkGone(t, spec, pid, mon)
	}
}

// waitState waits up to 10 s for the monitor to report status.
func waitState(t *testing.T, m *Monitor, status string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := m.State()
		if err == nil && st.Status == status {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("monitor state %+v, %v; want %s", st, err, status)
		}

		time.Sleep(5 * time.Millisecond)
	}
}

// sigtermMonitor sends the monitor mon of m SIGTERM, as the host's shutdown does, and
// returns how init ended.
func sigtermMonitor(t *testing.T, m *Monitor, mon int) *Exit {
	t.Helper()
	err := syscall.Kill(mon, syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}

	select {
	case <-m.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed after SIGTERM to the monitor")
	}

	return m.Exit()
}
