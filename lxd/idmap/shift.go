package idmap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/fstree"
	"github.com/berth-dev/berth/shared/sparse"
)

// CopyShifted copies the tree at src to dst (which must not exist), moving every owner into
// the set: uid u becomes HostUID+u and gid g becomes HostGID+g. It keeps modes (setuid bits
// included), timestamps, symlinks, device nodes, fifos, sockets, hard links within the tree,
// holes of sparse files and xattrs. Ids inside xattrs are shifted too: security.capability
// is rewritten as a v3 (namespaced) capability whose rootid is the shifted root, so file
// capabilities work for the container's root and nobody else; POSIX ACL entries get
// shifted ids. An owner outside [0, Size) is an error.
//
// The source may be a tree a container built: it is walked with fstree (fd-relative, no
// symlink followed, only regular files opened, depth and hard links bounded) and sparse
// files are copied run by run, never filled.
//
// Preconditions: runs as host root; nothing else writes under src or dst while it runs.
func (s Set) CopyShifted(ctx context.Context, src, dst string) error {
	return copyTree(ctx, src, dst, s)
}

// copyTree copies src to dst moving owners (and ids inside xattrs) through m. Progress
// goes to the context's fstree.Progress.
func copyTree(ctx context.Context, src, dst string, m mapper) error {
	err := os.Mkdir(dst, 0o700)
	if err != nil {
		return fmt.Errorf("copying %q: %w", src, err)
	}

	root, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("copying %q: %w", src, err)
	}

	c := &copier{ctx: ctx, set: m, dst: dst, root: root, links: fstree.NewLinks(fstree.DefaultLimits), prog: fstree.ProgressFrom(ctx)}
	defer c.close()

	err = fstree.Walk(ctx, src, fstree.DefaultLimits, fstree.Visitor{Dir: c.enter, Leave: c.leave, File: c.file})
	if err != nil {
		return fmt.Errorf("copying %q to %q: %w", src, dst, err)
	}

	return nil
}

// copier mirrors the walk in the destination, keeping only its current directory open
// (the parent is reopened through ".." on the way back, as the walk does).
type copier struct {
	ctx   context.Context
	set   mapper
	dst   string
	root  int   // dst, kept open for hard links
	stack []int // fds of the destination directories entered; only the last is open
	links *fstree.Links
	prog  *fstree.Progress
}

func (c *copier) close() {
	_ = unix.Close(c.root)
	for _, fd := range c.stack {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

func (c *copier) cur() int { return c.stack[len(c.stack)-1] }

func (c *copier) owner(e *fstree.Entry) (int, int, error) {
	uid := c.set.UIDToHost(int64(e.Stat.Uid))
	gid := c.set.GIDToHost(int64(e.Stat.Gid))
	if uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("shifting %s: owner %d:%d outside the map", e.Path(), e.Stat.Uid, e.Stat.Gid)
	}

	return int(uid), int(gid), nil
}

func (c *copier) enter(e *fstree.Entry, srcFd int) error {
	uid, gid, err := c.owner(e)
	if err != nil {
		return err
	}

	var fd int
	if e.Depth == 0 {
		fd, err = dupCloexec(c.root)
	} else {
		parent := c.cur()
		err = unix.Mkdirat(parent, e.Name, 0o700)
		if err != nil {
			return fmt.Errorf("creating %s: %w", e.Path(), err)
		}

		fd, err = unix.Openat(parent, e.Name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			_ = unix.Close(parent)
			c.stack[len(c.stack)-1] = -1
		}
	}

	if err != nil {
		return fmt.Errorf("opening copy of %s: %w", e.Path(), err)
	}

	c.stack = append(c.stack, fd)
	c.prog.AddFile()

	// chown clears setuid bits and file capabilities, so mode and xattrs come after it.
	err = unix.Fchown(fd, uid, gid)
	if err == nil {
		err = unix.Fchmod(fd, e.Stat.Mode&0o7777)
	}

	if err != nil {
		return fmt.Errorf("setting owner and mode of %s: %w", e.Path(), err)
	}

	return c.copyXattrs(e, srcFd, func(name string, v []byte) error { return unix.Fsetxattr(fd, name, v, 0) })
}

// leave sets the directory's times (its content bumped them) and returns to its parent.
func (c *copier) leave(e *fstree.Entry, _ int) error {
	fd := c.cur()
	c.stack = c.stack[:len(c.stack)-1]
	defer unix.Close(fd)

	if len(c.stack) == 0 {
		return setTimes(unix.AT_FDCWD, c.dst, &e.Stat)
	}

	parent, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("returning from copy of %s: %w", e.Path(), err)
	}

	c.stack[len(c.stack)-1] = parent
	return setTimes(parent, e.Name, &e.Stat)
}

func (c *copier) file(e *fstree.Entry) error {
	uid, gid, err := c.owner(e)
	if err != nil {
		return err
	}

	c.prog.AddFile()
	dir := c.cur()
	switch e.Type() {
	case unix.S_IFREG:
		first, err := c.links.First(e)
		if err != nil {
			return err
		}

		if first != "" {
			return c.link(first, dir, e)
		}

		return c.copyFile(e, dir, uid, gid)

	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(e.Dir, e.Name, buf)
		if err != nil {
			return fmt.Errorf("reading link %s: %w", e.Path(), err)
		}

		err = unix.Symlinkat(string(buf[:n]), dir, e.Name)
		if err != nil {
			return fmt.Errorf("creating link %s: %w", e.Path(), err)
		}

	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		// Recreated, never opened: a FIFO would block, a device would act. Overlayfs
		// whiteouts are 0:0 character devices and are kept as such.
		err = unix.Mknodat(dir, e.Name, e.Type()|0o600, int(e.Stat.Rdev))
		if err != nil {
			return fmt.Errorf("creating node %s: %w", e.Path(), err)
		}

	default:
		return fmt.Errorf("copying %s: unknown file type %o", e.Path(), e.Type())
	}

	err = unix.Fchownat(dir, e.Name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("setting owner of %s: %w", e.Path(), err)
	}

	if e.Type() != unix.S_IFLNK {
		err = unix.Fchmodat(dir, e.Name, e.Stat.Mode&0o7777, 0)
		if err != nil {
			return fmt.Errorf("setting mode of %s: %w", e.Path(), err)
		}
	}

	p := fmt.Sprintf("/proc/self/fd/%d/%s", dir, e.Name)
	err = c.copyXattrs(e, -1, func(name string, v []byte) error { return unix.Lsetxattr(p, name, v, 0) })
	if err != nil {
		return err
	}

	return setTimes(dir, e.Name, &e.Stat)
}

func (c *copier) copyFile(e *fstree.Entry, dir, uid, gid int) error {
	in, err := e.Open()
	if err != nil {
		return err
	}

	defer unix.Close(in)

	out, err := unix.Openat(dir, e.Name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", e.Path(), err)
	}

	defer unix.Close(out)

	err = sparse.Copy(c.ctx, out, in, e.Stat.Size, c.prog.AddBytes)
	if err != nil {
		return fmt.Errorf("copying data of %s: %w", e.Path(), err)
	}

	err = unix.Fchown(out, uid, gid)
	if err == nil {
		err = unix.Fchmod(out, e.Stat.Mode&0o7777)
	}

	if err != nil {
		return fmt.Errorf("setting owner and mode of %s: %w", e.Path(), err)
	}

	err = c.copyXattrs(e, in, func(name string, v []byte) error { return unix.Fsetxattr(out, name, v, 0) })
	if err != nil {
		return err
	}

	return setTimes(dir, e.Name, &e.Stat)
}

// link makes e a hard link to the copy of first (a path relative to the root that may be
// longer than PATH_MAX: its directory is reached component by component).
func (c *copier) link(first string, dir int, e *fstree.Entry) error {
	parent, base := path.Split(first)
	pfd, err := openDirBeneath(c.root, strings.TrimSuffix(parent, "/"))
	if err != nil {
		return fmt.Errorf("linking %s to %s: %w", e.Path(), first, err)
	}

	defer unix.Close(pfd)

	err = unix.Linkat(pfd, base, dir, e.Name, 0)
	if err != nil {
		return fmt.Errorf("linking %s to %s: %w", e.Path(), first, err)
	}

	return nil
}

// dupCloexec duplicates fd close-on-exec (unix.Dup's copy is not): a directory fd of a
// container's tree left open across the daemon's fork and exec of another program (a
// migration's rsync, dnsmasq, a monitor) would give that program a way around its
// chroot or mount namespace.
func dupCloexec(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

// openDirBeneath opens the directory rel below root, in pieces short enough for openat2.
func openDirBeneath(root int, rel string) (int, error) {
	fd, err := dupCloexec(root)
	if err != nil || rel == "" {
		return fd, err
	}

	parts := strings.Split(rel, "/")
	for len(parts) > 0 {
		n, size := 0, 0
		for n < len(parts) && size+len(parts[n])+1 < 2048 {
			size += len(parts[n]) + 1
			n++
		}

		n = max(n, 1)
		next, err := unix.Openat2(fd, strings.Join(parts[:n], "/"), &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		_ = unix.Close(fd)
		if err != nil {
			return -1, err
		}

		fd, parts = next, parts[n:]
	}

	return fd, nil
}

func (c *copier) copyXattrs(e *fstree.Entry, srcFd int, set func(name string, v []byte) error) error {
	xattrs, err := fstree.Xattrs(e, srcFd)
	if err != nil {
		return err
	}

	for _, x := range xattrs {
		value := x.Value
		switch x.Name {
		case "security.capability":
			value, err = c.set.shiftCapability(value)
		case "system.posix_acl_access", "system.posix_acl_default":
			value, err = c.set.shiftACL(value)
		}

		if err != nil {
			return fmt.Errorf("shifting %s of %s: %w", x.Name, e.Path(), err)
		}

		err = set(x.Name, value)
		if errors.Is(err, unix.EOPNOTSUPP) {
			// The destination filesystem lacks this namespace (e.g. no SELinux labels).
			continue
		}

		if err != nil {
			return fmt.Errorf("setting %s on copy of %s: %w", x.Name, e.Path(), err)
		}
	}

	return nil
}

func setTimes(dir int, name string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}

	err := unix.UtimesNanoAt(dir, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("setting times of %s: %w", name, err)
	}

	return nil
}
