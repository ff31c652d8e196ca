// Package fileio reads and writes files inside a container's root directory on behalf of
// the API, never on the host.
//
// Every path is resolved by the kernel with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)
// relative to a directory fd that stands for the container's "/": absolute symlinks and
// ".." stop at that root, whatever the container plants or swaps while we work. The final
// component of a path is never followed when creating or removing; a regular file is opened
// through an O_PATH fd that was checked first, so a FIFO or device node is never opened;
// nothing is written on a kernel interface filesystem (proc, sysfs, cgroup, ...: fsmagic.go).
//
// Who does the work depends on the container's state (lxd/session/files.go):
//
//   - a running container's tree is only ever touched by its file server (server.go), a
//     helper that joined the container's user and mount namespaces and is the container's
//     root: the kernel checks every open as container root, so a host file the container
//     bind-mounted into its tree (say /proc/sys/kernel/core_pattern from a procfs it
//     mounted) is refused by the kernel, not by us. The daemon talks to it with Client;
//   - a stopped container's rootfs, mounted on the host, is opened here by the daemon with
//     OpenRoot: no container mount exists then, and RESOLVE_NO_XDEV makes sure no mount is
//     crossed anyway.
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
	fd      int
	resolve uint64 // RESOLVE_* flags beyond RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS
	proc    int    // a procfs that shows this process, to reopen O_PATH fds; -1: /proc
}

// OpenRoot opens dir, a tree the daemon reaches on the host (a stopped container's mounted
// rootfs), as the root of later operations. No path below it may cross a mount point
// (RESOLVE_NO_XDEV): whatever is mounted there is not the container's tree.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening root %q: %w", dir, err)
	}

	return &Root{fd: fd, resolve: unix.RESOLVE_NO_XDEV, proc: -1}, nil
}

// openMountedRoot opens this process's "/" as the root, crossing the mounts below it: the
// file server's, whose "/" is the container's (and whose mounts are the container's own).
// proc is an fd of a procfs in which this process is visible (the container's shows only
// its own pid namespace).
func openMountedRoot(proc int) (*Root, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening root: %w", err)
	}

	return &Root{fd: fd, proc: proc}, nil
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
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | r.resolve,
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
// no path is resolved again; the open is checked against our credentials as any other.
func (r *Root) reopen(fd int, flags int) (*os.File, error) { return reopenAt(r.proc, fd, flags) }

// reopenAt reopens fd through the procfs proc (-1: /proc).
func reopenAt(proc, fd int, flags int) (*os.File, error) {
	link := fmt.Sprintf("self/fd/%d", fd)
	var nfd int
	var err error
	if proc >= 0 {
		nfd, err = unix.Openat(proc, link, flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	} else {
		nfd, err = unix.Open("/proc/"+link, flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	}

	if err != nil {
		return nil, fmt.Errorf("reopening: %w", err)
	}

	return os.NewFile(uintptr(nfd), link), nil
}
