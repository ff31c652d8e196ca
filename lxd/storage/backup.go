package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

// BackupImagePrefix names the pool images an import unpacks its trees into. They have no
// DB row: they live as long as an instance or snapshot sits on them (see dropBackupImage).
const BackupImagePrefix = "backup-"

// createSnapshotFrom makes snapshot snap of name from image fp; fill writes the snapshot's
// data directory into tmp.
func (p *pool) createSnapshotFrom(name, snap, fp string, fill func(tmp string) error) error {
	err := p.checkSnapshot(name, snap)
	if err != nil {
		return err
	}

	if !p.HasImage(fp) {
		return api.StatusErrorf(http.StatusNotFound, "snapshot %q: %w: %q", snap, ErrImageNotFound, fp)
	}

	parent := p.snapshotsOf(name)
	err = os.MkdirAll(parent, 0o700)
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp(parent, tmpPrefix+snap+"-")
	if err != nil {
		return err
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = os.RemoveAll(tmp) })

	err = fill(tmp)
	if err != nil {
		return fmt.Errorf("creating snapshot %q of %q: %w", snap, name, err)
	}

	err = os.WriteFile(filepath.Join(tmp, imageFile), []byte(fp+"\n"), 0o644)
	if err != nil {
		return err
	}

	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p.snapshotDir(name, snap), unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return api.StatusErrorf(http.StatusConflict, "snapshot %q of %q: %w", snap, name, ErrSnapshotExists)
	}

	if err != nil {
		return err
	}

	r.Success()
	return nil
}

// CreateSnapshotFromImage implements Driver: an empty upper layer over image fp.
func (d *overlay) CreateSnapshotFromImage(name, snap, fp string, ids idmap.Set) error {
	return d.createSnapshotFrom(name, snap, fp, func(tmp string) error {
		var root syscall.Stat_t
		err := syscall.Stat(d.imageRootfs(fp), &root)
		if err != nil {
			return err
		}

		upper := filepath.Join(tmp, "upper")
		err = os.Mkdir(upper, 0o700)
		if err == nil {
			err = os.Chown(upper, int(ids.HostUID), int(ids.HostGID))
		}

		if err == nil {
			err = unix.Chmod(upper, root.Mode&0o7777)
		}

		return err
	})
}

// CreateSnapshotFromImage implements Driver by a shifted copy of the image.
func (d *dirDriver) CreateSnapshotFromImage(name, snap, fp string, ids idmap.Set) error {
	return d.createSnapshotFrom(name, snap, fp, func(tmp string) error {
		return ids.CopyShifted(context.Background(), d.imageRootfs(fp), filepath.Join(tmp, "rootfs"))
	})
}

// pruneBackupImages removes the images no record keeps (imports', BackupImagePrefix, and
// released ones) that inUse says nothing sits on (nil: nothing ever does). Errors only
// leave an image behind, for the next prune.
func (p *pool) pruneBackupImages(inUse func(fp string) ([]string, error)) {
	matches, _ := filepath.Glob(filepath.Join(p.dir, imagesDir, BackupImagePrefix+"*"))
	released, _ := filepath.Glob(filepath.Join(p.dir, imagesDir, "*", releasedFile))
	for _, m := range released {
		matches = append(matches, filepath.Dir(m))
	}

	for _, m := range matches {
		err := p.pruneImage(filepath.Base(m), inUse)
		if err != nil {
			p.log.Warn("keeping unused image", "image", filepath.Base(m), "err", err)
		}
	}
}

// pruneImage removes image fp if, under the pool lock, no record keeps it (an import's
// or a released one, not adopted again meanwhile) and inUse lists no user.
func (p *pool) pruneImage(fp string, inUse func(fp string) ([]string, error)) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	_, err := os.Lstat(p.imageDir(fp))
	if errors.Is(err, os.ErrNotExist) || (!strings.HasPrefix(fp, BackupImagePrefix) && !p.isReleased(fp)) {
		return nil
	}

	if inUse != nil {
		users, err := inUse(fp)
		if err != nil || len(users) > 0 {
			return err
		}
	}

	err = p.removeTree(p.imageDir(fp), filepath.Join(p.dir, imagesDir))
	if err == nil {
		p.log.Info("removed image its last user left", "fingerprint", fp)
	}

	return err
}

// PruneBackupImages implements Driver: an overlay instance or snapshot needs its image as
// lower layer.
func (d *overlay) PruneBackupImages() { d.pruneBackupImages(d.imageUsers) }

// PruneBackupImages implements Driver: dir instances hold full copies, never the image.
func (d *dirDriver) PruneBackupImages() { d.pruneBackupImages(nil) }

// InstanceImage returns the image an instance sits on (its record in the pool).
func (p *pool) InstanceImage(name string) (string, error) {
	err := p.instanceExists(name)
	if err != nil {
		return "", err
	}

	return p.instanceImage(name)
}
