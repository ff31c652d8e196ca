package setup

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Mount is an extra bind mount of a host path into the container (lxcfs files, disk and
// unix-char devices). The source is trusted (chosen by the daemon or its admin); the
// target is resolved inside the container's root like every other mount target.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readonly,omitempty"`
	// Propagation "slave" makes the container's copy a slave of Source's peer group, so
	// that what the host mounts under Source later (hotplug) shows up in the container,
	// copied across the user namespace boundary and therefore with its flags locked.
	// "" keeps what the clone of Source has.
	Propagation string `json:"propagation,omitempty"`
}

// PropagationSlave is the only Mount.Propagation there is.
const PropagationSlave = "slave"

// mountExtra binds each cfg.Mounts entry, after /proc and /sys exist so lxcfs's files can
// cover theirs. The source tree is cloned with open_tree (recursively, so submounts
// come along and nothing hidden below them is uncovered), made read-only if asked and moved
// onto the target: the new mount API needs no /proc/self/fd paths and sets read-only on
// the clone itself, before anyone inside can see it.
func mountExtra(r *root, mounts []Mount) error {
	for _, m := range mounts {
		err := bindExtra(r, m)
		if err != nil {
			return err
		}
	}

	return nil
}

func bindExtra(r *root, m Mount) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, m.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("cloning mount of %q: %w", m.Source, err)
	}

	defer func() { _ = unix.Close(tree) }()

	switch m.Propagation {
	case "":
	case PropagationSlave:
		// Set on the detached clone: a shared clone (if Source's copy here is shared) is
		// turned into a slave before anything is attached to it, so nothing made inside
		// the container ever propagates back to the host.
		err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Propagation: unix.MS_SLAVE})
		if err != nil {
			return fmt.Errorf("making mount of %q a slave: %w", m.Source, err)
		}
	default:
		return fmt.Errorf("mount of %q: unknown propagation %q", m.Source, m.Propagation)
	}

	if m.ReadOnly {
		err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
		if err != nil {
			return fmt.Errorf("making mount of %q read-only: %w", m.Source, err)
		}
	}

	return AttachTree(r.fd, r.path, tree, m.Target)
}

// AttachTree moves a detached mount tree (from open_tree) onto target, resolved inside the
// root open at rootFD and created as a directory or an empty file to match the tree. It
// serves setup before the pivot and the daemon's hotplug from inside the container's mount
// namespace (rootFD is then the container's "/").
func AttachTree(rootFD int, rootPath string, tree int, target string) error {
	var st unix.Stat_t

	err := unix.Fstat(tree, &st)
	if err != nil {
		return fmt.Errorf("inspecting mount for %q: %w", target, err)
	}

	k := kindFile
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		k = kindDir
	}

	r := &root{fd: rootFD, path: rootPath}

	dst, err := r.mkpath(target, k, 0o755)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(dst) }()

	err = unix.MoveMount(tree, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("attaching mount on %q: %w", target, err)
	}

	return nil
}
