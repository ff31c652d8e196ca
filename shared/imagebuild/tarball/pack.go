package tarball

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Pack writes a unified image tarball to w: metadata.yaml first (so readers can stop early),
// then templates/ if metaDir has one, then rootfs/. Owners are numeric, hard links are kept,
// and xattrs go into PAX SCHILY.xattr.* records (security.selinux is dropped).
//
// rootfsDir may be a container's tree: regular files are opened without following symlinks
// and checked against the walked inode, so a swapped path cannot pull a host file in. The
// container must be stopped while it is packed.
func Pack(w io.Writer, rootfsDir, metaDir, compression string) error {
	return PackWith(w, rootfsDir, metaDir, Options{Compression: compression})
}

// Options tune PackWith for trees that are not laid out as in an image.
type Options struct {
	Compression string
	// Owner, when set, gives the ids written in each header from the ids on disk: a
	// container's tree is packed with the ids the container sees.
	Owner func(uid, gid int) (int, int)
	// Xattr, when set, rewrites an xattr value before it is archived (nil drops it): ids
	// inside capabilities and ACLs follow Owner.
	Xattr func(name string, value []byte) []byte
}

// PackWith is Pack with owner and xattr mapping.
func PackWith(w io.Writer, rootfsDir, metaDir string, opts Options) error {
	compression := opts.Compression
	cw, err := NewCompressor(w, compression)
	if err != nil {
		return err
	}

	_, err = os.Lstat(filepath.Join(metaDir, "metadata.yaml"))
	if err != nil {
		return fmt.Errorf("packing image metadata: %w", err)
	}

	tw := tar.NewWriter(cw)
	p := &packer{tw: tw, links: map[fileID]string{}, owner: opts.Owner, xattr: opts.Xattr}

	err = p.addTree(metaDir, "", func(rel string) bool {
		return rel == "." || rel == "metadata.yaml"
	})
	if err != nil {
		return err
	}

	_, err = os.Lstat(filepath.Join(metaDir, "templates"))
	if err == nil {
		err = p.addTree(filepath.Join(metaDir, "templates"), "templates", nil)
		if err != nil {
			return err
		}
	}

	err = p.addTree(rootfsDir, "rootfs", nil)
	if err != nil {
		return err
	}

	err = tw.Close()
	if err != nil {
		return fmt.Errorf("closing tar stream: %w", err)
	}

	err = cw.Close()
	if err != nil {
		return fmt.Errorf("closing %s stream: %w", compression, err)
	}

	return nil
}

type fileID struct {
	dev, ino uint64
}

type packer struct {
	tw    *tar.Writer
	links map[fileID]string // first archive name of each multiply-linked inode
	owner func(uid, gid int) (int, int)
	xattr func(name string, value []byte) []byte
}

// addTree archives dir under prefix ("" for the archive's top level). keep, when set,
// selects which relative paths are written.
func (p *packer) addTree(dir, prefix string, keep func(rel string) bool) error {
	rootFd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %q: %w", dir, err)
	}

	defer unix.Close(rootFd)

	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walking %q: %w", path, err)
		}

		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}

		if keep != nil && !keep(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}

			return nil
		}

		if prefix == "" && rel == "." {
			return nil
		}

		name := prefix
		if rel != "." {
			name = strings.TrimPrefix(prefix+"/"+rel, "/")
		}

		return p.addEntry(rootFd, path, rel, name)
	})
}

func (p *packer) addEntry(rootFd int, path, rel, name string) error {
	var st unix.Stat_t

	err := unix.Lstat(path, &st)
	if err != nil {
		return fmt.Errorf("stating %q: %w", path, err)
	}

	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
	}

	if p.owner != nil {
		hdr.Uid, hdr.Gid = p.owner(hdr.Uid, hdr.Gid)
	}

	id := fileID{dev: st.Dev, ino: st.Ino}

	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		first, seen := p.links[id]
		if seen {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			return p.write(hdr, path)
		}

		if st.Nlink > 1 {
			p.links[id] = name
		}

		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(path)
		if err != nil {
			return fmt.Errorf("reading link %q: %w", path, err)
		}

		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}

		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets cannot be archived
	}

	err = addXattrs(hdr, path)
	if err != nil {
		return err
	}

	p.mapXattrs(hdr)

	if hdr.Typeflag != tar.TypeReg {
		return p.write(hdr, path)
	}

	return p.writeFile(rootFd, hdr, rel, id)
}

func (p *packer) write(hdr *tar.Header, path string) error {
	err := p.tw.WriteHeader(hdr)
	if err != nil {
		return fmt.Errorf("writing tar header for %q: %w", path, err)
	}

	return nil
}

// writeFile copies a regular file opened beneath rootFd without following any symlink,
// refusing it if it is no longer the inode that was walked.
func (p *packer) writeFile(rootFd int, hdr *tar.Header, rel string, id fileID) error {
	fd, err := unix.Openat2(rootFd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return fmt.Errorf("opening %q: %w", rel, err)
	}

	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()

	var st unix.Stat_t

	err = unix.Fstat(fd, &st)
	if err != nil {
		return fmt.Errorf("stating %q: %w", rel, err)
	}

	if st.Dev != id.dev || st.Ino != id.ino || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("packing %q: file changed while packing", rel)
	}

	err = p.tw.WriteHeader(hdr)
	if err != nil {
		return fmt.Errorf("writing tar header for %q: %w", rel, err)
	}

	_, err = io.CopyN(p.tw, f, hdr.Size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("packing %q: file shrank while packing", rel)
		}

		return fmt.Errorf("packing %q: %w", rel, err)
	}

	return nil
}

// addXattrs copies path's extended attributes (not following symlinks) into PAX records.
func addXattrs(hdr *tar.Header, path string) error {
	size, err := unix.Llistxattr(path, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}

		return fmt.Errorf("listing xattrs of %q: %w", path, err)
	}

	if size == 0 {
		return nil
	}

	buf := make([]byte, size)

	size, err = unix.Llistxattr(path, buf)
	if err != nil {
		return fmt.Errorf("listing xattrs of %q: %w", path, err)
	}

	for _, key := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if key == "" || key == "security.selinux" {
			continue
		}

		val, err := lgetxattr(path, key)
		if err != nil {
			return err
		}

		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}

		hdr.PAXRecords["SCHILY.xattr."+key] = string(val)
		hdr.Format = tar.FormatPAX
	}

	return nil
}

func lgetxattr(path, key string) ([]byte, error) {
	size, err := unix.Lgetxattr(path, key, nil)
	if err != nil {
		return nil, fmt.Errorf("reading xattr %q of %q: %w", key, path, err)
	}

	buf := make([]byte, size)

	size, err = unix.Lgetxattr(path, key, buf)
	if err != nil {
		return nil, fmt.Errorf("reading xattr %q of %q: %w", key, path, err)
	}

	return buf[:size], nil
}
