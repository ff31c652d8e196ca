package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/shared/mountinfo"
)

// host is the host's cgroup layout, read once: it does not change while the daemon runs.
var host = sync.OnceValues(Detect)

// JoinLike moves pid into every cgroup initPID is in, hierarchy by hierarchy: on cgroup2
// that is systemd's init.scope, a leaf, so systemd's own tree is left as it arranged it.
// The moved process then reads the same /proc/self/cgroup as init and counts against the
// container's limits. Without unified, the cgroup2 hierarchy is left out (an exec server
// stays out of systemd's tree and creates its commands there).
func JoinLike(initPID, pid int, unified bool) error {
	l, err := host()
	if err != nil {
		return err
	}

	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", initPID))
	if err != nil {
		return fmt.Errorf("reading cgroups of init: %w", err)
	}

	// Each move takes the kernel's cgroup threadgroup lock for writing
	// (an RCU grace period on v1): skip the hierarchies where pid already
	// is where init is (the host root of name=systemd and devices).
	cur, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("reading cgroups of %d: %w", pid, err)
	}

	already := map[string]bool{}
	for _, line := range strings.Split(string(cur), "\n") {
		already[line] = true
	}

	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		// "4:memory:/berth/c1", "0::/berth/c1/init.scope"
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 || strings.Contains(parts[2], "..") || already[s.Text()] || (!unified && parts[1] == "") {
			continue
		}

		mount := l.mountOf(parts[1])
		if mount == "" {
			continue
		}

		procs := filepath.Join(mount, parts[2], "cgroup.procs")

		err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0)
		if err != nil {
			return fmt.Errorf("joining cgroup %s: %w", procs, err)
		}
	}

	return nil
}

// mountOf returns the mount point of the hierarchy with the given controller list ("" for
// cgroup2), or "" if it is not mounted.
func (l Layout) mountOf(controllers string) string {
	if controllers == "" {
		return l.Unified
	}

	for _, c := range strings.Split(controllers, ",") {
		m, ok := l.V1[c]
		if ok {
			return m
		}
	}

	return ""
}

// Cgroup2Dir is the host directory of pid's cgroup2 group, "" on hosts without a cgroup2
// hierarchy.
func Cgroup2Dir(pid int) (string, error) {
	l, err := host()
	if err != nil || l.Unified == "" {
		return "", err
	}

	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", fmt.Errorf("reading cgroups of %d: %w", pid, err)
	}

	for _, line := range strings.Split(string(data), "\n") {
		p, ok := strings.CutPrefix(line, "0::")
		if ok && !strings.Contains(p, "..") {
			return filepath.Join(l.Unified, p), nil
		}
	}

	return "", fmt.Errorf("process %d has no cgroup2 group", pid)
}

// CanPlaceInForeignGroups says whether a process outside a container's cgroup namespace
// may create children in the container's cgroup2 groups. With nsdelegate (systemd's
// default) the kernel allows it only from inside the container's tree. Unknown is no.
var CanPlaceInForeignGroups = sync.OnceValue(func() bool {
	l, err := host()
	if err != nil {
		return false
	}

	if l.Unified == "" {
		return true
	}

	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}

	opts, err := mountSuperOptions(string(data), l.Unified)
	if err != nil {
		return false
	}

	return !slices.Contains(strings.Split(opts, ","), "nsdelegate")
})

// mountSuperOptions finds the super block options of mountPoint in a mountinfo text.
func mountSuperOptions(data, mountPoint string) (string, error) {
	found := ""

	for _, line := range strings.Split(data, "\n") {
		// id parent dev root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)

		if ok && len(f) >= 5 && len(g) >= 3 && mountinfo.Unescape(f[4]) == mountPoint {
			found = g[2] // the last mount there is the one seen
		}
	}

	if found == "" {
		return "", fmt.Errorf("no mount at %s", mountPoint)
	}

	return found, nil
}

// PinnedCPUs reads the cpuset of every container group under parent (a daemon's cgroup
// parent): container name -> CPUs. Groups without a cpuset are left out.
func PinnedCPUs(parent string) map[string][]int {
	out := map[string][]int{}
	l, err := host()
	if err != nil {
		return out
	}

	base := filepath.Join(l.Unified, parent)
	if l.Mode != sys.CgroupUnified {
		mnt, ok := l.V1["cpuset"]
		if !ok {
			return out
		}

		base = filepath.Join(mnt, parent)
	}

	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}

		b, err := os.ReadFile(filepath.Join(base, e.Name(), "cpuset.cpus"))
		if err != nil || strings.TrimSpace(string(b)) == "" {
			continue
		}

		cpus, err := sys.ParseCPUList(strings.TrimSpace(string(b)))
		if err == nil {
			out[e.Name()] = cpus
		}
	}

	return out
}
