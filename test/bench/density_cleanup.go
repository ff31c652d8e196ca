package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/test/testutil"
)

// teardown removes everything the daemon made, whatever state a failure or an
// interruption left it in: its containers (deleted through the daemon, started again if
// it was down), the daemon, then what outlived it (monitors, processes in its cgroups,
// mounts, cgroup directories), its state directory, and its network (bridge, nftables
// tables, dnsmasq, found by the bridge once the directory is gone). lxcfs, one per host,
// is stopped by main. It returns what it had to force or could not clean.
func (b *berthd) teardown() []string {
	var problems []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	if b.cmd == nil || !testutil.Running(b.cmd.Process.Pid) {
		if b.cmd != nil {
			_ = b.cmd.Wait()
		}

		err := b.start()
		if err != nil {
			problems = append(problems, fmt.Sprintf("starting berthd again to delete its containers: %v", err))
		}
	}

	if b.cmd != nil {
		out, err := b.berthCtx(ctx, "list", "--format", "csv", "-c", "n")
		if err != nil {
			problems = append(problems, err.Error())
		}

		for _, err := range parallel(strings.Fields(out), densityParallel, func(name string) error {
			_, err := b.berthCtx(ctx, "delete", "-f", name)
			return err
		}) {
			problems = append(problems, err.Error())
		}

		problems = append(problems, b.stop()...)
	}

	problems = append(problems, b.killLeftovers()...)
	for i := 0; i < 3 && len(mountsUnder(b.dir)) > 0; i++ {
		m := mountsUnder(b.dir)
		for j := len(m) - 1; j >= 0; j-- {
			_ = unix.Unmount(m[j], unix.MNT_DETACH)
		}
	}

	if left := mountsUnder(b.dir); len(left) > 0 {
		return append(problems, fmt.Sprintf("still mounted, %s kept: %s", b.dir, strings.Join(left, " ")))
	}

	problems = append(problems, b.removeCgroups()...)
	err := os.RemoveAll(b.dir)
	if err != nil {
		problems = append(problems, err.Error())
	}

	network.RemoveOrphans(slog.New(slog.DiscardHandler))
	return problems
}

// stop ends the daemon by SIGTERM, by SIGKILL if it takes more than 30 s.
func (b *berthd) stop() []string {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
		b.cmd = nil
		return nil
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
		b.cmd = nil
		return []string{"berthd did not stop in 30 s: killed"}
	}
}

// killLeftovers kills what should have gone with the containers: monitors still running
// (their pid files name them), then every process in the daemon's cgroups (cgroup.kill).
func (b *berthd) killLeftovers() []string {
	var problems []string
	files, _ := filepath.Glob(filepath.Join(b.dir, "instances", "*", "run", "monitor.pid"))
	for _, f := range files {
		pid := readPidFile(f)
		if pid > 0 && testutil.Running(pid) && strings.Contains(cmdline(pid), "berth") {
			problems = append(problems, fmt.Sprintf("killed leftover monitor %d (%s)", pid, f))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}

	l, err := cgroup.Detect()
	if err != nil || l.Unified == "" {
		return problems
	}

	parent := filepath.Join(l.Unified, cgroup.ParentFor(b.dir))
	left := 0
	_ = filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			data, _ := os.ReadFile(p)
			left += len(strings.Fields(string(data)))
		}

		return nil
	})

	if left == 0 {
		return problems
	}

	problems = append(problems, fmt.Sprintf("killed %d leftover processes in %s", left, parent))
	_ = os.WriteFile(filepath.Join(parent, "cgroup.kill"), []byte("1"), 0o644)
	time.Sleep(time.Second)
	return problems
}

// removeCgroups removes the daemon's cgroup directories, children first, in every
// hierarchy.
func (b *berthd) removeCgroups() []string {
	l, err := cgroup.Detect()
	if err != nil {
		return []string{err.Error()}
	}

	mounts := []string{l.Unified}
	for _, m := range l.V1 {
		mounts = append(mounts, m)
	}

	var problems []string
	for _, m := range mounts {
		if m == "" || l.SystemdBus != "" {
			continue
		}

		var dirs []string
		_ = filepath.WalkDir(filepath.Join(m, cgroup.ParentFor(b.dir)), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}

			return nil
		})

		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			err := unix.Rmdir(d)
			if err != nil && err != unix.ENOENT {
				problems = append(problems, fmt.Sprintf("removing cgroup %s: %v", d, err))
			}
		}
	}

	return problems
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}
