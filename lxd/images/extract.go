package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// tree is one extraction destination, held by a directory fd.
type tree struct {
	rootFd   int
	path     string
	uid, gid int // our own ids: newly created entries already carry them
}

func openTree(dir string) (*tree, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", dir, err)
	}

	return &tree{rootFd: fd, path: dir, uid: os.Geteuid(), gid: os.Getegid()}, nil
}

func (t *tree) close() { _ = unix.Close(t.rootFd) }

// walker creates entries in a tree. Each goroutine has its own: it caches the parent
// directory of its previous entry, since tarballs list a directory's entries together.
type walker struct {
	t        *tree
	cacheRel string
	cacheFd  int
}

func newWalker(t *tree) *walker { return &walker{t: t, cacheFd: -1} }

func (w *walker) close() {
	if w.cacheFd >= 0 {
		_ = unix.Close(w.cacheFd)
	}

	w.cacheFd = -1
	w.cacheRel = ""
}

// parent returns an fd of directory rel (owned by the walker), creating it inside the root
// if missing. The fd stays valid and inside the root whatever later entries do.
func (w *walker) parent(rel string) (int, error) {
	if rel == "" {
		return w.t.rootFd, nil
	}

	if w.cacheFd >= 0 && rel == w.cacheRel {
		return w.cacheFd, nil
	}

	fd, err := mkdirAllInRoot(w.t.rootFd, rel, 0o755, 0, 0)
	if err != nil {
		return -1, fmt.Errorf("resolving parent directory %q: %w", rel, err)
	}

	w.setCache(rel, fd)

	return fd, nil
}

func (w *walker) setCache(rel string, fd int) {
	w.close()
	w.cacheRel = rel
	w.cacheFd = fd
}

// extract creates one entry at comps (non-empty). A regular file's content comes from data
// when it is not nil, else from r.
func (w *walker) extract(hdr *tar.Header, comps []string, data []byte, r io.Reader, buf []byte) error {
	rel := strings.Join(comps, "/")
	if rel == w.cacheRel {
		w.close() // the entry replaces the cached directory
	}

	pfd, err := w.parent(strings.Join(comps[:len(comps)-1], "/"))
	if err != nil {
		return err
	}

	base := comps[len(comps)-1]

	switch hdr.Typeflag {
	case tar.TypeDir:
		return w.extractDir(pfd, base, rel, hdr)
	case tar.TypeReg, tar.TypeGNUSparse:
		return w.extractFile(pfd, base, hdr, data, r, buf)
	case tar.TypeSymlink:
		return w.extractSymlink(pfd, base, hdr)
	case tar.TypeLink:
		return w.extractHardlink(pfd, base, rel, hdr)
	case tar.TypeFifo:
		return w.extractFifo(pfd, base, hdr)
	}

	return fmt.Errorf("unexpected entry type %q", hdr.Typeflag)
}

func (w *walker) extractDir(pfd int, base, rel string, hdr *tar.Header) error {
	err := unix.Mkdirat(pfd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t

		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			err = unix.Unlinkat(pfd, base, 0)
			if err == nil {
				err = unix.Mkdirat(pfd, base, 0o700)
			}
		}
	}

	if err != nil {
		return fmt.Errorf("creating directory: %w", err)
	}

	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening directory: %w", err)
	}

	err = w.t.applyMeta(fd, hdr)
	if err != nil {
		_ = unix.Close(fd)
		return err
	}

	// Its entries usually come next: keep it as the cached parent.
	w.setCache(rel, fd)

	return nil
}

// sparseWriter is sparse.TarReader's WriteSparse.
type sparseWriter interface {
	WriteSparse(fd int) (bool, error)
}

func (w *walker) extractFile(pfd int, base string, hdr *tar.Header, data []byte, r io.Reader, buf []byte) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC

	fd, err := unix.Openat(pfd, base, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		err = removeAt(pfd, base)
		if err == nil {
			fd, err = unix.Openat(pfd, base, flags, 0o600)
		}
	}

	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}

	defer unix.Close(fd)

	// A sparse entry is written run by run: its holes are never read or written.
	sparseDone := false
	if sr, ok := r.(sparseWriter); ok && data == nil {
		sparseDone, err = sr.WriteSparse(fd)
	}

	switch {
	case sparseDone:
	case data != nil:
		err = writeAll(fd, data)
	default:
		err = copyToFd(fd, r, buf)
	}

	if err != nil {
		return err
	}

	err = w.t.applyMeta(fd, hdr)
	if err != nil {
		return err
	}

	err = unix.UtimesNanoAt(fd, "", timespecs(hdr), unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("setting times: %w", err)
	}

	return nil
}

func (w *walker) extractSymlink(pfd int, base string, hdr *tar.Header) error {
	err := unix.Symlinkat(hdr.Linkname, pfd, base)
	if errors.Is(err, unix.EEXIST) {
		err = removeAt(pfd, base)
		if err == nil {
			err = unix.Symlinkat(hdr.Linkname, pfd, base)
		}
	}

	if err != nil {
		return fmt.Errorf("creating symlink: %w", err)
	}

	return w.t.applyMetaAt(pfd, base, hdr)
}

// hardlinkSource checks a hard link's target and returns its path inside rootfs/.
func hardlinkSource(hdr *tar.Header) ([]string, error) {
	comps, err := splitEntryName(hdr.Linkname)
	if err != nil {
		return nil, err
	}

	if len(comps) < 2 || comps[0] != "rootfs" {
		return nil, fmt.Errorf("%w: hard link target %q is outside rootfs/", ErrUnsafePath, hdr.Linkname)
	}

	return comps[1:], nil
}

func (w *walker) extractHardlink(pfd int, base, rel string, hdr *tar.Header) error {
	comps, err := hardlinkSource(hdr)
	if err != nil {
		return err
	}

	if strings.Join(comps, "/") == rel {
		return nil
	}

	srcFd, err := openInRoot(w.t.rootFd, strings.Join(comps[:len(comps)-1], "/"), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("resolving hard link target %q: %w", hdr.Linkname, err)
	}

	defer unix.Close(srcFd)

	srcBase := comps[len(comps)-1]

	// Flags 0: link the target entry itself, never what a symlink there points to.
	err = unix.Linkat(srcFd, srcBase, pfd, base, 0)
	if errors.Is(err, unix.EEXIST) {
		err = removeAt(pfd, base)
		if err == nil {
			err = unix.Linkat(srcFd, srcBase, pfd, base, 0)
		}
	}

	if err != nil {
		return fmt.Errorf("creating hard link to %q: %w", hdr.Linkname, err)
	}

	return nil
}

func (w *walker) extractFifo(pfd int, base string, hdr *tar.Header) error {
	err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0)
	if errors.Is(err, unix.EEXIST) {
		err = removeAt(pfd, base)
		if err == nil {
			err = unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0)
		}
	}

	if err != nil {
		return fmt.Errorf("creating fifo: %w", err)
	}

	err = unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		// We just created base as a fifo in pfd; fchmodat could only follow a symlink here
		// if something raced us inside a tree nobody else uses yet.
		err = unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0)
	}

	if err == nil {
		err = unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW)
	}

	if err != nil {
		return fmt.Errorf("applying fifo attributes: %w", err)
	}

	return nil
}

// applyMeta sets owner, xattrs and mode on an open entry, in that order: chown clears
// setuid bits and security.capability, so both must come after it.
func (t *tree) applyMeta(fd int, hdr *tar.Header) error {
	if hdr.Uid != t.uid || hdr.Gid != t.gid {
		err := unix.Fchown(fd, hdr.Uid, hdr.Gid)
		if err != nil {
			return fmt.Errorf("changing owner: %w", err)
		}
	}

	for key, val := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if !ok || name == "security.selinux" {
			continue
		}

		err := unix.Fsetxattr(fd, name, []byte(val), 0)
		if err != nil {
			return fmt.Errorf("setting xattr %q: %w", name, err)
		}
	}

	err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777))
	if err != nil {
		return fmt.Errorf("changing mode: %w", err)
	}

	return nil
}

// applyMetaAt sets owner and times of a symlink without following it.
func (t *tree) applyMetaAt(pfd int, base string, hdr *tar.Header) error {
	if hdr.Uid != t.uid || hdr.Gid != t.gid {
		err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("changing owner: %w", err)
		}
	}

	err := unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("setting times: %w", err)
	}

	return nil
}

type dirTime struct {
	rel   string
	times []unix.Timespec
}

// setDirTimes applies directory mtimes last-listed first: creating entries changes a
// directory's mtime, so this runs after everything else.
func (t *tree) setDirTimes(dirs []dirTime) error {
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]

		fd := t.rootFd
		if d.rel != "" {
			var err error

			fd, err = openInRoot(t.rootFd, d.rel, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			if err != nil {
				return fmt.Errorf("setting times of %q: %w", d.rel, err)
			}
		}

		err := unix.UtimesNanoAt(fd, "", d.times, unix.AT_EMPTY_PATH)
		if fd != t.rootFd {
			_ = unix.Close(fd)
		}

		if err != nil {
			return fmt.Errorf("setting times of %q: %w", d.rel, err)
		}
	}

	return nil
}

func timespecs(hdr *tar.Header) []unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}

	return []unix.Timespec{toTimespec(atime), toTimespec(hdr.ModTime)}
}

func toTimespec(t time.Time) unix.Timespec {
	return unix.NsecToTimespec(t.UnixNano())
}

// removeAt removes whatever non-directory or empty directory sits at base in pfd.
func removeAt(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	}

	return err
}

// writeAll writes data to fd, retrying short writes.
func writeAll(fd int, data []byte) error {
	for off := 0; off < len(data); {
		n, err := unix.Write(fd, data[off:])
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return fmt.Errorf("writing file: %w", err)
		}

		off += n
	}

	return nil
}

// copyToFd writes all of r to fd through buf.
func copyToFd(fd int, r io.Reader, buf []byte) error {
	for {
		n, err := r.Read(buf)

		werr := writeAll(fd, buf[:n])
		if werr != nil {
			return werr
		}

		if errors.Is(err, io.EOF) {
			return nil
		}

		if err != nil {
			return fmt.Errorf("reading image entry: %w", err)
		}
	}
}
