package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/test/testutil"
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

// initPID asks the API for the host pid of an instance's init. In process, not with
// `berth list`: a CLI's start is CPU taken from the boot being measured (~15 ms here).
func (b *berthd) initPID(name string) (int, error) {
	c, err := client.Connect(filepath.Join(b.dir, "unix.socket"))
	if err != nil {
		return 0, err
	}

	st, err := c.GetInstanceState(context.Background(), name)
	if err != nil {
		return 0, fmt.Errorf("state of %s: %w", name, err)
	}

	if st.Pid <= 0 {
		return 0, fmt.Errorf("%s has no init pid (%s)", name, st.Status)
	}

	return int(st.Pid), nil
}

// waitRunning returns once systemd in the namespaces of pid reports "running", within 2
// minutes. testutil.WaitSystemd looks for systemd's bus from the host and then asks
// systemctl once, so the wait takes no CPU from the boot it measures.
func waitRunning(pid int) error { return waitRunningCtx(context.Background(), pid) }

// waitRunningCtx is waitRunning ended early by ctx.
func waitRunningCtx(ctx context.Context, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s, err := testutil.WaitSystemd(ctx, pid)
	if err != nil {
		return err
	}

	if s != "running" {
		return fmt.Errorf("systemd says %q", s)
	}

	return nil
}

// waitInstance waits until systemd in a running instance reports "running" and returns
// the host pid of its init.
func (b *berthd) waitInstance(name string) (int, error) {
	pid, err := b.initPID(name)
	if err != nil {
		return 0, err
	}

	err = waitRunning(pid)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}

	return pid, nil
}
