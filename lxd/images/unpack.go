package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsafePath is wrapped by Unpack's error for an entry name or hard link target that is
// absolute or contains "..".
var ErrUnsafePath = errors.New("unsafe path in image")

// UnpackStats counts what Unpack did.
type UnpackStats struct {
	Entries        int // entries written
	SkippedDevices int // character and block device nodes (Berth provides /dev)
	SkippedOther   int // entries outside metadata.yaml, templates/ and rootfs/, or of other types
}

// Unpacker extracts unified image tarballs.
type Unpacker struct {
	Log *slog.Logger
}

// Unpack extracts tarball with the process's default logger; see Unpacker.Unpack.
func Unpack(tarball, rootfsDir, metaDir string) error {
	_, err := (&Unpacker{Log: slog.Default()}).Unpack(tarball, rootfsDir, metaDir)
	return err
}

// Unpack extracts a unified image tarball: rootfs/… into rootfsDir and metadata.yaml plus
// templates/… into metaDir (both must exist). Entries are hostile: an absolute name, a ".."
// component or a hard link to outside rootfs/ fails the whole unpack with ErrUnsafePath;
// parent directories are resolved inside the destination root (symlinks planted by earlier
// entries resolve as they would in the container, never on the host); every entry is
// created with *at calls that do not follow its final component. Modes (with setuid bits),
// numeric owners, mtimes and SCHILY.xattr.* records are applied; device nodes are skipped.
func (u *Unpacker) Unpack(tarball, rootfsDir, metaDir string) (UnpackStats, error) {
	var stats UnpackStats

	f, err := os.Open(tarball)
	if err != nil {
		return stats, fmt.Errorf("opening image %q: %w", tarball, err)
	}

	defer f.Close()

	tr, closer, err := OpenTar(f)
	if err != nil {
		return stats, err
	}

	defer closer.Close()

	rootfs, err := openTree(rootfsDir, false, &stats)
	if err != nil {
		return stats, err
	}

	defer rootfs.close()

	meta, err := openTree(metaDir, true, &stats)
	if err != nil {
		return stats, err
	}

	defer meta.close()

	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)

	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		if err != nil {
			return stats, fmt.Errorf("reading image %q: %w", tarball, err)
		}

		comps, err := splitEntryName(hdr.Name)
		if err != nil {
			return stats, err
		}

		t, rel := route(comps, rootfs, meta)
		if t == nil {
			stats.SkippedOther++
			continue
		}

		err = t.extract(hdr, rel, tr, *bufp)
		if err != nil {
			return stats, fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
	}

	err = rootfs.finish()
	if err == nil {
		err = meta.finish()
	}

	if err != nil {
		return stats, err
	}

	if stats.SkippedDevices > 0 || stats.SkippedOther > 0 {
		u.Log.Info("Skipped image entries", "image", tarball, "devices", stats.SkippedDevices, "other", stats.SkippedOther)
	}

	return stats, nil
}

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 256<<10)
	return &b
}}

// splitEntryName returns the components of an entry name without "" and "." ones, refusing
// absolute names and "..".
func splitEntryName(name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("%w: %q is absolute", ErrUnsafePath, name)
	}

	var comps []string

	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("%w: %q contains \"..\"", ErrUnsafePath, name)
		}

		comps = append(comps, c)
	}

	return comps, nil
}

// route picks the destination tree of an entry and its path inside it.
func route(comps []string, rootfs, meta *tree) (*tree, []string) {
	switch {
	case len(comps) == 0:
		return nil, nil
	case comps[0] == "rootfs":
		return rootfs, comps[1:]
	case comps[0] == "templates":
		return meta, comps
	case len(comps) == 1 && comps[0] == "metadata.yaml":
		return meta, comps
	}

	return nil, nil
}

// tree is one extraction destination, held by a directory fd.
type tree struct {
	rootFd   int
	path     string
	metadata bool // only directories and regular files are allowed
	uid, gid int  // our own ids: newly created files already carry them
	stats    *UnpackStats

	// The parent of the previous entry: tarballs list a directory's entries together.
	cacheRel string
	cacheFd  int

	dirs []dirTime // applied last, since creating children changes a directory's mtime
}

type dirTime struct {
	rel   string
	times []unix.Timespec
}

func openTree(dir string, metadata bool, stats *UnpackStats) (*tree, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", dir, err)
	}

	return &tree{rootFd: fd, path: dir, metadata: metadata, uid: os.Geteuid(), gid: os.Getegid(), stats: stats, cacheFd: -1}, nil
}

func (t *tree) close() {
	t.dropCache()
	_ = unix.Close(t.rootFd)
}

func (t *tree) dropCache() {
	if t.cacheFd >= 0 {
		_ = unix.Close(t.cacheFd)
	}

	t.cacheFd = -1
	t.cacheRel = ""
}

// parent returns an fd of the directory rel (not to be closed by the caller), creating it
// inside the root if missing.
func (t *tree) parent(rel string) (int, error) {
	if rel == "" {
		return t.rootFd, nil
	}

	if t.cacheFd >= 0 && rel == t.cacheRel {
		return t.cacheFd, nil
	}

	fd, err := mkdirAllInRoot(t.rootFd, rel, 0o755, 0, 0)
	if err != nil {
		return -1, fmt.Errorf("resolving parent directory %q: %w", rel, err)
	}

	t.setCache(rel, fd)

	return fd, nil
}

func (t *tree) setCache(rel string, fd int) {
	t.dropCache()
	t.cacheRel = rel
	t.cacheFd = fd
}

func (t *tree) extract(hdr *tar.Header, comps []string, r io.Reader, buf []byte) error {
	if t.metadata && hdr.Typeflag != tar.TypeDir && hdr.Typeflag != tar.TypeReg {
		t.stats.SkippedOther++
		return nil
	}

	if len(comps) == 0 {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the root must be a directory", ErrUnsafePath)
		}

		t.dirs = append(t.dirs, dirTime{rel: "", times: timespecs(hdr)})
		t.stats.Entries++

		return t.applyMeta(t.rootFd, hdr)
	}

	rel := strings.Join(comps, "/")
	if rel == t.cacheRel {
		t.dropCache() // the entry replaces the cached directory
	}

	pfd, err := t.parent(strings.Join(comps[:len(comps)-1], "/"))
	if err != nil {
		return err
	}

	base := comps[len(comps)-1]

	switch hdr.Typeflag {
	case tar.TypeDir:
		err = t.extractDir(pfd, base, rel, hdr)
	case tar.TypeReg, tar.TypeGNUSparse:
		err = t.extractFile(pfd, base, hdr, r, buf)
	case tar.TypeSymlink:
		err = t.extractSymlink(pfd, base, hdr)
	case tar.TypeLink:
		err = t.extractHardlink(pfd, base, rel, hdr)
	case tar.TypeFifo:
		err = t.extractFifo(pfd, base, hdr)
	case tar.TypeChar, tar.TypeBlock:
		t.stats.SkippedDevices++
		return nil
	default:
		t.stats.SkippedOther++
		return nil
	}

	if err != nil {
		return err
	}

	t.stats.Entries++

	return nil
}

func (t *tree) extractDir(pfd int, base, rel string, hdr *tar.Header) error {
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

	err = t.applyMeta(fd, hdr)
	if err != nil {
		_ = unix.Close(fd)
		return err
	}

	// Its entries usually come next: keep it as the cached parent.
	t.setCache(rel, fd)
	t.dirs = append(t.dirs, dirTime{rel: rel, times: timespecs(hdr)})

	return nil
}

func (t *tree) extractFile(pfd int, base string, hdr *tar.Header, r io.Reader, buf []byte) error {
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

	err = copyToFd(fd, r, buf)
	if err != nil {
		return err
	}

	err = t.applyMeta(fd, hdr)
	if err != nil {
		return err
	}

	err = unix.UtimesNanoAt(fd, "", timespecs(hdr), unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("setting times: %w", err)
	}

	return nil
}

func (t *tree) extractSymlink(pfd int, base string, hdr *tar.Header) error {
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

	return t.applyMetaAt(pfd, base, hdr)
}

func (t *tree) extractHardlink(pfd int, base, rel string, hdr *tar.Header) error {
	comps, err := splitEntryName(hdr.Linkname)
	if err != nil {
		return err
	}

	if len(comps) < 2 || comps[0] != "rootfs" {
		return fmt.Errorf("%w: hard link target %q is outside rootfs/", ErrUnsafePath, hdr.Linkname)
	}

	comps = comps[1:]
	if strings.Join(comps, "/") == rel {
		return nil
	}

	srcFd, err := openInRoot(t.rootFd, strings.Join(comps[:len(comps)-1], "/"), unix.O_PATH|unix.O_DIRECTORY, 0)
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

func (t *tree) extractFifo(pfd int, base string, hdr *tar.Header) error {
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
		// We just created base as a fifo in pfd, and fchmodat cannot follow a symlink here
		// unless something raced us inside a tree nobody else is using yet.
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

// finish applies directory mtimes, deepest last-created first.
func (t *tree) finish() error {
	t.dropCache()

	for i := len(t.dirs) - 1; i >= 0; i-- {
		d := t.dirs[i]

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

// copyToFd writes all of r to fd through buf.
func copyToFd(fd int, r io.Reader, buf []byte) error {
	for {
		n, err := r.Read(buf)
		for off := 0; off < n; {
			w, werr := unix.Write(fd, buf[off:n])
			if werr != nil {
				if errors.Is(werr, unix.EINTR) {
					continue
				}

				return fmt.Errorf("writing file: %w", werr)
			}

			off += w
		}

		if errors.Is(err, io.EOF) {
			return nil
		}

		if err != nil {
			return fmt.Errorf("reading image entry: %w", err)
		}
	}
}
