package setup

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Prepare builds the container's mount tree in cfg.Rootfs and pivots into
// it, then sets the hostname and brings up loopback.
//
// Preconditions: the caller was cloned into new user, mount, pid, uts, ipc
// and net namespaces and has unshared its cgroup namespace on this OS
// thread (locked); it is root in the user namespace; cfg.Console is the
// pty slave it has as fd 0; the host's /proc is still mounted at /proc.
func Prepare(cfg Config) error {
	unix.Umask(0o022)

	// Owns: user, mount, pid, uts, ipc, net, cgroup. Mounts were copied
	// from the host: make them slaves so nothing we do propagates back,
	// while host unmounts still reach us.
	err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, "")
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
	err = mountDev(r, cfg.Console)
	if err != nil {
		return err
	}

	for _, step := range []func(*root) error{mountProc, mountSys, mountRunTmp} {
		err = step(r)
		if err != nil {
			return err
		}
	}

	err = mountExtra(r, cfg.Mounts)
	if err != nil {
		return err
	}

	err = pivot(r)
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

// mountSys mounts a read-only sysfs (which also tells udev not to run) and
// the container's own cgroup2 tree on it, writable: it is the delegated
// subtree, and the cgroup namespace makes its root the container's cgroup.
// A new sysfs is allowed because we own a network namespace.
func mountSys(r *root) error {
	err := r.mountAt("sysfs", "/sys", kindDir, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err != nil {
		return err
	}

	err = r.mountAt("cgroup2", "/sys/fs/cgroup", kindDir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err != nil {
		return err
	}

	ok, isDir := r.exists("/sys/firmware")
	if ok && isDir {
		return r.mountAt("tmpfs", "/sys/firmware", kindDir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
	}

	return nil
}

// mountRunTmp gives the container fresh /run and /tmp.
func mountRunTmp(r *root) error {
	err := r.mountAt("tmpfs", "/run", kindDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_STRICTATIME, "mode=755,size=20%")
	if err != nil {
		return err
	}

	return r.mountAt("tmpfs", "/tmp", kindDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=50%")
}
