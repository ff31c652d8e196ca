package setup

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// devNodes are bound from the host: mknod is not allowed in a user
// namespace, so each is an empty file with the host's node bound onto it.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

var devLinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"ptmx", "pts/ptmx"},
}

// mountDev builds a private /dev (host side): a small tmpfs owned by the
// container's root with the basic nodes and the console pty slave bound on
// /dev/console, as CONTAINER_INTERFACE.md asks. The devpts instance is the
// container's own (mountDevpts); /dev/shm comes with /run and /tmp.
func mountDev(r *root, cfg Config) error {
	opts := fmt.Sprintf("mode=755,size=4m,uid=%d,gid=%d", cfg.RootUID, cfg.RootGID)

	err := r.mountAt("tmpfs", "/dev", kindDir, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, opts)
	if err != nil {
		return err
	}

	// The tmpfs is ours and empty: names created in it are safe.
	dev, err := r.open("/dev", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(dev) }()

	for _, n := range devNodes {
		err = r.bindDevice("/dev/"+n, "/dev/"+n)
		if err != nil {
			return err
		}
	}

	for _, l := range devLinks {
		err = symlinkAt(dev, l[0], l[1])
		if err != nil {
			return err
		}
	}

	// Bound by path from the host's devpts, which this mount namespace
	// still shows before the pivot.
	err = r.bindDevice(cfg.Console, "/dev/console")
	if err != nil {
		return fmt.Errorf("binding the console: %w", err)
	}

	return nil
}

// bindDevice binds the host's device node src on rel, nosuid and noexec
// whatever the host's /dev or devpts mount says.
func (r *root) bindDevice(src, rel string) error {
	err := r.mountAt(src, rel, kindFile, "", unix.MS_BIND, "")
	if err != nil {
		return err
	}

	return r.remountBind(rel, unix.MS_NOSUID|unix.MS_NOEXEC)
}

// mountDevpts gives the container its own devpts instance, mounted as the
// container's root (so gid=5 is its tty group and the instance is its
// own), with at most max ptys.
func mountDevpts(r *root, max int) error {
	if max <= 0 {
		max = DefaultPtyMax
	}

	opts := fmt.Sprintf("newinstance,ptmxmode=0666,mode=0620,gid=5,max=%d", max)

	return r.mountAt("devpts", "/dev/pts", kindDir, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, opts)
}
