package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	squashfslow "github.com/CalebQ42/squashfs/low"
	"github.com/CalebQ42/squashfs/low/inode"
)

// SquashfsLimits bound what one squashfs may expand to. A squashfs shares data blocks
// between files and has sparse blocks, so a small one can describe terabytes: the
// limits, not the file's size, bound the unpack.
type SquashfsLimits struct {
	MaxEntries int   // files, directories, links… in all
	MaxBytes   int64 // regular file contents in all
	MaxDepth   int   // directory nesting
}

// DefaultSquashfsLimits is what an image's rootfs may hold.
var DefaultSquashfsLimits = SquashfsLimits{MaxEntries: 4 << 20, MaxBytes: 64 << 30, MaxDepth: 256}

// ErrSquashfsLimit is wrapped by SquashfsToTar's error when a limit is crossed.
var ErrSquashfsLimit = errors.New("squashfs exceeds a limit")

// SquashfsToTar writes the tree of the squashfs image in r as a tar stream of rootfs/…
// entries, the form of a unified image's rootfs, so the hostile-tar unpacker applies all
// its rules to it unchanged. The squashfs is hostile: entry names must be single path
// components, a directory reached twice (a cycle) fails, hard links become tar hard
// links to the first path of their inode, device nodes are passed on (the unpacker skips
// them), sockets are dropped, and lim bounds the expansion. The library panics on some
// corrupt inputs: a panic is returned as an error.
func SquashfsToTar(r io.ReaderAt, w io.Writer, lim SquashfsLimits) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt squashfs: %v", p)
		}
	}()

	rdr, err := squashfslow.NewReader(r)
	if err != nil {
		return fmt.Errorf("reading squashfs: %w", err)
	}

	c := &sqConv{r: &rdr, tw: tar.NewWriter(w), lim: lim, dirs: map[uint32]bool{}, links: map[uint32]string{}}
	c.zeros = make([]byte, rdr.Superblock.BlockSize)

	err = c.dir(rdr.Root, "rootfs", 0)
	if err != nil {
		return err
	}

	return c.tw.Close()
}

type sqConv struct {
	r       *squashfslow.Reader
	tw      *tar.Writer
	lim     SquashfsLimits
	entries int
	bytes   int64
	dirs    map[uint32]bool   // directory inode numbers seen: a second visit is a cycle
	links   map[uint32]string // inode number → first path, for inodes with more than one link
	zeros   []byte            // one block of zeros, for sparse blocks
}

// header is the tar header of b at name, with what every type shares.
func (c *sqConv) header(b squashfslow.FileBase, name string) (*tar.Header, error) {
	c.entries++
	if c.entries > c.lim.MaxEntries {
		return nil, fmt.Errorf("%w: more than %d entries", ErrSquashfsLimit, c.lim.MaxEntries)
	}

	uid, err := b.Uid(c.r)
	if err != nil {
		return nil, fmt.Errorf("reading owner of %q: %w", name, err)
	}

	gid, err := b.Gid(c.r)
	if err != nil {
		return nil, fmt.Errorf("reading group of %q: %w", name, err)
	}

	return &tar.Header{
		Name:    name,
		Mode:    int64(b.Inode.Perm & 0o7777),
		Uid:     int(uid),
		Gid:     int(gid),
		ModTime: time.Unix(int64(b.Inode.ModTime), 0),
		Format:  tar.FormatPAX,
	}, nil
}

func (c *sqConv) dir(d squashfslow.Directory, name string, depth int) error {
	if depth > c.lim.MaxDepth {
		return fmt.Errorf("%w: directories nested deeper than %d", ErrSquashfsLimit, c.lim.MaxDepth)
	}

	if c.dirs[d.Inode.Num] {
		return fmt.Errorf("corrupt squashfs: directory %q is reached twice (a cycle)", name)
	}

	c.dirs[d.Inode.Num] = true

	hdr, err := c.header(d.FileBase, name+"/")
	if err != nil {
		return err
	}

	hdr.Typeflag = tar.TypeDir
	err = c.tw.WriteHeader(hdr)
	if err != nil {
		return err
	}

	for _, e := range d.Entries {
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			return fmt.Errorf("%w: squashfs entry name %q in %q", ErrUnsafePath, e.Name, name)
		}

		b, err := c.r.BaseFromEntry(e)
		if err != nil {
			return fmt.Errorf("reading %q: %w", name+"/"+e.Name, err)
		}

		err = c.entry(b, name+"/"+e.Name, depth)
		if err != nil {
			return err
		}
	}

	return nil
}

func (c *sqConv) entry(b squashfslow.FileBase, name string, depth int) error {
	if b.IsDir() {
		d, err := b.ToDir(*c.r)
		if err != nil {
			return fmt.Errorf("reading directory %q: %w", name, err)
		}

		return c.dir(d, name, depth+1)
	}

	hdr, err := c.header(b, name)
	if err != nil {
		return err
	}

	// A second path of a multiply linked inode is a hard link to its first.
	if b.Inode.LinkCount() > 1 {
		if first, ok := c.links[b.Inode.Num]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeLink, first, 0
			return c.tw.WriteHeader(hdr)
		}

		c.links[b.Inode.Num] = name
	}

	switch data := b.Inode.Data.(type) {
	case inode.File, inode.EFile:
		return c.file(b, hdr)
	case inode.Symlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(data.Target)
	case inode.ESymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(data.Target)
	case inode.Device, inode.EDevice:
		// Passed on as such so that the unpacker skips and counts them; never created.
		hdr.Typeflag = tar.TypeChar
		if b.Inode.Type == inode.Block || b.Inode.Type == inode.EBlock {
			hdr.Typeflag = tar.TypeBlock
		}
	case inode.IPC, inode.EIPC:
		if b.Inode.Type == inode.Sock || b.Inode.Type == inode.ESock {
			c.entries--
			return nil // a socket in an image is meaningless: tar has no type for it
		}

		hdr.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("corrupt squashfs: %q has inode type %d", name, b.Inode.Type)
	}

	return c.tw.WriteHeader(hdr)
}

func (c *sqConv) file(b squashfslow.FileBase, hdr *tar.Header) error {
	size := b.Inode.Size()
	if size > uint64(c.lim.MaxBytes-c.bytes) {
		return fmt.Errorf("%w: files larger than %d bytes in all", ErrSquashfsLimit, c.lim.MaxBytes)
	}

	c.bytes += int64(size)
	hdr.Typeflag, hdr.Size = tar.TypeReg, int64(size)

	err := c.tw.WriteHeader(hdr)
	if err != nil || size == 0 {
		return err
	}

	full, err := b.GetFullReader(c.r)
	if err != nil {
		return fmt.Errorf("reading %q: %w", hdr.Name, err)
	}

	defer full.Close()

	// Block by block, each exactly as long as the inode says: a block that decompresses
	// to more or less is corrupt. Sparse blocks (size 0) are zeros, written here since
	// the library returns an empty last block when the file ends on a sparse one.
	var sizes []uint32
	switch data := b.Inode.Data.(type) {
	case inode.File:
		sizes = data.BlockSizes
	case inode.EFile:
		sizes = data.BlockSizes
	}

	bs := uint64(c.r.Superblock.BlockSize)
	left := size
	for i := uint32(0); left > 0; i++ {
		want := min(bs, left)
		var blk []byte

		if int(i) < len(sizes) && sizes[i]&^(1<<24) == 0 {
			blk = c.zeros[:want]
		} else {
			if i >= full.BlockNum() {
				return fmt.Errorf("corrupt squashfs: %q has %d of its %d bytes", hdr.Name, size-left, size)
			}

			blk, err = full.Block(i)
			if err != nil {
				return fmt.Errorf("reading %q: %w", hdr.Name, err)
			}

			if uint64(len(blk)) < want {
				return fmt.Errorf("corrupt squashfs: block %d of %q is short", i, hdr.Name)
			}
		}

		_, err = c.tw.Write(blk[:want])
		if err != nil {
			return err
		}

		left -= want
	}

	return nil
}
