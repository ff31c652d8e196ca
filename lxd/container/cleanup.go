package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/cgroup"
	"golang.org/x/sys/unix"
)

// Cleanup removes what a container whose monitor is gone left behind: its
// cgroups (killing any process still in them, such as an orphaned init) and
// its Spec.Unmounts, plus the monitor's socket and pid file. It is
// idempotent and refuses with ErrRunning while a monitor still answers.
func Cleanup(spec Spec) error {
	m, err := Attach(spec.RunDir)
	if err == nil {
		_ = m.Close()
		return fmt.Errorf("cleaning up %q: %w", spec.Name, ErrRunning)
	}

	// A monitor that no longer answers but still lives (wedged) would undo
	// our work when it wakes up: kill it, identified by its pid file and
	// command line.
	killStaleMonitor(spec.RunDir)

	var errs []error

	err = removeCgroups(spec.Name, spec.CgroupParent)
	if err != nil {
		errs = append(errs, err)
	}

	err = unmountAll(spec.Unmounts)
	if err != nil {
		errs = append(errs, err)
	}

	for _, f := range []string{socketFile, pidFile} {
		err = os.Remove(filepath.Join(spec.RunDir, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}

	return errors.Join(errs...)
}

func removeCgroups(name, parent string) error {
	l, err := cgroup.Detect()
	if err != nil {
		return err
	}

	l.Parent = parent

	g, err := cgroup.New(name, l)
	if err != nil {
		return err
	}

	err = g.Remove()
	if err != nil {
		return fmt.Errorf("removing cgroups of %q: %w", name, err)
	}

	return nil
}

func killStaleMonitor(runDir string) {
	b, err := os.ReadFile(filepath.Join(runDir, pidFile))
	if err != nil {
		return
	}

	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}

	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return
	}

	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if isMonitorOf(pid, args, runDir) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// isMonitorOf says whether pid, running args, is the monitor of runDir: named in its
// command line, or for a monitor that was a spare (spare.go), writing to its log.
func isMonitorOf(pid int, args []string, runDir string) bool {
	switch {
	case len(args) == 3 && args[1] == helperMonitor:
		return args[2] == runDir
	case len(args) == 2 && args[1] == helperMonitor:
		out, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", pid))
		return err == nil && out == filepath.Join(runDir, logFile)
	}

	return false
}

// unmountAll unmounts each path in order. A path that is not (or no
// longer) mounted is fine; a busy one is detached lazily.
func unmountAll(paths []string) error {
	var errs []error

	for _, p := range paths {
		err := unix.Unmount(p, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(p, unix.MNT_DETACH)
		}

		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %q: %w", p, err))
		}
	}

	return errors.Join(errs...)
}
