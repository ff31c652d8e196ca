package tarsafe

import (
	"archive/tar"
	"os"
)

// Trees writes an archive's members into one temporary tarball per tree (an instance or
// a volume, and each of its snapshots), made in a directory on first use: the backup
// splitters hand each tree to the image unpacker on its own.
type Trees struct {
	dir     string
	files   map[string]*os.File
	writers map[string]*tar.Writer
	paths   map[string]string
}

// NewTrees writes its tarballs into dir.
func NewTrees(dir string) *Trees {
	return &Trees{dir: dir, files: map[string]*os.File{}, writers: map[string]*tar.Writer{}, paths: map[string]string{}}
}

// Has reports whether tree's tarball was started.
func (t *Trees) Has(tree string) bool { return t.writers[tree] != nil }

// Writer is tree's tarball, created on first use.
func (t *Trees) Writer(tree string) (*tar.Writer, error) {
	tw := t.writers[tree]
	if tw != nil {
		return tw, nil
	}

	f, err := os.CreateTemp(t.dir, "tree-*.tar")
	if err != nil {
		return nil, err
	}

	t.files[tree], t.paths[tree] = f, f.Name()
	tw = tar.NewWriter(f)
	t.writers[tree] = tw
	return tw, nil
}

// Finish ends every tarball and returns their paths by tree.
func (t *Trees) Finish() (map[string]string, error) {
	for tree, tw := range t.writers {
		err := tw.Close()
		if err == nil {
			err = t.files[tree].Close()
		}

		if err != nil {
			return nil, err
		}

		delete(t.files, tree)
	}

	return t.paths, nil
}

// Close closes what Finish did not (after a failure); the files stay in the directory.
func (t *Trees) Close() {
	for _, f := range t.files {
		_ = f.Close()
	}
}
