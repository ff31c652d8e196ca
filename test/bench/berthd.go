package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/network"
)

// berthd is the daemon under measurement, in its own state directory.
type berthd struct {
	dir string
	bin string
	env []string // beyond the bench's own environment
	cmd *exec.Cmd
	// netns, when set, is the network namespace (a /run/netns path) berthd runs in: a
	// cluster member's (cluster.go).
	netns string
}

// startBerthd starts a berthd in a new state directory, with env added to the bench's
// environment.
func startBerthd(binDir string, env ...string) (*berthd, error) {
	dir, err := os.MkdirTemp("/tmp", "bb-")
	if err != nil {
		return nil, err
	}

	b := &berthd{dir: dir, bin: binDir, env: env}
	err = b.start()
	if err != nil {
		b.close()
		return nil, err
	}

	return b, nil
}

// start starts the daemon on b.dir (again, after a restart), its output appended to
// berthd.log there, and returns once its socket exists.
func (b *berthd) start() error {
	log, err := os.OpenFile(b.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}

	defer func() { _ = log.Close() }() // the child has its own copy

	_ = os.Remove(filepath.Join(b.dir, "unix.socket")) // left by a killed daemon
	cmd := exec.Command(absBin(b.bin, "berthd"), "--dir", b.dir)
	if b.netns != "" {
		// nsenter execs berthd: the pid is berthd's own, signals reach it.
		cmd = exec.Command("nsenter", "--net="+b.netns, "--", absBin(b.bin, "berthd"), "--dir", b.dir)
	}

	cmd.Env = append(os.Environ(), b.env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	if err != nil {
		return err
	}

	b.cmd = cmd
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(filepath.Join(b.dir, "unix.socket")); err == nil {
			return nil
		}

		time.Sleep(25 * time.Millisecond)
	}

	return fmt.Errorf("berthd did not start, see %s", b.logPath())
}

func (b *berthd) logPath() string { return filepath.Join(b.dir, "berthd.log") }

// close deletes every instance, stops the daemon and removes its directory and
// cgroup parent.
func (b *berthd) close() {
	out, _ := b.berth("list", "--format", "csv", "-c", "n")
	for _, n := range strings.Fields(out) {
		_, _ = b.berth("delete", "-f", n)
	}

	if b.cmd != nil {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		_ = b.cmd.Wait()
	}

	l, err := cgroup.Detect()
	if err == nil {
		l.Parent = cgroup.ParentFor(b.dir)
		err = l.RemoveParent()
	}

	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}

	_ = os.RemoveAll(b.dir)
	network.RemoveOrphans(slog.New(slog.DiscardHandler))
}

func (b *berthd) berth(args ...string) (string, error) {
	cmd := exec.Command(absBin(b.bin, "berth"), args...)
	cmd.Env = append(os.Environ(), "BERTH_DIR="+b.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("berth %s: %w: %s", strings.Join(args, " "), err, trim(string(out)))
	}

	return string(out), nil
}

// initPID reads the host pid of an instance's init from `berth list`.
func (b *berthd) initPID(name string) (int, error) {
	out, err := b.berth("list", name, "--format", "csv", "-c", "p")
	if err != nil {
		return 0, err
	}

	return strconv.Atoi(trim(out))
}

// waitRunning returns once systemd in the namespaces of pid reports "running".
func waitRunning(pid int) error { return waitRunningEvery(pid, 50*time.Millisecond) }

// waitRunningEvery is waitRunning looking every interval until systemd's bus is up.
func waitRunningEvery(pid int, interval time.Duration) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		cmd := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-a", "-r", "-w", "--", "systemctl", "is-system-running", "--wait")
		out, _ := cmd.CombinedOutput()
		s := trim(string(out))
		switch {
		case s == "running":
			return nil
		case strings.Contains(s, "Failed to connect to bus"), s == "offline":
			// systemd has not yet created /run/systemd/system or its bus. Its private
			// bus comes once its units are loaded, long before the boot ends, and from
			// then on --wait blocks until the end: looking often gains nothing and
			// every look (two execs) takes CPU from the boot being measured.
			time.Sleep(interval)
		default:
			return fmt.Errorf("systemd says %q", s)
		}
	}

	return fmt.Errorf("timed out waiting for systemd")
}

// waitInstance waits until systemd in a running instance reports "running" and returns
// the host pid of its init.
func (b *berthd) waitInstance(name string) (int, error) {
	return b.waitInstanceEvery(name, 50*time.Millisecond)
}

// waitInstanceEvery is waitInstance with waitRunningEvery's interval.
func (b *berthd) waitInstanceEvery(name string, interval time.Duration) (int, error) {
	pid, err := b.initPID(name)
	if err != nil {
		return 0, err
	}

	err = waitRunningEvery(pid, interval)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}

	return pid, nil
}
