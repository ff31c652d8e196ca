package container

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/sys"
)

// readySpare waits for s to hold a live spare and returns its pid.
func readySpare(t *testing.T, s *Spares) int {
	t.Helper()

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		p := s.ready
		s.mu.Unlock()

		if p != nil && p.alive() {
			return p.cmd.Process.Pid
		}

		time.Sleep(10 * time.Millisecond)
	}

	t.Fatal("no spare monitor after 20s")
	return 0
}

func sparesFor(t *testing.T) *Spares {
	t.Helper()

	exe, f, err := sys.SealedSelfExe()
	if err != nil {
		t.Fatal(err)
	}

	s := NewSpares(exe, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() {
		s.Close()
		_ = f.Close()
	})

	return s
}

func cmdline(t *testing.T, pid int) []string {
	t.Helper()

	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}

	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// TestSpareMonitor: the spare becomes the container's monitor (its output goes to the
// container's monitor log, Cleanup knows it as that container's), a new spare takes its
// place, a spare that died is replaced by a new monitor at the next start, and Close ends
// the spare.
func TestSpareMonitor(t *testing.T) {
	needRoot(t)

	s := sparesFor(t)
	spare := readySpare(t, s)

	name := fmt.Sprintf("spare-%d", os.Getpid())
	// As the instance runner does: the next spare once the start is through.
	start := func(ctx context.Context, _ string, spec Spec, log *slog.Logger) (*Monitor, error) {
		defer s.Refill()
		return s.Start(ctx, spec, log)
	}

	spec, m, _ := testContainerWith(t, name, overlayRootfs(t, name), start)
	if mon := monitorPID(t, m); mon != spare {
		t.Fatalf("monitor is pid %d, want the spare %d", mon, spare)
	}

	logged, _ := os.ReadFile(filepath.Join(spec.RunDir, logFile))
	if !strings.Contains(string(logged), `"container started"`) {
		t.Errorf("the spare's output is not in its container's monitor log:\n%s", logged)
	}

	args := cmdline(t, spare)
	if !isMonitorOf(spare, args, spec.RunDir) || isMonitorOf(spare, args, spec.RunDir+"x") {
		t.Errorf("isMonitorOf(%v) does not tell the spare's container", args)
	}

	next := readySpare(t, s)
	if next == spare {
		t.Fatal("no new spare after the start")
	}

	// A spare that died waiting: the next start spawns a monitor of its own.
	_ = syscall.Kill(next, syscall.SIGKILL)
	for alive(next) && procState(next) != "Z" {
		time.Sleep(5 * time.Millisecond)
	}

	name2 := name + "b"
	_, m2, _ := testContainerWith(t, name2, overlayRootfs(t, name2), start)
	if mon := monitorPID(t, m2); mon == next {
		t.Fatalf("the dead spare %d served the start", next)
	}

	last := readySpare(t, s)
	s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for alive(last) && procState(last) != "Z" {
		if time.Now().After(deadline) {
			t.Fatalf("spare %d still runs after Close", last)
		}

		time.Sleep(10 * time.Millisecond)
	}
}

// TestSpareExitsWithDaemon: a spare whose daemon is gone (its startup socket closed, no
// RunDir given) exits by itself, without a signal.
func TestSpareExitsWithDaemon(t *testing.T) {
	exe, f, err := sys.SealedSelfExe()
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = f.Close() }()

	p, err := spawnMonitor(exe, "", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}

	_ = p.sock.Close()
	select {
	case <-p.waited:
	case <-time.After(20 * time.Second):
		p.kill()
		t.Fatal("the spare did not exit 20s after its socket closed")
	}

	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() || ws.ExitStatus() != 1 {
		t.Errorf("spare ended with %v, want exit status 1", p.cmd.ProcessState)
	}
}

// procState is the state letter of pid ("" if gone).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}

	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}

	return string(b[i+2])
}
