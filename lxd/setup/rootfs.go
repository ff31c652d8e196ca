package setup

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// HostInputs are what PrepareHost waits for from others, while it builds what it can.
type HostInputs struct {
	// KernelViews returns the detached clones of the kernel views among cfg.Mounts
	// (CloneKernelViews), in their order; the caller closes them afterwards. Called
	// once, after /dev, /sys, /run and /tmp are up.
	KernelViews func() ([]int, error)
	// ProcCtx returns a procfs fs_context (fsopen, unconfigured) for the container's pid
	// namespace, made by a process in it or for it (ProcContextFor), which PrepareHost
	// creates and mounts. Called once,
	// after KernelViews; it may block until that process has made it.
	ProcCtx func() (int, error)
}

// PrepareHost is the host side of the setup: it builds the container's mount
// tree in cfg.Rootfs and pivots into it. Every mount it makes reaches the
// container locked (see the package comment), so the masks stay on.
//
// Preconditions: the caller is host root (initial user namespace) on a
// locked OS thread with its own filesystem state, in a mount namespace of
// its own owned by the initial user namespace, and in the container's
// network namespace (so /sys shows the container's); the host's /dev and
// cfg.Console (a pty slave) are reachable by path.
func PrepareHost(cfg Config, in HostInputs) error {
	unix.Umask(0o022)

	restore, err := ownNewFiles(cfg.RootUID, cfg.RootGID)
	if err != nil {
		return err
	}

	defer restore()

	// The mounts were copied from the host in our own user namespace, so
	// they are still the host's peers: make them slaves so nothing we do
	// propagates back, while host unmounts still reach us.
	err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, "")
	if err != nil {
		return fmt.Errorf("making mounts slaves: %w", err)
	}

	// pivot_root needs the new root to be a mount point.
	err = unix.Mount(cfg.Rootfs, cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, "")
	if err != nil {
		return fmt.Errorf("binding root %q onto itself: %w", cfg.Rootfs, err)
	}

	r, err := openRoot(cfg.Rootfs)
	if err != nil {
		return err
	}

	defer r.close()

	// /dev first: the /proc masks bind its null device.
	err = mountDev(r, cfg)
	if err == nil {
		err = mountSys(r)
	}

	if err == nil {
		err = mountRunTmp(r, cfg.MemoryLimit)
	}

	if err != nil {
		return err
	}

	views, err := in.KernelViews()
	if err != nil {
		return err
	}

	proc, err := in.ProcCtx()
	if err != nil {
		return err
	}

	err = mountProc(r, proc)
	if err == nil {
		err = mountKernelViews(r, cfg.Mounts, views)
	}

	if err != nil {
		return err
	}

	return pivot(r)
}

// PrepareContainer is the container's side of the setup: its devpts
// instance and cgroup2 tree, the extra mounts (trees, from CloneMounts of
// cfg.Mounts), the hostname and loopback.
//
// Preconditions: the caller is the container's init, root in its user
// namespace, on a locked OS thread that has joined the locked copy of the
// tree PrepareHost built (so "/" is the rootfs) and unshared its cgroup
// namespace while in the container's cgroup.
func PrepareContainer(cfg Config, trees []int) error {
	unix.Umask(0o022)

	r, err := openRoot("/")
	if err != nil {
		return err
	}

	defer r.close()

	err = mountDevpts(r, cfg.PtyMax)
	if err != nil {
		return err
	}

	// The container's own, writable: the delegated subtree, and the cgroup
	// namespace makes its root the container's cgroup.
	err = r.mountAt("cgroup2", "/sys/fs/cgroup", kindDir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err != nil {
		return err
	}

	err = attachMounts(r, trees, cfg.Mounts)
	if err != nil {
		return err
	}

	err = unix.Sethostname([]byte(cfg.Hostname))
	if err != nil {
		return fmt.Errorf("setting hostname %q: %w", cfg.Hostname, err)
	}

	return loopbackUp()
}

// pivot makes the root the new / and detaches the host's tree: the
// pivot_root(".", ".") trick stacks the old root on top of the new one at
// "/", from where a lazy unmount removes it without needing a directory
// for it inside the container.
func pivot(r *root) error {
	err := unix.Fchdir(r.fd)
	if err != nil {
		return fmt.Errorf("entering root %q: %w", r.path, err)
	}

	err = unix.PivotRoot(".", ".")
	if err != nil {
		return fmt.Errorf("pivoting into %q: %w", r.path, err)
	}

	err = unix.Unmount(".", unix.MNT_DETACH)
	if err != nil {
		return fmt.Errorf("detaching the host root: %w", err)
	}

	err = unix.Chdir("/")
	if err != nil {
		return fmt.Errorf("entering new root: %w", err)
	}

	return nil
}

// mountSys mounts a read-only sysfs (which also tells udev not to run) of
// the container's network namespace, and masks /sys/firmware. The cgroup2
// tree on it is the container's (PrepareContainer).
func mountSys(r *root) error {
	err := r.mountAt("sysfs", "/sys", kindDir, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err != nil {
		return err
	}

	ok, isDir := r.exists("/sys/firmware")
	if ok && isDir {
		return r.mountAt("tmpfs", "/sys/firmware", kindDir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
	}

	return nil
}
