// Package fileio reads and writes files inside a container's root directory on behalf of
// the API, never on the host.
//
// Every path is resolved by the kernel with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)
// relative to a directory fd that stands for the container's "/": absolute symlinks and
// ".." stop at that root, whatever the container plants or swaps while we work. The final
// component of a path is never followed when creating or removing; a regular file is opened
// through an O_PATH fd that was checked first, so a FIFO or device node is never opened.
//
// For a running container the root fd is /proc/<init>/root: walking from it crosses the
// mounts of the container's own mount namespace (its tmpfs /tmp, /run, /dev/shm), which the
// host's view of the root filesystem does not show.
package fileio

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// Entry types, as the X-LXD-type header spells them.
const (
	TypeFile      = "file"
	TypeDirectory = "directory"
	TypeSymlink   = "symlink"
)

// Root is an open container root directory.
type Root struct {
	fd int
}

// OpenRoot opens dir (following symlinks and magic links such as /proc/<pid>/root) as the
// root of later operations.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening root %q: %w", dir, err)
	}

	return &Root{fd: fd}, nil
}

// Close releases the root fd.
func (r *Root) Close() error {
	if r.fd < 0 {
		return nil
	}

	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// Info describes one entry. UID and GID are host ids.
type Info struct {
	Type    string // TypeFile, TypeDirectory, TypeSymlink, or "other"
	Mode    uint32 // permission bits with setuid, setgid, sticky
	UID     int64
	GID     int64
	Size    int64
	ModTime time.Time
}

func infoOf(st *unix.Stat_t) Info {
	i := Info{
		Mode:    st.Mode & 0o7777,
		UID:     int64(st.Uid),
		GID:     int64(st.Gid),
		Size:    st.Size,
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Type:    "other",
	}

	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		i.Type = TypeFile
	case unix.S_IFDIR:
		i.Type = TypeDirectory
	case unix.S_IFLNK:
		i.Type = TypeSymlink
	}

	return i
}

// Clean turns an API path into an absolute, clean path inside the container: a relative
// path is taken from "/". NUL bytes are refused.
func Clean(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", api.StatusErrorf(http.StatusBadRequest, "path contains a NUL byte")
	}

	if p == "" {
		return "", api.StatusErrorf(http.StatusBadRequest, "missing path")
	}

	return path.Clean("/" + p), nil
}

// split returns the parent directory and the last component of a clean path; the last
// component is "" for "/".
func split(p string) (string, string) {
	if p == "/" {
		return "/", ""
	}

	return path.Dir(p), path.Base(p)
}

// openat2 resolves p beneath the root. EAGAIN (a concurrent rename raced the lookup) and
// EINTR are retried as the kernel asks.
func (r *Root) openat2(p string, flags uint64, mode uint64) (int, error) {
	rel := strings.TrimLeft(p, "/")
	if rel == "" {
		rel = "."
	}

	how := &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Mode:    mode,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}

	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(r.fd, rel, how)
		if (errors.Is(err, unix.EAGAIN) && tries < 64) || errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return -1, pathError(p, fmt.Errorf("resolving: %w", err))
		}

		return fd, nil
	}
}

// parent opens the directory that holds p's last component and returns it with that
// component. p must not be "/".
func (r *Root) parent(p string) (int, string, error) {
	dir, base := split(p)
	if base == "" {
		return -1, "", api.StatusErrorf(http.StatusBadRequest, "path %q has no name to create or remove", p)
	}

	fd, err := r.openat2(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", err
	}

	return fd, base, nil
}

// pathError maps an errno to the API's status codes.
func pathError(p string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return api.NewStatusError(http.StatusNotFound, fmt.Errorf("%q: %w", p, os.ErrNotExist))
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV),
		errors.Is(err, unix.EISDIR), errors.Is(err, unix.ENAMETOOLONG), errors.Is(err, unix.EINVAL):
		return api.StatusErrorf(http.StatusBadRequest, "%q: %v", p, err)
	case errors.Is(err, unix.EEXIST), errors.Is(err, unix.ENOTEMPTY):
		return api.StatusErrorf(http.StatusConflict, "%q: %v", p, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.EROFS):
		return api.StatusErrorf(http.StatusForbidden, "%q: %v", p, err)
	}

	return fmt.Errorf("%q: %w", p, err)
}

// reopen opens the inode behind an O_PATH fd with flags. The magic link is our own fd, so
// no path is resolved again.
func reopen(fd int, flags int) (*os.File, error) {
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reopening: %w", err)
	}

	return f, nil
}
