package tarball

import (
	"archive/tar"
	"context"
	"io"
	"strings"
)

// TreeWriter archives several directory trees into one tar stream, each under its own
// prefix, with the owner and xattr mapping of Options (Compression is not used: the caller
// owns the stream). Backups use it to put an instance and its snapshots side by side.
type TreeWriter struct {
	opts Options
	tw   *tar.Writer
	raw  io.Writer
}

// NewTreeWriter returns a TreeWriter writing a tar stream to w. Other members go through
// Tar(); Close ends the stream (not w).
func NewTreeWriter(w io.Writer, opts Options) *TreeWriter {
	return &TreeWriter{opts: opts, tw: tar.NewWriter(w), raw: w}
}

// Tar is the underlying tar writer, for members that are not trees.
func (t *TreeWriter) Tar() *tar.Writer { return t.tw }

// Close writes the end of the archive.
func (t *TreeWriter) Close() error { return t.tw.Close() }

// AddTree archives dir as prefix/… (prefix itself included as a directory entry), as Pack
// archives a root filesystem: fd-relative, bounded, sparse-aware, cancelled with ctx.
func (t *TreeWriter) AddTree(ctx context.Context, dir, prefix string) error {
	return newPacker(ctx, t.tw, t.raw, t.opts).addTree(dir, strings.Trim(prefix, "/"), nil)
}

// TreeWriterOn is a TreeWriter adding to an existing tar writer tw whose stream is raw.
func TreeWriterOn(tw *tar.Writer, raw io.Writer, opts Options) *TreeWriter {
	return &TreeWriter{opts: opts, tw: tw, raw: raw}
}
