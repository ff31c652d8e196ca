package instance

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/lxd/cgroup"
)

// hostCgroups is the host's cgroup layout, read once.
var hostCgroups = sync.OnceValues(cgroup.Detect)

// joinCgroups moves pid into every cgroup init is in, hierarchy by
// hierarchy: on cgroup2 that is systemd's init.scope, a leaf, so systemd's
// own tree is left as it arranged it. The exec'd process then reads the
// same /proc/self/cgroup as init, and counts against the container's limits.
func joinCgroups(initPID, pid int) error {
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
		if len(parts) != 3 || strings.Contains(parts[2], "..") || already[s.Text()] {
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
