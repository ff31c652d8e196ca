package idmap

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// CopyShifted copies the tree at src to dst (which must not exist), moving every owner into
// the set: uid u becomes HostUID+u and gid g becomes HostGID+g. It keeps modes (setuid bits
// included), timestamps, symlinks, device nodes, fifos, hard links within the tree and
// xattrs. Ids inside xattrs are shifted too: security.capability is rewritten as a v3
// (namespaced) capability whose rootid is the shifted root, so file capabilities work for
// the container's root and nobody else; POSIX ACL entries get shifted ids. Symlinks are
// never followed. An owner outside [0, Size) is an error.
//
// Preconditions: runs as host root; nothing else writes under dst while it runs.
func (s Set) CopyShifted(src, dst string) error {
	return copyTree(src, dst, s)
}

// copyTree copies src to dst moving owners (and ids inside xattrs) through m.
func copyTree(src, dst string, m mapper) error {
	c := copier{set: m, links: map[fileKey]string{}}

	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}

		return c.copyEntry(path, filepath.Join(dst, rel), d)
	})
	if err != nil {
		return fmt.Errorf("copying %q to %q shifted: %w", src, dst, err)
	}

	// Directory times last, deepest first, since creating entries bumped them.
	for i := len(c.dirs) - 1; i >= 0; i-- {
		err := setTimes(c.dirs[i].path, c.dirs[i].st)
		if err != nil {
			return fmt.Errorf("copying %q to %q shifted: %w", src, dst, err)
		}
	}

	return nil
}

type fileKey struct{ dev, ino uint64 }

type dirTimes struct {
	path string
	st   *syscall.Stat_t
}

type copier struct {
	set   mapper
	links map[fileKey]string // first copy of each multiply-linked file
	dirs  []dirTimes
}

func (c *copier) copyEntry(src, dst string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}

	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("reading ownership of %q: no stat", src)
	}

	uid := c.set.UIDToHost(int64(st.Uid))
	gid := c.set.GIDToHost(int64(st.Gid))
	if uid < 0 || gid < 0 {
		return fmt.Errorf("shifting %q: owner %d:%d outside the map", src, st.Uid, st.Gid)
	}

	perm := st.Mode & 0o7777
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		err = os.Mkdir(dst, 0o700)
		if err != nil {
			return err
		}

		c.dirs = append(c.dirs, dirTimes{dst, st})

	case syscall.S_IFREG:
		key := fileKey{uint64(st.Dev), st.Ino}
		if st.Nlink > 1 {
			first, seen := c.links[key]
			if seen {
				return os.Link(first, dst)
			}

			c.links[key] = dst
		}

		err = c.copyData(src, dst)
		if err != nil {
			return err
		}

	case syscall.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}

		err = os.Symlink(target, dst)
		if err != nil {
			return err
		}

	case syscall.S_IFCHR, syscall.S_IFBLK, syscall.S_IFIFO, syscall.S_IFSOCK:
		err = unix.Mknod(dst, st.Mode&syscall.S_IFMT|0o600, int(st.Rdev))
		if err != nil {
			return fmt.Errorf("creating node %q: %w", dst, err)
		}

	default:
		return fmt.Errorf("copying %q: unknown file type %o", src, st.Mode&syscall.S_IFMT)
	}

	// chown clears setuid bits and file capabilities, so mode and xattrs come after it.
	err = os.Lchown(dst, int(uid), int(gid))
	if err != nil {
		return err
	}

	isLink := st.Mode&syscall.S_IFMT == syscall.S_IFLNK
	if !isLink {
		err = unix.Fchmodat(unix.AT_FDCWD, dst, perm, 0)
		if err != nil {
			return fmt.Errorf("setting mode of %q: %w", dst, err)
		}
	}

	err = c.copyXattrs(src, dst)
	if err != nil {
		return err
	}

	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return nil
	}

	return setTimes(dst, st)
}

func (c *copier) copyData(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}

	defer func() { _ = in.Close() }()

	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}

	// *os.File.ReadFrom uses copy_file_range, so same-filesystem copies stay in the kernel
	// (and share extents where the filesystem reflinks).
	_, err = io.Copy(out, in)
	closeErr := out.Close()
	if err != nil {
		return fmt.Errorf("copying data of %q: %w", src, err)
	}

	return closeErr
}

func (c *copier) copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}

	for _, name := range names {
		value, err := getXattr(src, name)
		if err != nil {
			return err
		}

		switch name {
		case "security.capability":
			value, err = c.set.shiftCapability(value)
		case "system.posix_acl_access", "system.posix_acl_default":
			value, err = c.set.shiftACL(value)
		}

		if err != nil {
			return fmt.Errorf("shifting %s of %q: %w", name, src, err)
		}

		err = unix.Lsetxattr(dst, name, value, 0)
		if errors.Is(err, unix.EOPNOTSUPP) {
			// The destination filesystem lacks this namespace (e.g. no SELinux labels).
			continue
		}

		if err != nil {
			return fmt.Errorf("setting %s on %q: %w", name, dst, err)
		}
	}

	return nil
}

func setTimes(path string, st *syscall.Stat_t) error {
	ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}

	err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("setting times of %q: %w", path, err)
	}

	return nil
}
