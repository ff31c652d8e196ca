package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// RemoveParent removes the daemon's parent group (see ParentFor) from every
// hierarchy. berthd keeps it for its next start; this is for a state
// directory that goes away with its daemon (tests, benchmarks). A parent that
// still holds a container's group is left, and the error says where.
func (l Layout) RemoveParent() error {
	if l.SystemdBus != "" {
		return nil // systemd's units, no directory of ours
	}

	mounts := []string{l.Unified}
	for _, c := range v1Controllers {
		mounts = append(mounts, l.V1[c])
	}

	var errs []error
	for _, m := range mounts {
		if m == "" {
			continue
		}

		// cpu and cpuacct usually share a hierarchy: the second rmdir sees ENOENT.
		dir := filepath.Join(m, l.parent())
		err := unix.Rmdir(dir)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
		}
	}

	return errors.Join(errs...)
}
