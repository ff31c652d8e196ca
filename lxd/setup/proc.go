package setup

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// procReadOnly are made read-only; they change host-wide state.
var procReadOnly = []string{"/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}

// procMasked leak host information or kernel addresses: files are covered
// with /dev/null, directories with an empty read-only tmpfs (runc's list).
var procMasked = []string{
	"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
	"/proc/timer_stats", "/proc/acpi", "/proc/asound", "/proc/scsi",
}

// ProcContextFor returns a procfs context (fsopen, unconfigured otherwise) for the pid
// namespace pidns, for PrepareHost's HostInputs.ProcCtx: with procfs's pidns parameter
// (this VM's Linux 6.18 has it; older kernels refuse it) the host side makes the
// container's procfs itself and need not wait for init to make the context. The kernel
// gives the instance the pid namespace's owner, the container's user namespace, as it
// does for a context made inside.
func ProcContextFor(pidns int) (int, error) {
	fd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("opening a procfs context: %w", err)
	}

	err = unix.FsconfigSetFd(fd, "pidns", pidns)
	if err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("setting a procfs context's pid namespace: %w", err)
	}

	return fd, nil
}

// mountProc mounts a procfs of the container's pid namespace and covers the
// host-wide parts of it. /proc/sys is read-only (which also makes
// systemd-sysctl, systemd-binfmt and friends skip themselves) except
// /proc/sys/net, which belongs to the container's own network namespace, as
// nspawn does with a private network.
//
// procCtx is a procfs fs_context (fsopen) for the container's pid namespace: made by a
// process of it, or for it (ProcContextFor); we are not in it.
func mountProc(r *root, procCtx int) error {
	const procFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

	err := unix.FsconfigSetString(procCtx, "source", "proc")
	if err == nil {
		err = unix.FsconfigCreate(procCtx)
	}

	if err != nil {
		return fmt.Errorf("creating the container's procfs: %w", err)
	}

	mnt, err := unix.Fsmount(procCtx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("mounting the container's procfs: %w", err)
	}

	defer func() { _ = unix.Close(mnt) }()

	err = AttachTree(r.fd, r.path, mnt, "/proc")
	if err != nil {
		return err
	}

	// Bind net on itself first, then sys recursively on itself (carrying
	// the net bind along) and remount only the top read-only.
	err = r.bindInRoot("/proc/sys/net", "/proc/sys/net", unix.MS_REC, false)
	if err != nil {
		return err
	}

	err = r.bindInRoot("/proc/sys", "/proc/sys", unix.MS_REC, true)
	if err != nil {
		return err
	}

	for _, p := range procReadOnly {
		err = r.bindInRoot(p, p, unix.MS_REC, true)
		if err != nil {
			return err
		}
	}

	for _, p := range procMasked {
		ok, isDir := r.exists(p)
		if !ok {
			continue
		}

		if isDir {
			err = r.mountAt("tmpfs", p, kindDir, "tmpfs", unix.MS_RDONLY|procFlags, "size=0")
		} else {
			err = r.bindInRoot("/dev/null", p, 0, false)
		}

		if err != nil {
			return err
		}
	}

	return nil
}
