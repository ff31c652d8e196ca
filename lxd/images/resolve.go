package images

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// openInRoot opens p beneath rootFd as if rootFd were "/": absolute symlinks and ".." stop
// at rootFd, and magic links (/proc/*/fd) are refused. The kernel does the resolving, so a
// symlink planted by hostile content can never reach the host.
//
// A path longer than openat2 takes (PATH_MAX) is opened in pieces, each beneath the
// directory the previous one reached: a tree built inside a container can be deeper than
// any single path.
func openInRoot(rootFd int, p string, flags uint64, mode uint64) (int, error) {
	if len(p) <= maxPiece {
		return openPiece(rootFd, p, flags, mode)
	}

	comps := strings.Split(p, "/")
	fd := rootFd
	for len(comps) > 0 {
		n, size := 0, 0
		for n < len(comps) && size+len(comps[n])+1 <= maxPiece {
			size += len(comps[n]) + 1
			n++
		}

		n = max(n, 1)
		f, m := uint64(unix.O_PATH|unix.O_DIRECTORY), uint64(0)
		if n == len(comps) {
			f, m = flags, mode
		}

		next, err := openPiece(fd, strings.Join(comps[:n], "/"), f, m)
		if fd != rootFd {
			_ = unix.Close(fd)
		}

		if err != nil {
			return -1, err
		}

		fd, comps = next, comps[n:]
	}

	return fd, nil
}

// maxPiece keeps each openat2 path well below PATH_MAX.
const maxPiece = 2048

func openPiece(rootFd int, p string, flags uint64, mode uint64) (int, error) {
	if p == "" {
		p = "."
	}

	how := &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Mode:    mode,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}

	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(rootFd, p, how)
		// EAGAIN means a concurrent rename raced the lookup; the kernel asks us to retry.
		if (errors.Is(err, unix.EAGAIN) && tries < 32) || errors.Is(err, unix.EINTR) {
			continue
		}

		return fd, err
	}
}

// mkdirAllInRoot returns a read-only fd of directory p beneath rootFd (resolved as by
// openInRoot), creating missing components with mode and owner.
func mkdirAllInRoot(rootFd int, p string, mode uint32, uid, gid int) (int, error) {
	fd, err := openInRoot(rootFd, p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}

	parentFd := rootFd
	closeParent := func() {
		if parentFd != rootFd {
			_ = unix.Close(parentFd)
		}
	}

	defer func() { closeParent() }()

	comps := strings.Split(p, "/")
	for i, c := range comps {
		if c == "" || c == "." {
			continue
		}

		if c == ".." {
			return -1, fmt.Errorf("creating %q: path contains \"..\"", p)
		}

		fd, err := openInRoot(rootFd, strings.Join(comps[:i+1], "/"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if errors.Is(err, unix.ENOENT) {
			fd, err = mkdirAt(parentFd, c, mode, uid, gid)
		}

		if err != nil {
			return -1, err
		}

		closeParent()
		parentFd = fd
	}

	fd = parentFd
	parentFd = rootFd // keep it open for the caller

	return fd, nil
}

// mkdirAt creates directory name in dirFd (a single component, never followed) and returns
// an fd of it. An existing directory is opened as is.
func mkdirAt(dirFd int, name string, mode uint32, uid, gid int) (int, error) {
	err := unix.Mkdirat(dirFd, name, 0o700)
	created := err == nil
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}

	fd, err := unix.Openat(dirFd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}

	if !created {
		return fd, nil
	}

	err = unix.Fchown(fd, uid, gid)
	if err == nil {
		err = unix.Fchmod(fd, mode)
	}

	if err != nil {
		_ = unix.Close(fd)
		return -1, err
	}

	return fd, nil
}
