package instance

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

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/shared/mountinfo"
)

// hostCgroups is the host's cgroup layout, read once.
var hostCgroups = sync.OnceValues(cgroup.Detect)

// joinCgroups moves pid into every cgroup init is in, hierarchy by
// hierarchy: on cgroup2 that is systemd's init.scope, a leaf, so systemd's
// own tree is left as it arranged it. The exec'd process then reads the
// same /proc/self/cgroup as init, and counts against the container's limits.
// Without unified, the cgroup2 hierarchy is left out (an exec server stays
// out of systemd's tree and creates its commands there).
func joinCgroups(initPID, pid int, unified bool) error {
	l, err := hostCgroups()
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

		mount := mountOf(l, parts[1])
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

// mountOf returns the mount point of the hierarchy with the given
// controller list ("" for cgroup2), or "" if it is not mounted.
func mountOf(l cgroup.Layout, controllers string) string {
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

// initCgroup2Dir is the directory of init's cgroup2 group on the host, ""
// on hosts without a cgroup2 hierarchy.
func initCgroup2Dir(initPID int) (string, error) {
	l, err := hostCgroups()
	if err != nil || l.Unified == "" {
		return "", err
	}

	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", initPID))
	if err != nil {
		return "", fmt.Errorf("reading cgroups of init: %w", err)
	}

	for _, line := range strings.Split(string(data), "\n") {
		p, ok := strings.CutPrefix(line, "0::")
		if ok && !strings.Contains(p, "..") {
			return filepath.Join(l.Unified, p), nil
		}
	}

	return "", fmt.Errorf("init %d has no cgroup2 group", initPID)
}

// execServerWorks says whether exec servers can create commands in init's
// cgroup2 group. With nsdelegate (systemd's default) the kernel lets a
// process of the container's cgroup namespace create children only from
// inside the container's tree, where systemd would see a stranger: execs
// then start one by one.
var execServerWorks = sync.OnceValue(func() bool {
	l, err := hostCgroups()
	if err != nil {
		return false
	}

	if l.Unified == "" {
		return true
	}

	opts, err := superOptions(l.Unified)
	if err != nil {
		return false
	}

	return !slices.Contains(strings.Split(opts, ","), "nsdelegate")
})

// superOptions returns the super block options of the mount at mountPoint.
func superOptions(mountPoint string) (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}

	return mountSuperOptions(string(data), mountPoint)
}

// mountSuperOptions finds the super block options of mountPoint in a
// mountinfo text.
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
