package lxcfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Supervise keeps lxcfs running at dir until ctx ends: it adopts one a previous daemon
// started (pid file and live mount), else starts one, and restarts it when it dies. It
// returns ErrNotInstalled at once when there is no lxcfs binary; otherwise it runs until
// ctx is done and leaves lxcfs running (containers keep using it).
func Supervise(ctx context.Context, dir string, log *slog.Logger, ready func()) error {
	bin, err := binary()
	if err != nil {
		return err
	}

	log = log.With("lxcfs", dir)
	backoff := time.Second
	signalled := false
	for {
		pidfd, pid, err := ensure(bin, dir, log)
		if err != nil {
			log.Warn("starting lxcfs", "err", err)
		} else {
			if !signalled {
				signalled = true
				ready()
			}

			backoff = time.Second
			err = waitExit(ctx, pidfd)
			_ = unix.Close(pidfd)
			if ctx.Err() != nil {
				return nil
			}

			log.Warn("lxcfs exited; restarting it (running containers keep a dead view until they restart)", "pid", pid, "err", err)
		}

		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}

		backoff = min(2*backoff, 30*time.Second)
	}
}

// ensure returns a pidfd of the lxcfs serving dir, adopting or starting it.
func ensure(bin, dir string, log *slog.Logger) (int, int, error) {
	pidfd, pid, err := adopt(dir)
	if err == nil {
		log.Info("adopted running lxcfs", "pid", pid)
		return pidfd, pid, nil
	}

	err = unmountStale(dir)
	if err != nil {
		return -1, 0, err
	}

	err = os.MkdirAll(dir, 0o755)
	if err != nil {
		return -1, 0, fmt.Errorf("creating %q: %w", dir, err)
	}

	logf, err := os.OpenFile(logFile(dir), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return -1, 0, err
	}

	defer func() { _ = logf.Close() }()

	// Foreground (-f) so the pid is lxcfs itself; its own session so that it outlives
	// us; pidfd for process tracking; loadavg and CFS quota virtualisation on.
	cmd := &exec.Cmd{
		Path:        bin,
		Args:        []string{bin, "-f", "--enable-pidfd", "--enable-cfs", "-l", "-p", pidFile(dir), dir},
		Env:         []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdout:      logf,
		Stderr:      logf,
		Dir:         "/",
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}

	err = cmd.Start()
	if err != nil {
		return -1, 0, fmt.Errorf("starting %s: %w", bin, err)
	}

	pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reap it if it dies while we run
		close(exited)
	}()

	for deadline := time.Now().Add(10 * time.Second); !Mounted(dir); {
		select {
		case <-exited:
			return -1, 0, fmt.Errorf("lxcfs exited at start (see %s)", logFile(dir))
		case <-time.After(20 * time.Millisecond):
		}

		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return -1, 0, fmt.Errorf("lxcfs did not mount %q in time", dir)
		}
	}

	pidfd, err = unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("opening pidfd of lxcfs: %w", err)
	}

	log.Info("started lxcfs", "pid", pid)
	return pidfd, pid, nil
}

// adopt finds a running lxcfs from its pid file: the pid must be lxcfs serving dir, and
// dir must be a live mount.
func adopt(dir string) (int, int, error) {
	b, err := os.ReadFile(pidFile(dir))
	if err != nil {
		return -1, 0, err
	}

	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return -1, 0, fmt.Errorf("bad pid file %q", pidFile(dir))
	}

	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, 0, err
	}

	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if err != nil || len(args) == 0 || !strings.HasSuffix(args[0], "lxcfs") || args[len(args)-1] != dir || !Mounted(dir) {
		_ = unix.Close(pidfd)
		return -1, 0, errors.New("pid file names no lxcfs serving this directory")
	}

	return pidfd, pid, nil
}

// waitExit blocks until the process behind pidfd exits or ctx ends.
func waitExit(ctx context.Context, pidfd int) error {
	for ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 500)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}

		if n > 0 {
			return nil
		}
	}

	return ctx.Err()
}
