package fileio

import (
	"fmt"
	"net/http"
	"os"
	"path"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// Entry is what Open found at a path. File is set for a regular file (open for reading);
// Names for a directory (sorted entry names, without "." and ".."); Target for a symlink.
type Entry struct {
	Info
	File   *os.File
	Names  []string
	Target string
}

// Open looks at p without following its last component: a regular file is opened for
// reading (the caller closes Entry.File), a directory is listed, a symlink is read. Other
// types (devices, FIFOs, sockets) are refused with 400 and never opened.
func (r *Root) Open(p string) (*Entry, error) {
	fd, err := r.openat2(p, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}

	defer unix.Close(fd)

	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	if err != nil {
		return nil, fmt.Errorf("stating %q: %w", p, err)
	}

	e := &Entry{Info: infoOf(&st)}
	switch e.Type {
	case TypeFile:
		e.File, err = reopen(fd, os.O_RDONLY)
		if err != nil {
			return nil, fmt.Errorf("opening %q: %w", p, err)
		}

	case TypeDirectory:
		dir, err := reopen(fd, os.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return nil, fmt.Errorf("opening %q: %w", p, err)
		}

		e.Names, err = dir.Readdirnames(-1)
		_ = dir.Close()
		if err != nil {
			return nil, fmt.Errorf("listing %q: %w", p, err)
		}

		slices.Sort(e.Names)

	case TypeSymlink:
		e.Target, err = readlinkFd(fd)
		if err != nil {
			return nil, fmt.Errorf("reading link %q: %w", p, err)
		}

	default:
		return nil, api.StatusErrorf(http.StatusBadRequest, "%q is not a file, directory or symlink", p)
	}

	return e, nil
}

// AbsTarget is a symlink's target as an absolute path inside the container (what LXD
// returns), for a link found at p.
func AbsTarget(p, target string) string {
	if path.IsAbs(target) {
		return path.Clean(target)
	}

	return path.Join(path.Dir(p), target)
}

// readlinkFd reads the symlink an O_PATH|O_NOFOLLOW fd refers to.
func readlinkFd(fd int) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}

		if n < len(buf) {
			return string(buf[:n]), nil
		}

		buf = make([]byte, len(buf)*4)
	}
}
