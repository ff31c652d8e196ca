package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// close deletes LXD's instances, stops the daemon, and removes whatever it left: processes
// and cgroups of our instances, mounts under its directory, the directory itself. It
// returns what it could not clean (nothing, normally).
func (l *lxdDaemon) close() []string {
	problems := []string{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if l.done != nil {
		out, err := l.lxc(ctx, "list", "--format", "csv", "-c", "n")
		if err != nil {
			problems = append(problems, err.Error())
		}

		for _, n := range strings.Fields(out) {
			err := l.delete(ctx, n)
			if err != nil {
				problems = append(problems, err.Error())
			}
		}

		err = l.stopDaemon()
		if err != nil {
			problems = append(problems, err.Error())
		}
	}

	// Only if something above failed: liblxc monitors name our directory on their command
	// line, container processes sit in cgroups named after our instances.
	for _, pid := range l.leftoverPIDs() {
		problems = append(problems, fmt.Sprintf("killed leftover process %d", pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}

	problems = append(problems, l.removeCgroups()...)

	for i := 0; i < 3; i++ {
		mounts := mountsUnder(l.dir)
		if len(mounts) == 0 {
			break
		}

		// Deepest last in mountinfo order: unmount in reverse.
		for j := len(mounts) - 1; j >= 0; j-- {
			_ = unix.Unmount(mounts[j], unix.MNT_DETACH)
		}
	}

	// Never remove a tree with something still mounted in it.
	left := mountsUnder(l.dir)
	if len(left) > 0 {
		return append(problems, fmt.Sprintf("still mounted, %s kept: %s", l.dir, strings.Join(left, " ")))
	}

	err := os.RemoveAll(l.dir)
	if err != nil {
		problems = append(problems, err.Error())
	}

	// Deleting instances leaves a lot of dirty metadata: flush it before anything else runs.
	unix.Sync()
	return problems
}

// delete force-deletes an instance, retrying while an operation (a failed start's stop,
// an interrupted command's) still holds it.
func (l *lxdDaemon) delete(ctx context.Context, name string) error {
	var err error
	for i := 0; i < 10; i++ {
		_, err = l.lxc(ctx, "delete", "-f", name)
		if err == nil || !strings.Contains(err.Error(), "busy") {
			return err
		}

		time.Sleep(time.Second)
	}

	return err
}

// mountsUnder lists the mount points at or under dir, in mountinfo order.
func mountsUnder(dir string) []string {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil
	}

	return mountinfo.Under(mounts, dir)
}

// leftoverPIDs finds processes started by our daemon that outlived it: liblxc monitors
// ("[lxc monitor] <dir>/containers <name>") and anything in our instances' cgroups.
func (l *lxdDaemon) leftoverPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	pids := []int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}

		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cgroups, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if strings.Contains(string(cmdline), l.dir+"/") || strings.Contains(string(cgroups), "/lxc.payload."+l.prefix) {
			pids = append(pids, pid)
		}
	}

	return pids
}

// removeCgroups removes cgroups liblxc left for our instances (lxc.payload.<name>,
// lxc.monitor.<name>), children first. liblxc removes them itself on a clean stop.
func (l *lxdDaemon) removeCgroups() []string {
	problems := []string{}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		for _, kind := range []string{"payload", "monitor"} {
			tops, _ := filepath.Glob(filepath.Join(root, "lxc."+kind+"."+l.prefix+"*"))
			for _, top := range tops {
				dirs := []string{}
				_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						dirs = append(dirs, p)
					}

					return nil
				})

				sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
				for _, d := range dirs {
					err := os.Remove(d)
					if err != nil {
						problems = append(problems, fmt.Sprintf("removing cgroup: %v", err))
					}
				}

				problems = append(problems, "removed leftover cgroup "+top)
			}
		}

		// liblxc's shared, normally empty, parking cgroup on hybrid hosts; rmdir fails
		// harmlessly if anything still uses it.
		_ = os.Remove(filepath.Join(root, "lxc.pivot"))
	}

	return problems
}
