package container

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/sys"
	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// testContainer starts a container on a fresh overlay and registers
// cleanup that leaves nothing behind even if the test fails half-way.
func testContainer(t *testing.T, name string) (Spec, *Monitor, time.Time) {
	t.Helper()

	needRoot(t)

	return testContainerOn(t, name, overlayRootfs(t, name))
}

// testContainerOn is testContainer on a rootfs the test prepared.
func testContainerOn(t *testing.T, name, rootfs string) (Spec, *Monitor, time.Time) {
	t.Helper()

	return testContainerWith(t, name, rootfs, Start)
}

// testCgroupParent is a test container's own cgroup parent (not the host daemon's
// "berth"), removed after everything else of the test: one left behind fails the test.
func testCgroupParent(t *testing.T, dir string) string {
	t.Helper()
	parent := cgroup.ParentFor(dir)
	t.Cleanup(func() {
		l, err := cgroup.Detect()
		if err != nil {
			return
		}

		l.Parent = parent
		err = l.RemoveParent()
		if err != nil {
			t.Errorf("cgroup left behind: %v", err)
		}
	})

	return parent
}

// startFunc starts a container: Start, or a Spares' Start.
type startFunc func(ctx context.Context, exe string, spec Spec, log *slog.Logger) (*Monitor, error)

// testContainerWith is testContainerOn starting the container with start.
func testContainerWith(t *testing.T, name, rootfs string, start startFunc) (Spec, *Monitor, time.Time) {
	t.Helper()

	runDir := filepath.Join(t.TempDir(), "run")
	spec := Spec{
		Name:         name,
		UUID:         uuid.NewString(),
		Rootfs:       rootfs,
		IDMap:        idmap.Set{HostUID: testHostID, HostGID: testHostID, Size: testIDRange},
		RunDir:       runDir,
		Env:          map[string]string{"BERTH_TEST": "1"},
		Unmounts:     []string{rootfs},
		Limits:       Limits{MemoryBytes: 1 << 30, PidsMax: 2000},
		CgroupParent: testCgroupParent(t, runDir),
	}

	exe, f, err := sys.SealedSelfExe()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = f.Close() })

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t0 := time.Now()

	m, err := start(ctx, exe, spec, log)
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(spec.RunDir, logFile))
		t.Fatalf("Start: %v\nmonitor log:\n%s", err, b)
	}

	t.Logf("MEASURE Start returned after %s", time.Since(t0).Round(time.Millisecond))

	t.Cleanup(func() {
		if t.Failed() {
			b, _ := m.ConsoleLog()
			if len(b) == 0 {
				b, _ = os.ReadFile(filepath.Join(spec.RunDir, consoleFile))
			}

			t.Logf("console (tail):\n%s", tail(b, 4000))

			l, _ := os.ReadFile(filepath.Join(spec.RunDir, logFile))
			t.Logf("monitor log:\n%s", l)
		}

		a, err := Attach(spec.RunDir)
		if err == nil {
			_, _ = a.Stop(context.Background(), 0, true)
		}

		err = Cleanup(spec)
		if err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})

	return spec, m, t0
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}

	return b
}

// inside runs a command in all of the container's namespaces (and its
// root) with nsenter; tests only, until Berth has exec.
func inside(t *testing.T, pid int, timeout time.Duration, args ...string) (string, error) {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	cmdArgs := append([]string{"-t", strconv.Itoa(pid), "-a", "-r", "-w", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", cmdArgs...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}

	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out

	err := cmd.Run()

	return strings.TrimSpace(out.String()), err
}

// waitRunning waits for systemd to finish booting and returns its verdict.
func waitRunning(t *testing.T, pid int) string {
	t.Helper()

	// Until systemd listens on its private socket, systemctl answers
	// "offline" at once instead of waiting.
	sock := fmt.Sprintf("/proc/%d/root/run/systemd/private", pid)
	deadline := time.Now().Add(60 * time.Second)

	for {
		_, err := os.Stat(sock)
		if err == nil {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("systemd never opened %s: %v", sock, err)
		}

		time.Sleep(10 * time.Millisecond)
	}

	out, err := inside(t, pid, 90*time.Second, "systemctl", "is-system-running", "--wait")
	if err != nil && out != "degraded" {
		t.Logf("is-system-running: %v", err)
	}

	if out != "running" {
		failed, _ := inside(t, pid, 10*time.Second, "systemctl", "--failed", "--no-pager")
		jobs, _ := inside(t, pid, 10*time.Second, "systemctl", "list-jobs", "--no-pager")
		t.Logf("failed units:\n%s\njobs:\n%s", failed, jobs)
	}

	return out
}

func pss(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return "?"
	}

	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Pss:") {
			return strings.Join(strings.Fields(l)[1:], " ")
		}
	}

	return "?"
}

func alive(pid int) bool { return unix.Kill(pid, 0) == nil }

// TestBootSystemd boots the test image and checks the container from the
// outside and inside, through a simulated daemon restart, to a clean stop.
func TestBootSystemd(t *testing.T) {
	spec, m, t0 := testContainer(t, fmt.Sprintf("boot-%d", os.Getpid()))
	pid := m.InitPID()

	state := waitRunning(t, pid)
	bootTime := time.Since(t0)

	if state != "running" {
		t.Fatalf("systemctl is-system-running = %q, want running", state)
	}

	st, err := m.State()
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("MEASURE boot: Start -> is-system-running=running in %s", bootTime.Round(time.Millisecond))
	t.Logf("MEASURE monitor pid %d PSS %s", st.MonitorPID, pss(t, st.MonitorPID))

	// User namespace mapping.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		t.Fatal(err)
	}

	if f := strings.Fields(string(b)); len(f) != 3 || f[0] != "0" || f[1] != strconv.Itoa(testHostID) || f[2] != strconv.Itoa(testIDRange) {
		t.Errorf("uid_map = %q, want 0 %d %d", b, testHostID, testIDRange)
	}

	hostname, err := inside(t, pid, 10*time.Second, "cat", "/proc/sys/kernel/hostname")
	if err != nil || hostname != spec.Name {
		t.Errorf("hostname inside = %q (%v), want %q", hostname, err, spec.Name)
	}

	ps, err := inside(t, pid, 10*time.Second, "ps", "-e", "-o", "pid=,comm=")
	if err != nil {
		t.Fatalf("ps inside: %v: %s", err, ps)
	}

	lines := strings.Split(ps, "\n")
	if f := strings.Fields(lines[0]); len(f) != 2 || f[0] != "1" || f[1] != "systemd" {
		t.Errorf("PID 1 inside is %q, want systemd; ps:\n%s", lines[0], ps)
	}

	if len(lines) > 30 || strings.Contains(ps, ".test") || strings.Contains(ps, "berth") {
		t.Errorf("host processes visible inside? ps:\n%s", ps)
	}

	// systemd sees the environment and its delegated cgroup tree.
	virt, _ := inside(t, pid, 10*time.Second, "systemd-detect-virt")
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if !bytes.Contains(env, []byte("container=berth\x00")) || !bytes.Contains(env, []byte("BERTH_TEST=1\x00")) ||
		!bytes.Contains(env, []byte("container_uuid="+strings.ReplaceAll(spec.UUID, "-", ""))) {
		t.Errorf("init environment lacks container/uuid/extra env: %q", env)
	}

	t.Logf("systemd-detect-virt: %s", virt)

	// The cgroup namespace is rooted at the container's cgroup, so
	// systemd sees itself in /init.scope of its own tree.
	cgs, err := inside(t, pid, 10*time.Second, "cat", "/proc/1/cgroup")
	if err != nil || !strings.HasSuffix(cgs, "0::/init.scope") {
		t.Errorf("/proc/1/cgroup inside = %q (%v), want 0::/init.scope", cgs, err)
	}

	caps, _ := inside(t, pid, 10*time.Second, "grep", "CapBnd", "/proc/1/status")
	t.Logf("init %s", caps)

	stats, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}

	if stats.Processes < 3 || stats.MemoryBytes <= 0 || stats.CPUNanos <= 0 {
		t.Errorf("implausible stats %+v", stats)
	}

	t.Logf("stats %+v", stats)

	// Freeze and thaw.
	err = m.Freeze()
	if err != nil {
		t.Fatal(err)
	}

	if !m.Frozen() {
		t.Error("not frozen after Freeze")
	}

	// Frozen answers from the handle's cache: the monitor and a fresh handle must agree.
	if st, err := m.State(); err != nil || st.Status != "frozen" {
		t.Errorf("the monitor says %+v, %v after Freeze", st, err)
	}

	again, err := Attach(spec.RunDir)
	if err != nil {
		t.Fatal(err)
	}

	if !again.Frozen() {
		t.Error("a new handle does not see the container frozen")
	}

	_ = again.Close()

	err = m.Thaw()
	if err != nil {
		t.Fatal(err)
	}

	if m.Frozen() {
		t.Error("still frozen after Thaw")
	}

	if st, err := m.State(); err != nil || st.Status == "frozen" {
		t.Errorf("the monitor says %+v, %v after Thaw", st, err)
	}

	// A daemon restart: drop the handle, attach again.
	err = m.Close()
	if err != nil {
		t.Fatal(err)
	}

	m, err = Attach(spec.RunDir)
	if err != nil {
		t.Fatal(err)
	}

	if m.InitPID() != pid {
		t.Errorf("InitPID after Attach = %d, want %d", m.InitPID(), pid)
	}

	out, err := inside(t, pid, 30*time.Second, "systemctl", "is-system-running")
	if out != "running" {
		t.Errorf("after re-attach: is-system-running = %q (%v)", out, err)
	}

	console, err := m.ConsoleLog()
	if err != nil {
		t.Fatal(err)
	}

	if !bytes.Contains(console, []byte("systemd")) {
		t.Errorf("console log has no boot messages: %q", tail(console, 500))
	}

	// Clean stop.
	t1 := time.Now()

	e, err := m.Stop(context.Background(), 30*time.Second, false)
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("MEASURE stop: %s, exit %+v", time.Since(t1).Round(time.Millisecond), *e)

	if e.Killed || e.Reboot || (e.Reason != "poweroff" && !(e.Reason == "exit" && e.Code == 0)) {
		t.Errorf("unclean exit %+v", *e)
	}

	select {
	case <-m.Done():
	default:
		t.Error("Done not closed after Stop")
	}

	checkGone(t, spec, pid, st.MonitorPID)

	last, err := LastExit(spec.RunDir)
	if err != nil || last.Reason != e.Reason {
		t.Errorf("LastExit = %+v, %v; want reason %q", last, err, e.Reason)
	}

	_, err = Attach(spec.RunDir)
	if err == nil {
		t.Error("Attach succeeded after stop")
	}
}

// checkGone asserts nothing of a stopped container is left.
func checkGone(t *testing.T, spec Spec, initPID, monitorPID int) {
	t.Helper()

	if initPID > 0 && alive(initPID) {
		t.Errorf("init %d still alive", initPID)
	}

	// The monitor exits right after answering.
	deadline := time.Now().Add(5 * time.Second)
	for monitorPID > 0 && alive(monitorPID) && time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", monitorPID))
		if strings.Contains(string(b), ") Z ") {
			break // a zombie of ours, reaped by Start's goroutine shortly
		}

		time.Sleep(20 * time.Millisecond)
	}

	// A zombie may be reaped between the two reads: a stat that is gone
	// is a monitor that is gone.
	if monitorPID > 0 && alive(monitorPID) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", monitorPID))
		if err == nil && !strings.Contains(string(b), ") Z ") {
			t.Errorf("monitor %d still alive: %s", monitorPID, b)
		}
	}

	l, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}

	dirs := []string{}
	if l.Unified != "" {
		dirs = append(dirs, filepath.Join(l.Unified, spec.CgroupParent, spec.Name))
	}

	for _, mnt := range l.V1 {
		dirs = append(dirs, filepath.Join(mnt, spec.CgroupParent, spec.Name))
	}

	for _, d := range dirs {
		_, err := os.Stat(d)
		if !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind (%v)", d, err)
		}
	}

	if isMounted(t, spec.Rootfs) {
		t.Errorf("rootfs %s still mounted", spec.Rootfs)
	}

	_, err = os.Stat(filepath.Join(spec.RunDir, socketFile))
	if !os.IsNotExist(err) {
		t.Errorf("monitor socket left behind (%v)", err)
	}
}
