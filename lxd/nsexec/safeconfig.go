package nsexec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds on the container files an exec reads (/etc/passwd, /etc/group): they are the
// container's, so as hostile as the rest of it.
const (
	maxConfigFile  = 1 << 20
	configDeadline = 2 * time.Second
)

// readConfig reads a small configuration file of the container. The open never blocks
// (O_NONBLOCK: a FIFO opens at once, and is then refused), magic links are not followed,
// only a regular file off procfs and sysfs is read, at most max bytes, for at most
// deadline. The caller runs as the container's root, so the kernel also refuses what the
// container's root could not read.
func readConfig(path string, max int64, deadline time.Duration) ([]byte, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}

	f := os.NewFile(uintptr(fd), path)
	defer func() { _ = f.Close() }()

	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	if err != nil {
		return nil, fmt.Errorf("stating %s: %w", path, err)
	}

	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}

	if st.Size > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}

	var sfs unix.Statfs_t
	err = unix.Fstatfs(fd, &sfs)
	if err != nil {
		return nil, fmt.Errorf("identifying the filesystem of %s: %w", path, err)
	}

	if sfs.Type == unix.PROC_SUPER_MAGIC || sfs.Type == unix.SYSFS_MAGIC {
		return nil, fmt.Errorf("%s is on procfs or sysfs", path)
	}

	end := time.Now().Add(deadline)
	buf := make([]byte, 0, min(st.Size+1, max+1))
	chunk := make([]byte, 64<<10)

	for {
		n, err := f.Read(chunk)
		buf = append(buf, chunk[:n]...)

		if int64(len(buf)) > max {
			return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
		}

		if errors.Is(err, io.EOF) {
			return buf, nil
		}

		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}

		if time.Now().After(end) {
			return nil, fmt.Errorf("reading %s took more than %s", path, deadline)
		}
	}
}
