package tarball

import (
	"archive/tar"
	"strings"
)

// TreeWriter archives several directory trees into one tar stream, each under its own
// prefix, with the owner and xattr mapping of Options (Compression is not used: the caller
// owns the tar writer). Backups use it to put an instance and its snapshots side by side.
type TreeWriter struct {
	opts Options
	tw   *tar.Writer
}

// NewTreeWriter returns a TreeWriter writing to tw.
func NewTreeWriter(tw *tar.Writer, opts Options) *TreeWriter {
	return &TreeWriter{opts: opts, tw: tw}
}

// AddTree archives dir as prefix/… (prefix itself included as a directory entry). Regular
// files are opened without following symlinks and checked against the walked inode, as
// Pack does.
func (t *TreeWriter) AddTree(dir, prefix string) error {
	p := &packer{tw: t.tw, links: map[fileID]string{}, owner: t.opts.Owner, xattr: t.opts.Xattr}
	return p.addTree(dir, strings.Trim(prefix, "/"), nil)
}

// mapXattrs applies the xattr hook to a header's SCHILY.xattr.* records.
func (p *packer) mapXattrs(hdr *tar.Header) {
	if p.xattr == nil {
		return
	}

	for key, val := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if !ok {
			continue
		}

		out := p.xattr(name, []byte(val))
		if out == nil {
			delete(hdr.PAXRecords, key)
			continue
		}

		hdr.PAXRecords[key] = string(out)
	}
}
