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

// mountDev builds a private /dev: a small tmpfs with the basic nodes, a new
// devpts instance, /dev/shm, and the console pty slave (our fd 0) bound on
// /dev/console, as CONTAINER_INTERFACE.md asks.
func mountDev(r *root, console string) error {
	err := r.mountAt("tmpfs", "/dev", kindDir, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=4m")
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
		err = r.mountAt("/dev/"+n, "/dev/"+n, kindFile, "", unix.MS_BIND, "")
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

	err = r.mountAt("devpts", "/dev/pts", kindDir, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
	if err != nil {
		return err
	}

	err = r.mountAt("tmpfs", "/dev/shm", kindDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777")
	if err != nil {
		return err
	}

	// Bound by path: our fd 0 is the same pty, but its mount lives in the
	// monitor's mount namespace, and bind mounts only take sources from
	// our own (the copy made by clone).
	err = r.mountAt(console, "/dev/console", kindFile, "", unix.MS_BIND, "")
	if err != nil {
		return fmt.Errorf("binding the console: %w", err)
	}

	return nil
}
