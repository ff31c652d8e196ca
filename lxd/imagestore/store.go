// Package imagestore keeps the daemon's images: the uploaded tarballs under
// $BERTH_DIR/images, their unpacked trees in the storage pools, and their DB rows. An
// import unpacks an image into the default pool; a launch on another pool unpacks it
// there too (EnsureInPool); a delete releases it from every pool.
package imagestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// Pools are the storage pools image trees are unpacked into (*pools.Service).
type Pools interface {
	// Default is the default pool's driver, where imports unpack.
	Default() storage.Driver
	// Drivers returns every loaded pool's driver by name.
	Drivers() map[string]storage.Driver
}

// OnePool is the Pools of a daemon with a single pool.
type OnePool struct{ storage.Driver }

// Default implements Pools.
func (p OnePool) Default() storage.Driver { return p.Driver }

// Drivers implements Pools.
func (p OnePool) Drivers() map[string]storage.Driver {
	return map[string]storage.Driver{"default": p.Driver}
}

// Store is the daemon's image store.
type Store struct {
	dir   string // $BERTH_DIR/images
	db    *db.DB
	pools Pools
	log   *slog.Logger

	// mu serialises what changes an image's name space: its record, its files under dir
	// and its tree in the pool (import, the accepted part of a delete, its release of the
	// pool tree, unpacking). A delete's slow removals run outside it, on trash names no
	// later import can reach.
	mu sync.Mutex

	// fetcher brings image files this member lacks (fetch.go); fetching holds one
	// channel per fingerprint under fetch (closed when done), guarded by fetchMu.
	fetcher  Fetcher
	fetchMu  sync.Mutex
	fetching map[string]chan struct{}
}

// New returns a Store rooted at dir.
func New(dir string, d *db.DB, pools Pools, log *slog.Logger) (*Store, error) {
	err := os.MkdirAll(dir, 0o700)
	if err != nil {
		return nil, err
	}

	return &Store{dir: dir, db: d, pools: pools, log: log}, nil
}

// TarballPath is where the image file of fp is kept.
func (s *Store) TarballPath(fp string) string { return filepath.Join(s.dir, fp) }

// RootfsPath is where the squashfs rootfs of a split image fp is kept (TarballPath then
// holds its metadata tarball); a unified image has none.
func (s *Store) RootfsPath(fp string) string { return filepath.Join(s.dir, fp+rootfsSuffix) }

// rootfsSuffix names a split image's rootfs file.
const rootfsSuffix = ".rootfs"

// IsSplit says whether image fp is a split image (metadata tarball plus squashfs).
func (s *Store) IsSplit(fp string) bool {
	_, err := os.Lstat(s.RootfsPath(fp))
	return err == nil
}

// MetaDir holds the image's metadata.yaml and templates/.
func (s *Store) MetaDir(fp string) string { return filepath.Join(s.dir, fp+".meta") }

// ErrExists is returned (wrapped) by Import when the project's image set has the image
// already; the fingerprint is still returned.
var ErrExists = errors.New("image with same fingerprint already exists")

// ImportOptions are the caller's settings for a new image.
type ImportOptions struct {
	// Project is the request's project: the image joins its image set (its own with
	// features.images, the default project's otherwise). "" is the default project.
	Project    string
	Filename   string
	Public     bool
	Properties map[string]string
	// Cached marks an image brought in by a launch from a remote: it is pruned once
	// unused for images.remote_cache_expiry.
	Cached bool
}

// Upload is an image file received from a client, not yet checked or recorded.
type Upload struct {
	Path        string
	Fingerprint string
	Size        int64
	// RootfsPath is the squashfs of a split image (Path is then its metadata tarball).
	RootfsPath string
}

// Remove deletes the spooled files (a no-op once Import has taken them).
func (u *Upload) Remove() {
	_ = os.Remove(u.Path)
	if u.RootfsPath != "" {
		_ = os.Remove(u.RootfsPath)
	}
}

// Spool writes r to a temporary file in the store, hashing it on the way. It is done in
// the request itself; the slow checks and unpacking run later in an operation.
func (s *Store) Spool(r io.Reader) (*Upload, error) {
	tmp, err := os.CreateTemp(s.dir, "upload-")
	if err != nil {
		return nil, err
	}

	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(tmp, h), r)
	closeErr := tmp.Close()
	if err == nil {
		err = closeErr
	}

	if err != nil {
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("receiving image: %w", err)
	}

	return &Upload{Path: tmp.Name(), Fingerprint: hex.EncodeToString(h.Sum(nil)), Size: size}, nil
}

// SpoolSplit spools a split image: its metadata tarball from meta, then its squashfs
// rootfs from what next returns (a multipart body's parts come in order). The
// fingerprint is LXD's: the SHA-256 of the metadata tarball followed by the rootfs.
func (s *Store) SpoolSplit(meta io.Reader, next func() (io.Reader, error)) (*Upload, error) {
	h := sha256.New()
	up := &Upload{}

	var err error

	up.Path, up.Size, err = s.spoolFile(meta, h)
	if err != nil {
		return nil, err
	}

	rootfs, err := next()
	if err == nil {
		var n int64

		up.RootfsPath, n, err = s.spoolFile(rootfs, h)
		up.Size += n
	}

	if err != nil {
		up.Remove()
		return nil, err
	}

	up.Fingerprint = hex.EncodeToString(h.Sum(nil))

	return up, nil
}

// spoolFile writes r to a new temporary file of the store, also into h.
func (s *Store) spoolFile(r io.Reader, h io.Writer) (string, int64, error) {
	tmp, err := os.CreateTemp(s.dir, "upload-")
	if err != nil {
		return "", 0, err
	}

	size, err := io.Copy(io.MultiWriter(tmp, h), r)
	closeErr := tmp.Close()
	if err == nil {
		err = closeErr
	}

	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", 0, fmt.Errorf("receiving image: %w", err)
	}

	return tmp.Name(), size, nil
}

// Import checks a spooled image (unified, or split: up.RootfsPath set), unpacks it into
// the pool and records it in the image set of opts.Project. It returns the fingerprint
// and size. The files of a fingerprint are kept once, whichever projects have it: an
// image another project has already only gets its row. A split image is kept split, so
// its export gives LXD the same two files and the same fingerprint back. Nothing is kept
// when it fails.
func (s *Store) Import(ctx context.Context, up *Upload, opts ImportOptions) (string, int64, error) {
	defer up.Remove()
	fp, size := up.Fingerprint, up.Size
	ip, err := s.ImagesProject(ctx, opts.Project)
	if err != nil {
		return "", 0, err
	}

	if s.inProject(ctx, ip, fp) {
		return fp, size, ErrExists
	}

	meta, hasRootfs, err := images.ReadMetadata(up.Path)
	if err != nil {
		return "", 0, api.StatusErrorf(http.StatusBadRequest, "reading image metadata: %v", err)
	}

	if up.RootfsPath != "" {
		hasRootfs = true // the squashfs is read (and checked) when it is unpacked
	}

	if !hasRootfs {
		return "", 0, api.StatusErrorf(http.StatusBadRequest, "image has no rootfs/: only container images in the unified format are supported")
	}

	// From the check to the record, under the lock: a concurrent import of the same image
	// or a pending delete cannot remove the files this one records.
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.inProject(ctx, ip, fp) {
		return fp, size, ErrExists
	}

	// Another project's row keeps the files: they are this image's too.
	shared := s.exists(ctx, fp)
	if !shared {
		err = os.Rename(up.Path, s.TarballPath(fp))
		if err == nil && up.RootfsPath != "" {
			err = os.Rename(up.RootfsPath, s.RootfsPath(fp))
		}

		if err != nil {
			s.remove(fp)
			return "", 0, err
		}

		err = s.ensureInPool(fp, s.pools.Default())
		if err != nil {
			s.remove(fp)
			return "", 0, err
		}
	}

	props := map[string]string{}
	for k, v := range meta.Properties {
		props[k] = v
	}

	for k, v := range opts.Properties {
		props[k] = v
	}

	now := time.Now().UTC()
	img := db.Image{
		Project:      ip,
		Fingerprint:  fp,
		Filename:     opts.Filename,
		Size:         size,
		Architecture: meta.Architecture,
		Type:         api.InstanceTypeContainer,
		Public:       opts.Public,
		Cached:       opts.Cached,
		CreatedAt:    time.Unix(meta.CreationDate, 0).UTC(),
		UploadedAt:   now,
		Properties:   props,
	}

	if meta.ExpiryDate > 0 {
		img.ExpiresAt = time.Unix(meta.ExpiryDate, 0).UTC()
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateImage(ctx, img)
		return err
	})
	if err != nil {
		if !shared {
			s.remove(fp)
		}

		return "", 0, err
	}

	return fp, size, nil
}

// exists reports whether any project has a record of image fp (exactly that
// fingerprint): its files are kept while one does.
func (s *Store) exists(ctx context.Context, fp string) bool {
	var used bool
	_ = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		used, err = tx.ImageInUse(ctx, fp)
		return err
	})

	return used
}

// inProject reports whether project ip's image set has exactly image fp.
func (s *Store) inProject(ctx context.Context, ip, fp string) bool {
	var existing *db.Image
	_ = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		existing, _ = tx.GetImage(ctx, ip, fp)
		return nil
	})

	return existing != nil && existing.Fingerprint == fp
}

// EnsureInPool unpacks image fp into pool unless it is there already. An image that is
// there (its tree and metadata directory are published by renames, last) needs no lock: a
// launch of it does not wait behind the unpack of another image. (A tree a delete released
// is adopted by the import that records the image again, under the lock.)
func (s *Store) EnsureInPool(ctx context.Context, fp string, pool storage.Driver) error {
	if s.inPool(fp, pool) {
		return nil
	}

	// In a cluster the image may have been imported on another member.
	err := s.EnsureFile(ctx, fp)
	if err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	return s.ensureInPool(fp, pool)
}

// ensureInPool is EnsureInPool with s.mu held. CreateImage runs even when the pool has
// the image: it adopts a tree a delete released while instances sat on it, which the
// image, recorded again, now owns (else the next prune removes it under the record).
func (s *Store) ensureInPool(fp string, pool storage.Driver) error {
	_, err := os.Stat(s.MetaDir(fp))
	haveMeta := err == nil

	metaTmp := s.MetaDir(fp) + ".tmp"
	_ = os.RemoveAll(metaTmp)
	err = os.MkdirAll(metaTmp, 0o755)
	if err != nil {
		return err
	}

	defer func() { _ = os.RemoveAll(metaTmp) }()
	unpacked := false
	start := time.Now()
	err = pool.CreateImage(fp, func(rootfsDir string) error {
		unpacked = true
		_, err := s.unpack(fp, rootfsDir, metaTmp)
		return err
	})
	if err != nil {
		return fmt.Errorf("unpacking image %s: %w", fp[:12], err)
	}

	switch {
	case unpacked:
		s.log.Info("unpacked image", "fingerprint", fp[:12], "duration", time.Since(start))
		// Unpacking buffers tens of MiB; give them back rather than carry them as RSS.
		debug.FreeOSMemory()
	case haveMeta:
		return nil
	default:
		_, err = s.unpack(fp, "", metaTmp)
		if err != nil {
			return fmt.Errorf("unpacking metadata of image %s: %w", fp[:12], err)
		}
	}

	_ = os.RemoveAll(s.MetaDir(fp))
	return os.Rename(metaTmp, s.MetaDir(fp))
}

// unpack extracts image fp, unified or split, into rootfsDir ("": metadata only) and
// metaDir.
func (s *Store) unpack(fp, rootfsDir, metaDir string) (images.UnpackStats, error) {
	u := &images.Unpacker{Log: s.log}
	if s.IsSplit(fp) {
		return u.UnpackSplit(s.TarballPath(fp), s.RootfsPath(fp), rootfsDir, metaDir)
	}

	return u.Unpack(s.TarballPath(fp), rootfsDir, metaDir)
}

// inPool says whether image fp is unpacked in pool with its metadata.
func (s *Store) inPool(fp string, pool storage.Driver) bool {
	if !pool.HasImage(fp) {
		return false
	}

	_, err := os.Stat(s.MetaDir(fp))
	return err == nil
}

// Delete deletes project proj's image fp as the client sees it before it returns: its
// record and aliases go. When no other project has the image, its files are renamed to
// a trash directory, under the lock an import takes, so the same image imported right
// after is a new image that nothing of this delete touches. The returned finish does the
// slow part (the pool tree, the trash) and must be called; a crash before it leaves
// nothing Reconcile does not remove at start.
func (s *Store) Delete(ctx context.Context, proj, fp string) (finish func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	shared := false
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		ip, err := tx.ImagesProject(ctx, proj)
		if err != nil {
			return err
		}

		err = tx.DeleteImage(ctx, ip, fp)
		if err != nil {
			return err
		}

		shared, err = tx.ImageInUse(ctx, fp)
		return err
	})
	if err != nil {
		return nil, err
	}

	if shared {
		return func() {}, nil // another project's image: the files are its too
	}

	trash, err := os.MkdirTemp(s.dir, trashPrefix)
	if err != nil {
		s.log.Warn("deleting image files in place", "fingerprint", fp, "err", err)
		s.remove(fp)
		trash = ""
	} else {
		for _, p := range []string{s.TarballPath(fp), s.RootfsPath(fp), s.MetaDir(fp)} {
			err := os.Rename(p, filepath.Join(trash, filepath.Base(p)))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("moving image file to trash", "file", p, "err", err)
			}
		}
	}

	return func() {
		s.releaseFromPool(fp)
		if trash != "" {
			_ = os.RemoveAll(trash)
		}
	}, nil
}

// trashPrefix names the directories a delete moves image files into; Reconcile removes
// any left by a crash.
const trashPrefix = ".trash-"

// releaseFromPool deletes the pools' trees of an image that has no record (a pool keeps
// it for instances still on it), unless the image was imported again meanwhile.
func (s *Store) releaseFromPool(fp string) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.exists(context.Background(), fp) {
		return
	}

	for name, pool := range s.pools.Drivers() {
		err := pool.DeleteImage(fp)
		if err != nil {
			s.log.Warn("deleting image from the pool; removed at next start", "pool", name, "fingerprint", fp, "err", err)
		}
	}
}

func (s *Store) remove(fp string) {
	_ = os.Remove(s.TarballPath(fp))
	_ = os.Remove(s.RootfsPath(fp))
	_ = os.RemoveAll(s.MetaDir(fp))
}

// Reconcile removes what a crash left: uploads it interrupted, image files without a
// record, the trash of deletes, and pool images without a record (kept, released, while
// instances sit on them; removed once none does).
func (s *Store) Reconcile(ctx context.Context) error {
	known := map[string]bool{}
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		imgs, err := tx.GetImages(ctx)
		for _, i := range imgs {
			known[i.Fingerprint] = true
		}

		return err
	})
	if err != nil {
		return err
	}

	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}

	for _, e := range entries {
		n := e.Name()
		fp := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, ".tmp"), ".meta"), rootfsSuffix)
		if known[fp] && !strings.HasSuffix(n, ".tmp") {
			continue
		}

		s.log.Info("removing leftover image file", "file", n)
		_ = os.RemoveAll(filepath.Join(s.dir, n))
	}

	for name, pool := range s.pools.Drivers() {
		pooled, err := pool.ListImages()
		if err != nil {
			return err
		}

		for _, fp := range pooled {
			if known[fp] {
				continue
			}

			s.log.Info("deleting pool image without a record", "pool", name, "fingerprint", fp)
			err := pool.DeleteImage(fp)
			if err != nil {
				return err
			}
		}

		pool.PruneBackupImages()
	}

	return nil
}
