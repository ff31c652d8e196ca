package setup

import (
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

// mountProc mounts a procfs of the container's pid namespace and covers the
// host-wide parts of it. /proc/sys is read-only (which also makes
// systemd-sysctl, systemd-binfmt and friends skip themselves) except
// /proc/sys/net, which belongs to the container's own network namespace, as
// nspawn does with a private network.
func mountProc(r *root) error {
	const procFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

	err := r.mountAt("proc", "/proc", kindDir, "proc", procFlags, "")
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
