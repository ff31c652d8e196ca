package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/idmap"
)

// Copies within a btrfs pool. Where the source (an instance's directory or one of its
// snapshots) is a subvolume, a copy is a btrfs snapshot of it, which shares every extent
// and takes no time for the data, followed by moving the owners of the data directory
// (sub) from the source's id range to the copy's where they lie (idmap.RemapInPlace):
// a walk of the metadata, not a copy of the bytes. The snapshot is the copy's own until
// it is published, so nothing else touches the tree it walks. Anywhere else, and should
// the snapshot call fail, the copy is a full copy as before.

// errNoSnapshotCopy says a copy must copy the bytes.
var errNoSnapshotCopy = errors.New("source is not a btrfs subvolume")

// snapshotCopy makes parent/<temporary name> a snapshot of srcDir with its owners under
// sub moved from from to to (the overlay's work directory emptied) and returns its path.
func snapshotCopy(ctx context.Context, srcDir, parent, base, sub string, from, to idmap.Set) (string, error) {
	isSub, err := btrfsIsSubvolume(srcDir)
	if err != nil || !isSub {
		return "", errNoSnapshotCopy
	}

	name := tempName(base)
	err = btrfsSnapshot(srcDir, parent, name, false)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoSnapshotCopy, err)
	}

	tmp := filepath.Join(parent, name)
	err = idmap.RemapInPlace(ctx, filepath.Join(tmp, sub), from, to)
	if _, serr := os.Lstat(filepath.Join(tmp, "work")); err == nil && sub == "upper" && serr == nil {
		err = emptyWork(tmp) // overlayfs needs it empty of the source's upper layer
	}

	if err == nil {
		err = syncFS(tmp)
	}

	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}

	return tmp, nil
}
