package setup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount targets are resolved with openat2(RESOLVE_IN_ROOT) against an fd of
// the root filesystem, and the mount is made onto /proc/self/fd/<n> of the
// resolved target (runc's approach since CVE-2021-30465). A hostile image
// with /proc -> /etc or /dev -> /host/path therefore can only redirect a
// mount to somewhere inside its own root, never onto a host path. Doing
// every mount after pivot_root would give the same guarantee, but binds of
// host files (/dev/null, the console) need host paths, so we resolve before
// the pivot instead.

const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// root is an open container root filesystem.
type root struct {
	fd   int
	path string
}

func openRoot(path string) (*root, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening root %q: %w", path, err)
	}

	return &root{fd: fd, path: path}, nil
}

func (r *root) close() { _ = unix.Close(r.fd) }

// open resolves rel inside the root and returns an fd (flags plus
// O_CLOEXEC); rel may be absolute, it is relative to the root either way.
func (r *root) open(rel string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags}

	name := strings.TrimPrefix(rel, "/")
	if name == "" {
		name = "."
	}

	for {
		fd, err := unix.Openat2(r.fd, name, &how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}

		if err != nil {
			return -1, fmt.Errorf("resolving %q in %q: %w", rel, r.path, err)
		}

		return fd, nil
	}
}

// kind of object mkpath makes at the end of a path.
type kind int

const (
	kindDir kind = iota
	kindFile
)

// mkpath makes sure rel exists inside the root, creating missing parent
// directories and the last element as k, and returns an O_PATH fd of it.
// Each element is created with *at() calls relative to a parent that was
// itself resolved inside the root, so symlinks cannot lead out of it; a
// dangling symlink is followed the way RESOLVE_IN_ROOT reads it (absolute
// targets start at the container's root, ".." stops there).
func (r *root) mkpath(rel string, k kind, mode uint32) (int, error) {
	return r.mkpathDepth(rel, k, mode, 0)
}

// maxSymlinks matches the kernel's limit on nested symlinks.
const maxSymlinks = 40

func (r *root) mkpathDepth(rel string, k kind, mode uint32, depth int) (int, error) {
	if depth > maxSymlinks {
		return -1, fmt.Errorf("creating %q in %q: %w", rel, r.path, unix.ELOOP)
	}

	fd, err := r.open(rel, unix.O_PATH)
	if err == nil {
		return fd, nil
	}

	if !errors.Is(err, unix.ENOENT) {
		return -1, err
	}

	parts := strings.Split(strings.Trim(path.Clean("/"+rel), "/"), "/")
	cur := "/"

	for i, p := range parts {
		next := path.Join(cur, p)
		last := i == len(parts)-1

		fd, err = r.open(next, unix.O_PATH)
		if err == nil {
			if last {
				return fd, nil
			}

			_ = unix.Close(fd)
			cur = next

			continue
		}

		if !errors.Is(err, unix.ENOENT) {
			return -1, err
		}

		parent, err := r.open(cur, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return -1, err
		}

		target, lerr := readlinkat(parent, p)
		if lerr == nil {
			_ = unix.Close(parent)

			// A dangling symlink: create what it points to instead.
			dest := target
			if !path.IsAbs(dest) {
				dest = path.Join(cur, dest)
			}

			return r.mkpathDepth(path.Join(append([]string{dest}, parts[i+1:]...)...), k, mode, depth+1)
		}

		if last && k == kindFile {
			var f int

			f, err = unix.Openat(parent, p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, mode)
			if err == nil {
				_ = unix.Close(f)
			}
		} else {
			err = unix.Mkdirat(parent, p, mode)
		}

		_ = unix.Close(parent)

		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("creating %q in %q: %w", next, r.path, err)
		}

		cur = next
	}

	return r.open(rel, unix.O_PATH)
}

func readlinkat(dirFD int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)

	n, err := unix.Readlinkat(dirFD, name, buf)
	if err != nil {
		return "", err
	}

	return string(buf[:n]), nil
}

// fdPath names an open fd for mount(2).
func fdPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// mountAt mounts onto rel inside the root, creating it as k if missing.
func (r *root) mountAt(source, rel string, k kind, fstype string, flags uintptr, data string) error {
	fd, err := r.mkpath(rel, k, 0o755)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(fd) }()

	err = unix.Mount(source, fdPath(fd), fstype, flags, data)
	if err != nil {
		return fmt.Errorf("mounting %s %q on %q: %w", fstype, source, rel, err)
	}

	return nil
}

// bindInRoot bind-mounts one path of the root onto another (both resolved
// inside it), optionally read-only. A missing source is skipped: kernels
// differ in which /proc files they have.
func (r *root) bindInRoot(src, dst string, flags uintptr, readOnly bool) error {
	sfd, err := r.open(src, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}

	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(sfd) }()

	dfd, err := r.open(dst, unix.O_PATH)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(dfd) }()

	err = unix.Mount(fdPath(sfd), fdPath(dfd), "", unix.MS_BIND|flags, "")
	if err != nil {
		return fmt.Errorf("binding %q on %q: %w", src, dst, err)
	}

	if !readOnly {
		return nil
	}

	// A bind mount takes its flags from the source; read-only needs a
	// remount of the new mount. The remount sets all flags at once: proc's
	// nosuid, nodev and noexec are repeated so they stay (and get locked
	// with read-only).
	return r.remountBind(dst, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
}

// remountBind sets the per-mount flags of the topmost mount on rel (a bind
// made a moment ago), replacing those it took from its source.
func (r *root) remountBind(rel string, flags uintptr) error {
	fd, err := r.open(rel, unix.O_PATH)
	if err != nil {
		return err
	}

	defer func() { _ = unix.Close(fd) }()

	err = unix.Mount("", fdPath(fd), "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
	if err != nil {
		return fmt.Errorf("remounting %q: %w", rel, err)
	}

	return nil
}

// exists reports whether rel resolves inside the root, and if so whether it
// is a directory.
func (r *root) exists(rel string) (bool, bool) {
	fd, err := r.open(rel, unix.O_PATH)
	if err != nil {
		return false, false
	}

	defer func() { _ = unix.Close(fd) }()

	var st unix.Stat_t

	err = unix.Fstat(fd, &st)
	if err != nil {
		return false, false
	}

	return true, st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// symlink creates a symlink inside dir (an fd opened in the root).
func symlinkAt(dirFD int, name, target string) error {
	err := unix.Symlinkat(target, dirFD, name)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating symlink %q -> %q: %w", name, target, err)
	}

	return nil
}
