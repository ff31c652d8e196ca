package fileio

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// Owner is the uid and gid to give new entries, as the process doing the work sees them:
// host ids in the daemon (a stopped container's rootfs), the container's own ids in the
// file server.
type Owner struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
}

// WriteFile writes body to the regular file p, creating it (with mode and owner) if it is
// missing, else truncating it or, with appendMode, appending to it; an existing file keeps
// its mode and owner (LXD semantics). The last component is never followed: a symlink
// there is refused (400), as is anything that is not a regular file. The parent directory
// must exist. It returns whether the file was created.
func (r *Root) WriteFile(p string, body io.Reader, appendMode bool, mode uint32, owner Owner) (bool, error) {
	pfd, base, err := r.parent(p)
	if err != nil {
		return false, err
	}

	defer unix.Close(pfd)

	err = checkWritable(pfd, p)
	if err != nil {
		return false, err
	}

	f, created, err := r.openForWrite(pfd, base, p, appendMode, mode, owner)
	if err != nil {
		return false, err
	}

	_, err = copyContent(f, body)
	closeErr := f.Close()
	if err == nil {
		err = closeErr
	}

	if err != nil {
		return created, fmt.Errorf("writing %q: %w", p, err)
	}

	return created, nil
}

func (r *Root) openForWrite(pfd int, base, p string, appendMode bool, mode uint32, owner Owner) (*os.File, bool, error) {
	for range 8 {
		fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			f, err := create(pfd, base, p, mode, owner)
			if errors.Is(err, unix.EEXIST) {
				continue // created under our feet: look again
			}

			return f, err == nil, err
		}

		if err != nil {
			return nil, false, pathError(p, fmt.Errorf("looking up: %w", err))
		}

		f, err := r.openExisting(fd, p, appendMode)
		_ = unix.Close(fd)
		return f, false, err
	}

	return nil, false, api.StatusErrorf(http.StatusConflict, "%q keeps changing", p)
}

func create(pfd int, base, p string, mode uint32, owner Owner) (*os.File, error) {
	fd := -1
	err := asOwner(owner, func() error {
		var err error
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if errors.Is(err, unix.EEXIST) {
		return nil, err
	}

	if err != nil {
		return nil, pathError(p, fmt.Errorf("creating: %w", err))
	}

	f := os.NewFile(uintptr(fd), p)

	// chown clears setuid bits, so the mode comes after it.
	err = unix.Fchown(fd, owner.UID, owner.GID)
	if err == nil {
		err = unix.Fchmod(fd, mode&0o7777)
	}

	if err != nil {
		_ = f.Close()
		_ = unix.Unlinkat(pfd, base, 0)
		return nil, fmt.Errorf("setting owner and mode of %q: %w", p, err)
	}

	return f, nil
}

func (r *Root) openExisting(fd int, p string, appendMode bool) (*os.File, error) {
	return openExisting(r.proc, fd, p, appendMode)
}

// OpenExisting opens the regular file behind the O_PATH fd for writing, truncated, after
// the checks the files API makes (a regular file, not a kernel interface), reopening it
// through the host's /proc: for writers outside this package that run where it shows
// them (template rendering).
func OpenExisting(fd int, p string) (*os.File, error) { return openExisting(-1, fd, p, false) }

// openExisting is openExisting of a Root whose procfs is proc (-1: /proc).
func openExisting(proc, fd int, p string, appendMode bool) (*os.File, error) {
	var st unix.Stat_t
	err := unix.Fstat(fd, &st)
	if err != nil {
		return nil, fmt.Errorf("stating %q: %w", p, err)
	}

	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return nil, api.StatusErrorf(http.StatusBadRequest, "%q is a symlink", p)
	case unix.S_IFDIR:
		return nil, api.StatusErrorf(http.StatusBadRequest, "%q is a directory", p)
	default:
		return nil, api.StatusErrorf(http.StatusBadRequest, "%q is not a regular file", p)
	}

	// Before the open for writing, which truncates: the O_PATH fd is the very inode.
	err = checkWritable(fd, p)
	if err != nil {
		return nil, err
	}

	flags := unix.O_WRONLY | unix.O_TRUNC | unix.O_NONBLOCK
	if appendMode {
		flags = unix.O_WRONLY | unix.O_APPEND | unix.O_NONBLOCK
	}

	f, err := reopenAt(proc, fd, flags)
	if err != nil {
		return nil, pathError(p, err)
	}

	return f, nil
}

// Mkdir creates directory p with mode and owner. An existing directory is left as it is;
// anything else there is a 409.
func (r *Root) Mkdir(p string, mode uint32, owner Owner) error {
	if p == "/" {
		return nil
	}

	pfd, base, err := r.parent(p)
	if err != nil {
		return err
	}

	defer unix.Close(pfd)

	err = checkWritable(pfd, p)
	if err != nil {
		return err
	}

	err = asOwner(owner, func() error { return unix.Mkdirat(pfd, base, 0o700) })
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return api.StatusErrorf(http.StatusConflict, "%q exists and is not a directory", p)
		}

		return nil
	}

	if err != nil {
		return pathError(p, err)
	}

	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathError(p, err)
	}

	defer unix.Close(fd)

	err = unix.Fchown(fd, owner.UID, owner.GID)
	if err == nil {
		err = unix.Fchmod(fd, mode&0o7777)
	}

	if err != nil {
		return fmt.Errorf("setting owner and mode of %q: %w", p, err)
	}

	return nil
}

// Symlink makes p a symlink to target (stored as given: it is resolved inside the
// container when used). A symlink already pointing there is left alone; another symlink or
// file at p is replaced; a directory is a 409.
func (r *Root) Symlink(target, p string, owner Owner) error {
	if target == "" || len(target) > 4095 {
		return api.StatusErrorf(http.StatusBadRequest, "invalid symlink target")
	}

	pfd, base, err := r.parent(p)
	if err != nil {
		return err
	}

	defer unix.Close(pfd)

	err = checkWritable(pfd, p)
	if err != nil {
		return err
	}

	var st unix.Stat_t
	err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			return api.StatusErrorf(http.StatusConflict, "%q is a directory", p)
		case unix.S_IFLNK:
			old, err := readlinkAt(pfd, base)
			if err == nil && old == target {
				return nil
			}
		}

		err = unix.Unlinkat(pfd, base, 0)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return pathError(p, err)
		}
	}

	err = asOwner(owner, func() error { return unix.Symlinkat(target, pfd, base) })
	if err != nil {
		return pathError(p, err)
	}

	err = unix.Fchownat(pfd, base, owner.UID, owner.GID, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("setting owner of %q: %w", p, err)
	}

	return nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}

	return string(buf[:n]), nil
}

// Remove deletes p; a directory goes with everything below it. Nothing below is followed:
// each directory is opened with O_NOFOLLOW relative to its parent's fd. "/" is refused.
func (r *Root) Remove(p string) error {
	pfd, base, err := r.parent(p)
	if err != nil {
		return err
	}

	defer unix.Close(pfd)

	err = checkWritable(pfd, p)
	if err != nil {
		return err
	}

	var st unix.Stat_t
	err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return pathError(p, err)
	}

	err = removeAt(pfd, base)
	if err != nil {
		return pathError(p, err)
	}

	return nil
}

// removeAt removes name in dirfd, recursing into directories through fds.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}

	if !errors.Is(err, unix.EISDIR) {
		return err
	}

	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}

	// A mount below (the container's procfs, say) is not emptied either.
	err = checkWritable(fd, name)
	if err != nil {
		_ = unix.Close(fd)
		return err
	}

	dir := os.NewFile(uintptr(fd), name)
	names, err := dir.Readdirnames(-1)
	if err != nil {
		_ = dir.Close()
		return err
	}

	for _, n := range names {
		err := removeAt(fd, n)
		if err != nil {
			_ = dir.Close()
			return err
		}
	}

	_ = dir.Close()
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}
