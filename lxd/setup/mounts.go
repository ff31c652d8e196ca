package setup

import (
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is an extra bind mount of a host path into the container (lxcfs files, disk and
// unix-char devices). The source is trusted (chosen by the daemon or its admin); the
// target is resolved inside the container's root like every other mount target. They
// are made on top of /proc, /sys, /run and /tmp.
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

// CloneMounts clones the source tree of each of mounts that the container may lose
// (see kernelView; recursively, so submounts come along and nothing hidden below them is
// uncovered) into a detached mount, made read-only if asked, for PrepareContainer to
// attach at its target. The new mount API needs no /proc/self/fd paths and sets read-only
// on the clone itself, before anyone inside can see it.
//
// Init calls it before it joins the container's mount namespace, while it sits in a copy
// of the host's made for the container's user namespace: there the host's mounts (the
// devices the daemon staged) are locked, and clones keep those locks, so the container
// cannot make a staged read-only device writable or uncover what its submounts cover,
// while the daemon can still unmount it for a hot-remove (a mount in the locked tree
// PrepareHost builds could not be). On error nothing stays open.
func CloneMounts(mounts []Mount) ([]int, error) {
	trees := []int{}

	for _, m := range mounts {
		if kernelView(m) {
			continue
		}

		tree, err := cloneExtra(m)
		if err != nil {
			CloseMounts(trees)
			return nil, err
		}

		trees = append(trees, tree)
	}

	return trees, nil
}

// kernelView reports whether m goes below /proc or /sys (lxcfs's files): those are made
// on the host side, locked like the masks. systemd needs that: a unit that wants a
// procfs of its own (logind's, with ProtectSystem and friends) unmounts what it can
// below /proc, then cannot mount a fresh one (the masks make it too revealing) and
// falls back to the existing /proc only if it could unmount nothing.
func kernelView(m Mount) bool {
	t := path.Clean("/" + m.Target)

	return t == "/proc" || t == "/sys" || strings.HasPrefix(t, "/proc/") || strings.HasPrefix(t, "/sys/")
}

// CloneKernelViews clones the mounts that go below /proc or /sys, for PrepareHost to
// attach once the container's procfs is there (mountKernelViews). It may run in any
// mount namespace that shows the sources (a detached clone attaches anywhere), and
// clones a source from its handle in held when there is one.
//
// The handles are why: finding a source by its path is a FUSE round trip to lxcfs once
// its dentry's half-second lifetime ran out, and for /proc/slabinfo lxcfs reads the
// host's whole slabinfo to answer (4.5 ms of the 5.4 ms that all nine took here, CPU
// taken from the start on a small host). The daemon keeps the handles open (package
// lxcfs) and hands them to the monitor; a clone from one costs microseconds. A handle
// that fails (its lxcfs was unmounted since: the clone is refused) falls back to the
// path. On error nothing stays open.
func CloneKernelViews(mounts []Mount, held map[string]int) ([]int, error) {
	var trees []int
	for _, m := range mounts {
		if !kernelView(m) {
			continue
		}

		tree := -1
		if fd, ok := held[m.Source]; ok {
			tree, _ = cloneHeld(fd, m)
		}

		if tree < 0 {
			var err error
			tree, err = cloneExtra(m)
			if err != nil {
				CloseMounts(trees)
				return nil, err
			}
		}

		trees = append(trees, tree)

		// Made in the daemon's mount namespace, where lxcfs's mount (or a disk's
		// source) may be shared: a clone of a shared mount is its peer, and a mount
		// attached on top of it later (a disk at /proc/meminfo) would spread to the
		// host and to every container's view. As a slave, nothing goes back.
		err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Propagation: unix.MS_SLAVE})
		if err != nil {
			CloseMounts(trees)
			return nil, fmt.Errorf("making mount of %q a slave: %w", m.Source, err)
		}
	}

	return trees, nil
}

// mountKernelViews attaches the clones of CloneKernelViews, in the order of mounts.
func mountKernelViews(r *root, mounts []Mount, trees []int) error {
	i := 0
	for _, m := range mounts {
		if !kernelView(m) {
			continue
		}

		if i >= len(trees) {
			return fmt.Errorf("%d cloned kernel views for more mounts", len(trees))
		}

		err := AttachTree(r.fd, r.path, trees[i], m.Target)
		if err != nil {
			return err
		}

		i++
	}

	return nil
}

// CloseMounts closes what CloneMounts returned.
func CloseMounts(trees []int) {
	for _, t := range trees {
		_ = unix.Close(t)
	}
}

func cloneExtra(m Mount) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, m.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("cloning mount of %q: %w", m.Source, err)
	}

	return shapeClone(tree, m)
}

// cloneHeld is cloneExtra from fd, an open handle of m.Source.
func cloneHeld(fd int, m Mount) (int, error) {
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, fmt.Errorf("cloning mount of %q from its handle: %w", m.Source, err)
	}

	return shapeClone(tree, m)
}

// shapeClone gives the detached clone tree of m its propagation and read-only flag; on
// error it closes tree.
func shapeClone(tree int, m Mount) (int, error) {
	var err error
	switch m.Propagation {
	case "":
	case PropagationSlave:
		// Set on the detached clone: a shared clone (if Source's copy here is shared) is
		// turned into a slave before anything is attached to it, so nothing made inside
		// the container ever propagates back to the host.
		err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Propagation: unix.MS_SLAVE})
		if err != nil {
			_ = unix.Close(tree)
			return -1, fmt.Errorf("making mount of %q a slave: %w", m.Source, err)
		}
	default:
		_ = unix.Close(tree)
		return -1, fmt.Errorf("mount of %q: unknown propagation %q", m.Source, m.Propagation)
	}

	if m.ReadOnly {
		err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
		if err != nil {
			_ = unix.Close(tree)
			return -1, fmt.Errorf("making mount of %q read-only: %w", m.Source, err)
		}
	}

	return tree, nil
}

// attachMounts attaches each clone of CloneMounts(mounts) at its mount's target, in
// order (shallow paths first, as the daemon sorts them).
func attachMounts(r *root, trees []int, mounts []Mount) error {
	i := 0

	for _, m := range mounts {
		if kernelView(m) {
			continue
		}

		if i >= len(trees) {
			return fmt.Errorf("%d cloned mounts for more mounts", len(trees))
		}

		err := AttachTree(r.fd, r.path, trees[i], m.Target)
		if err != nil {
			return err
		}

		i++
	}

	return nil
}

// AttachTree moves a detached mount tree (from open_tree) onto target, resolved inside the
// root open at rootFD and created as a directory or an empty file to match the tree. It
// serves setup before the pivot and the daemon's hotplug from inside the container's mount
// namespace (rootFD is then the container's "/").
func AttachTree(rootFD int, rootPath string, tree int, target string) error {
	// Its type only, from what the kernel has: a full stat of an lxcfs file can be a
	// FUSE round trip that costs milliseconds (CloneKernelViews).
	var st unix.Statx_t

	err := unix.Statx(tree, "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE, &st)
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
