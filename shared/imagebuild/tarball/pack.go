// Package tarball writes unified image tarballs (metadata.yaml, templates/, rootfs/),
// uncompressed: the caller wraps the stream in its compressor (the daemon's, in
// lxd/compressor; the CLI's image builder gzips).
//
// It lives under shared/ so that both the CLI's image builder and the daemon's publish path
// share one careful writer for owners, modes, hard links and xattrs.
package tarball

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/fstree"
	"github.com/berth-dev/berth/shared/sparse"
)

// MaxNameLen bounds an archived path: Go's reader refuses PAX headers over 1 MiB, and no
// extractor can create a path anywhere near this long in one go anyway.
const MaxNameLen = 64 << 10

// Pack writes a unified image tarball to w, uncompressed: metadata.yaml first (so readers can stop early),
// then templates/ if metaDir has one, then rootfs/. Owners are numeric, hard links are kept,
// and xattrs go into PAX SCHILY.xattr.* records (security.selinux is dropped).
//
// rootfsDir may be a container's tree: it is walked with fstree (fd-relative, no symlink
// followed, depth and hard links bounded), only regular files are opened (O_NOFOLLOW,
// O_NONBLOCK, checked against the walked inode), FIFOs and devices are recorded as such,
// sockets are left out (as GNU tar does), and sparse files become PAX 1.0 sparse entries
// holding only their data. The container must be stopped while it is packed.
func Pack(w io.Writer, rootfsDir, metaDir string) error {
	return PackWith(context.Background(), w, rootfsDir, metaDir, Options{})
}

// Options tune PackWith for trees that are not laid out as in an image.
type Options struct {
	// Owner, when set, gives the ids written in each header from the ids on disk: a
	// container's tree is packed with the ids the container sees.
	Owner func(uid, gid int) (int, int)
	// Xattr, when set, rewrites an xattr value before it is archived (nil drops it): ids
	// inside capabilities and ACLs follow Owner.
	Xattr func(name string, value []byte) []byte
}

// PackWith is Pack with owner and xattr mapping. It stops with ctx's error when ctx is
// cancelled and counts into ctx's fstree.Progress.
func PackWith(ctx context.Context, w io.Writer, rootfsDir, metaDir string, opts Options) error {
	_, err := os.Lstat(filepath.Join(metaDir, "metadata.yaml"))
	if err != nil {
		return fmt.Errorf("packing image metadata: %w", err)
	}

	tw := tar.NewWriter(w)
	p := newPacker(ctx, tw, w, opts)
	err = p.addTree(metaDir, "", func(rel string) bool {
		return rel == "." || rel == "metadata.yaml"
	})
	if err != nil {
		return err
	}

	_, err = os.Lstat(filepath.Join(metaDir, "templates"))
	if err == nil {
		err = newPacker(ctx, tw, w, opts).addTree(filepath.Join(metaDir, "templates"), "templates", nil)
		if err != nil {
			return err
		}
	}

	err = newPacker(ctx, tw, w, opts).addTree(rootfsDir, "rootfs", nil)
	if err != nil {
		return err
	}

	err = tw.Close()
	if err != nil {
		return fmt.Errorf("closing tar stream: %w", err)
	}

	return nil
}

type packer struct {
	ctx   context.Context
	tw    *tar.Writer
	raw   io.Writer // the stream under tw, for sparse entries
	links *fstree.Links
	prog  *fstree.Progress
	owner func(uid, gid int) (int, int)
	xattr func(name string, value []byte) []byte
	buf   []byte // copy buffer, reused for every file
}

func newPacker(ctx context.Context, tw *tar.Writer, raw io.Writer, opts Options) *packer {
	return &packer{
		ctx: ctx, tw: tw, raw: raw, links: fstree.NewLinks(fstree.DefaultLimits), prog: fstree.ProgressFrom(ctx),
		owner: opts.Owner, xattr: opts.Xattr,
	}
}

// addTree archives dir under prefix ("" for the archive's top level). keep, when set,
// selects which relative paths are written.
func (p *packer) addTree(dir, prefix string, keep func(rel string) bool) error {
	entry := func(e *fstree.Entry, fd int) error {
		rel := e.Path()
		if keep != nil && !keep(rel) {
			return fstree.SkipDir
		}

		if prefix == "" && rel == "." {
			return nil
		}

		name := prefix
		if rel != "." {
			name = strings.TrimPrefix(prefix+"/"+rel, "/")
		}

		if len(name) > MaxNameLen {
			return &fstree.LimitError{What: "archived path length", Limit: MaxNameLen, Path: rel}
		}

		return p.addEntry(e, fd, name)
	}

	err := fstree.Walk(p.ctx, dir, fstree.DefaultLimits, fstree.Visitor{
		Dir: entry,
		File: func(e *fstree.Entry) error {
			err := entry(e, -1)
			if errors.Is(err, fstree.SkipDir) {
				return nil
			}

			return err
		},
	})
	if err != nil {
		return fmt.Errorf("archiving %q: %w", dir, err)
	}

	return nil
}

// addEntry archives one entry; fd is open on it when it is a directory.
func (p *packer) addEntry(e *fstree.Entry, fd int, name string) error {
	st := &e.Stat
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

	p.prog.AddFile()
	switch e.Type() {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		first, err := p.links.First(e)
		if err != nil {
			return err
		}

		if first != "" {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = linkName(name, e.Path(), first)
			return p.write(hdr)
		}

		hdr.Typeflag = tar.TypeReg
		return p.writeFile(e, hdr)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(e.Dir, e.Name, buf)
		if err != nil {
			return fmt.Errorf("reading link %s: %w", e.Path(), err)
		}

		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = string(buf[:n])
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if e.Type() == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}

		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets cannot be archived
	}

	err := p.addXattrs(hdr, e, fd)
	if err != nil {
		return err
	}

	return p.write(hdr)
}

// linkName turns the first path of an inode (relative to the walked root) into its name in
// the archive, which shares name's prefix.
func linkName(name, rel, first string) string {
	return strings.TrimSuffix(name, rel) + first
}

func (p *packer) write(hdr *tar.Header) error {
	err := p.tw.WriteHeader(hdr)
	if err != nil {
		return fmt.Errorf("writing tar header for %q: %w", hdr.Name, err)
	}

	return nil
}

// writeFile archives a regular file, opened beneath its directory without following any
// link and checked to be the walked inode. A file with holes becomes a sparse entry.
func (p *packer) writeFile(e *fstree.Entry, hdr *tar.Header) error {
	fd, err := e.Open()
	if err != nil {
		return err
	}

	defer unix.Close(fd)

	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	if err != nil {
		return fmt.Errorf("stating %s: %w", e.Path(), err)
	}

	hdr.Size = st.Size
	err = p.addXattrs(hdr, e, fd)
	if err != nil {
		return err
	}

	if st.Blocks*512 < st.Size {
		exts, err := sparse.Extents(fd, st.Size, sparse.MaxTarExtents)
		if err != nil {
			return fmt.Errorf("mapping %s: %w", e.Path(), err)
		}

		if sparse.DataSize(exts) < st.Size {
			err = sparse.WriteTar(p.ctx, p.tw, p.raw, hdr, fd, exts, p.prog.AddBytes)
			if err != nil {
				return fmt.Errorf("packing %s: %w", e.Path(), err)
			}

			return nil
		}
	}

	err = p.write(hdr)
	if err != nil {
		return err
	}

	err = p.copyData(fd, st.Size)
	if err != nil {
		return fmt.Errorf("packing %s: %w", e.Path(), err)
	}

	return nil
}

// copyData copies size bytes of fd into the current entry, checking ctx as it goes.
func (p *packer) copyData(fd int, size int64) error {
	if p.buf == nil {
		p.buf = make([]byte, 256<<10)
	}

	buf := p.buf
	for done := int64(0); done < size; {
		err := p.ctx.Err()
		if err != nil {
			return err
		}

		n, err := unix.Read(fd, buf[:min(int64(len(buf)), size-done)])
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return err
		}

		if n == 0 {
			return fmt.Errorf("file shrank while packing: %w", io.ErrUnexpectedEOF)
		}

		_, err = p.tw.Write(buf[:n])
		if err != nil {
			return err
		}

		done += int64(n)
		p.prog.AddBytes(int64(n))
	}

	return nil
}

// addXattrs copies the entry's extended attributes into PAX records, through the hook.
func (p *packer) addXattrs(hdr *tar.Header, e *fstree.Entry, fd int) error {
	xattrs, err := fstree.Xattrs(e, fd)
	if err != nil {
		return err
	}

	for _, x := range xattrs {
		if x.Name == "security.selinux" {
			continue
		}

		val := x.Value
		if p.xattr != nil {
			val = p.xattr(x.Name, val)
			if val == nil {
				continue
			}
		}

		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}

		hdr.PAXRecords["SCHILY.xattr."+x.Name] = string(val)
		hdr.Format = tar.FormatPAX
	}

	return nil
}
