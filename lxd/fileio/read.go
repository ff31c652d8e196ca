package fileio

import (
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// Entry is what Open found at a path. File is set for a regular file (open for reading);
// Names for a directory (sorted entry names, without "." and ".."); Target for a symlink.
type Entry struct {
	Info
	File   io.ReadCloser `json:"-"`
	Names  []string      `json:"names,omitempty"`
	Target string        `json:"target,omitempty"`
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
		e.File, err = r.reopen(fd, unix.O_RDONLY|unix.O_NONBLOCK)
		if err != nil {
			return nil, pathError(p, err)
		}

	case TypeDirectory:
		dir, err := r.reopen(fd, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return nil, pathError(p, err)
		}

		e.Names, err = readNames(dir, maxNames)
		_ = dir.Close()
		if err != nil {
			return nil, pathError(p, fmt.Errorf("listing: %w", err))
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

// maxNames bounds a directory listing: a container can make a directory of any size, and
// the whole list travels in one message.
const maxNames = 1 << 20

// readNames lists at most max entries of dir.
func readNames(dir interface{ Readdirnames(int) ([]string, error) }, max int) ([]string, error) {
	var names []string
	for {
		batch, err := dir.Readdirnames(4096)
		names = append(names, batch...)
		if len(names) > max {
			return nil, api.StatusErrorf(http.StatusRequestEntityTooLarge, "more than %d entries", max)
		}

		if err == io.EOF {
			return names, nil
		}

		if err != nil {
			return nil, err
		}
	}
}

// ReadFile reads the regular file p whole, refusing (413) a file larger than max bytes:
// for small configuration files (resolv.conf, passwd) the daemon looks at. A FIFO or a
// device is never opened; a sparse file is never read past max.
func (r *Root) ReadFile(p string, max int64) ([]byte, error) {
	e, err := r.Open(p)
	if err != nil {
		return nil, err
	}

	if e.File == nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "%q is a %s, not a regular file", p, e.Type)
	}

	defer e.File.Close()

	if e.Size > max {
		return nil, api.StatusErrorf(http.StatusRequestEntityTooLarge, "%q is larger than %d bytes", p, max)
	}

	data, err := io.ReadAll(io.LimitReader(e.File, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", p, err)
	}

	if int64(len(data)) > max {
		return nil, api.StatusErrorf(http.StatusRequestEntityTooLarge, "%q is larger than %d bytes", p, max)
	}

	return data, nil
}
