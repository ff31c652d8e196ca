package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

// Pool layout:
//
//	<pool>/images/<fp>/rootfs        unpacked image, root-owned as in the tarball
//	<pool>/images/<fp>/released      DeleteImage released it while instances sat on it
//	<pool>/containers/<name>/image   fingerprint of the image the instance came from
//	<pool>/containers/<name>/…       driver-specific (rootfs, upper, work, lower)
//	<pool>/{images,containers}/.tmp-* work in progress; renamed into place when complete,
//	                                 removed by Load after a crash
const (
	imagesDir     = "images"
	containersDir = "containers"
	tmpPrefix     = ".tmp-"

	// TempSnapshotPrefix names the snapshots an export of a running instance takes and
	// deletes when done; one left by a crash has no DB row and is removed at start.
	TempSnapshotPrefix = "berth-export-"
	imageFile          = "image"
	releasedFile       = "released"
)

// pool holds what every driver shares: the layout and the image store.
type pool struct {
	dir    string
	driver string // the driver's name, for messages
	log    *slog.Logger

	// mu serialises image deletion (write) against instance creation (read), so an image
	// cannot vanish while an instance is being made from it.
	mu sync.RWMutex
}

func openPool(dir string, log *slog.Logger) (*pool, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("opening pool %q: path is not absolute", dir)
	}

	p := &pool{dir: filepath.Clean(dir), log: log}

	// containers/ lists the instances to host users (as LXD's does); each instance's own
	// directory keeps them out (restrictInstanceDir). Parents first: MkdirAll gives
	// missing parents the child's mode.
	for _, d := range []struct {
		sub  string
		mode os.FileMode
	}{{"", 0o711}, {imagesDir, 0o700}, {containersDir, 0o711}} {
		err := os.MkdirAll(filepath.Join(p.dir, d.sub), d.mode)
		if err != nil {
			return nil, fmt.Errorf("creating pool directory: %w", err)
		}

		err = os.Chmod(filepath.Join(p.dir, d.sub), d.mode)
		if err != nil {
			return nil, fmt.Errorf("setting mode of pool directory: %w", err)
		}
	}

	p.removeLeftovers()

	return p, nil
}

// removeLeftovers deletes the temporary trees of operations a crash interrupted.
func (p *pool) removeLeftovers() {
	for _, sub := range []string{imagesDir, containersDir, snapshotsDir + "/*"} {
		matches, _ := filepath.Glob(filepath.Join(p.dir, sub, tmpPrefix+"*"))
		if sub != imagesDir && sub != containersDir {
			temp, _ := filepath.Glob(filepath.Join(p.dir, sub, TempSnapshotPrefix+"*"))
			matches = append(matches, temp...)
		}

		for _, m := range matches {
			// A publish or export interrupted by a crash leaves its snapshot view
			// (.tmp-mnt-*) mounted: only the daemon mounts there, so it is undone.
			if strings.HasPrefix(filepath.Base(m), tmpPrefix+"mnt-") {
				p.unmountLeftover(m)
			}

			mounts, err := mountsUnder(m)
			if err != nil || len(mounts) > 0 {
				p.log.Warn("keeping leftover with mounts", "path", m, "mounts", mounts, "err", err)
				continue
			}

			err = os.RemoveAll(m)
			if err != nil {
				p.log.Warn("removing leftover", "path", m, "err", err)
				continue
			}

			p.log.Info("removed leftover of an interrupted operation", "path", m)
		}
	}
}

// instanceDirMode, with the instance's root as owner, is LXD's: no host user but root
// may list or search an instance's tree (its rootfs, upper layer, mount points), while
// a helper that acts as the container's root can still reach it by path.
const instanceDirMode = 0o100

// restrictInstanceDir gives an instance directory its owner and mode. Creation sets them
// and every mount sets them again: instances made by an older berthd had 0711.
func restrictInstanceDir(dir string, ids idmap.Set) error {
	err := os.Lchown(dir, int(ids.HostUID), int(ids.HostGID))
	if err == nil {
		err = os.Chmod(dir, instanceDirMode)
	}

	if err != nil {
		return fmt.Errorf("restricting %q: %w", dir, err)
	}

	return nil
}

// unmountLeftover unmounts everything below dir, innermost first.
func (p *pool) unmountLeftover(dir string) {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return
	}

	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, mp := range mounts {
		err := unmountAll(mp)
		if err != nil {
			p.log.Warn("unmounting leftover", "path", mp, "err", err)
		}
	}
}

func (p *pool) imageDir(fp string) string    { return filepath.Join(p.dir, imagesDir, fp) }
func (p *pool) imageRootfs(fp string) string { return filepath.Join(p.imageDir(fp), "rootfs") }
func (p *pool) instanceDir(n string) string  { return filepath.Join(p.dir, containersDir, n) }

// checkName refuses names that could escape or collide with the layout.
func checkName(kind, name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 ||
		strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\x00,:") {
		return api.StatusErrorf(http.StatusBadRequest, "invalid %s name %q", kind, name)
	}

	return nil
}

// CreateImage implements Driver. It is idempotent: when fp is present it does nothing, and
// of two concurrent calls the loser discards its copy.
func (p *pool) CreateImage(fp string, unpack func(rootfsDir string) error) error {
	err := checkName("image", fp)
	if err != nil {
		return err
	}

	// A present image is adopted again if DeleteImage had released it: under the lock, so
	// a prune deciding to remove it either runs first (and it is unpacked anew) or sees it
	// adopted.
	p.mu.Lock()
	present := p.HasImage(fp)
	if present {
		err = p.adoptImage(fp)
	}
	p.mu.Unlock()

	if present {
		return err
	}

	tmp, err := os.MkdirTemp(filepath.Join(p.dir, imagesDir), tmpPrefix+fp+"-")
	if err != nil {
		return fmt.Errorf("creating image %q: %w", fp, err)
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = os.RemoveAll(tmp) })

	rootfs := filepath.Join(tmp, "rootfs")
	err = os.Mkdir(rootfs, 0o755)
	if err != nil {
		return fmt.Errorf("creating image %q: %w", fp, err)
	}

	err = unpack(rootfs)
	if err != nil {
		return fmt.Errorf("unpacking image %q: %w", fp, err)
	}

	// The rename publishes the image, so its content must be on disk first.
	err = syncFS(tmp)
	if err != nil {
		return fmt.Errorf("creating image %q: %w", fp, err)
	}

	err = os.Rename(tmp, p.imageDir(fp))
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return nil // r.Fail removes our copy
	}

	if err != nil {
		return fmt.Errorf("publishing image %q: %w", fp, err)
	}

	r.Success()
	syncDir(filepath.Dir(tmp))
	p.log.Info("created image", "fingerprint", fp)

	return nil
}

// HasImage implements Driver.
func (p *pool) HasImage(fp string) bool {
	if checkName("image", fp) != nil {
		return false
	}

	fi, err := os.Lstat(p.imageRootfs(fp))

	return err == nil && fi.IsDir()
}

// deleteImage removes image fp. A missing image is not an error. inUse, if set, is
// consulted under the pool lock: while it lists users the image is released instead
// (marked, and removed by pruneImages when the last user goes).
func (p *pool) deleteImage(fp string, inUse func(fp string) ([]string, error)) error {
	err := checkName("image", fp)
	if err != nil {
		return err
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	_, err = os.Lstat(p.imageDir(fp))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}

	if inUse != nil {
		users, err := inUse(fp)
		if err != nil {
			return err
		}

		if len(users) > 0 {
			return p.releaseImage(fp, users)
		}
	}

	return p.removeTree(p.imageDir(fp), filepath.Join(p.dir, imagesDir))
}

// releaseImage marks image fp as kept only for its users. The marker is one file created
// in the image's directory: a crash leaves the image either adopted or released, and the
// store deletes an adopted image without a record again at start.
func (p *pool) releaseImage(fp string, users []string) error {
	f, err := os.OpenFile(filepath.Join(p.imageDir(fp), releasedFile), os.O_CREATE|os.O_WRONLY, 0o600)
	if err == nil {
		err = f.Close()
	}

	if err != nil {
		return fmt.Errorf("releasing image %q: %w", fp, err)
	}

	syncDir(p.imageDir(fp))
	p.log.Info("released image; kept until its last user goes", "fingerprint", fp, "users", len(users))

	return nil
}

// adoptImage undoes releaseImage. Called with p.mu held.
func (p *pool) adoptImage(fp string) error {
	err := os.Remove(filepath.Join(p.imageDir(fp), releasedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}

	if err != nil {
		return fmt.Errorf("adopting released image %q: %w", fp, err)
	}

	syncDir(p.imageDir(fp))
	p.log.Info("adopted released image", "fingerprint", fp)

	return nil
}

func (p *pool) isReleased(fp string) bool {
	_, err := os.Lstat(filepath.Join(p.imageDir(fp), releasedFile))
	return err == nil
}

// ListImages implements Driver.
func (p *pool) ListImages() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(p.dir, imagesDir))
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}

	var fps []string
	for _, e := range entries {
		fp := e.Name()
		if strings.HasPrefix(fp, ".") || strings.HasPrefix(fp, BackupImagePrefix) || !p.HasImage(fp) || p.isReleased(fp) {
			continue
		}

		fps = append(fps, fp)
	}

	return fps, nil
}

// imageUsers lists the instances recorded as made from image fp.
func (p *pool) imageUsers(fp string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(p.dir, containersDir))
	if err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}

	var users []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}

		got, err := p.instanceImage(e.Name())
		if err == nil && got == fp {
			users = append(users, e.Name())
		}
	}

	return append(users, p.snapshotImageUsers(fp)...), nil
}

// instanceImage reads the fingerprint an instance was made from.
func (p *pool) instanceImage(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(p.instanceDir(name), imageFile))
	if err != nil {
		return "", fmt.Errorf("reading image of instance %q: %w", name, err)
	}

	return strings.TrimSpace(string(data)), nil
}

// createInstance makes containers/<name> from image fp for a container with ids: fill
// populates a temporary directory, which is renamed into place only when complete.
func (p *pool) createInstance(name, fp string, ids idmap.Set, fill func(tmp string) error) error {
	err := checkName("instance", name)
	if err != nil {
		return err
	}

	err = checkName("image", fp)
	if err != nil {
		return err
	}

	p.mu.RLock()
	defer p.mu.RUnlock()

	if !p.HasImage(fp) {
		return api.StatusErrorf(http.StatusNotFound, "creating instance %q: %w: %q", name, ErrImageNotFound, fp)
	}

	_, err = os.Lstat(p.instanceDir(name))
	if err == nil {
		return api.StatusErrorf(http.StatusConflict, "creating instance %q: %w", name, ErrInstanceExists)
	}

	tmp, err := p.makeInstanceTemp(name)
	if err != nil {
		return fmt.Errorf("creating instance %q: %w", name, err)
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = os.RemoveAll(tmp) })

	err = fill(tmp)
	if err != nil {
		return fmt.Errorf("creating instance %q: %w", name, err)
	}

	err = os.WriteFile(filepath.Join(tmp, imageFile), []byte(fp+"\n"), 0o644)
	if err != nil {
		return fmt.Errorf("recording image of instance %q: %w", name, err)
	}

	err = restrictInstanceDir(tmp, ids)
	if err != nil {
		return fmt.Errorf("creating instance %q: %w", name, err)
	}

	err = os.Rename(tmp, p.instanceDir(name))
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return api.StatusErrorf(http.StatusConflict, "creating instance %q: %w", name, ErrInstanceExists)
	}

	if err != nil {
		return fmt.Errorf("publishing instance %q: %w", name, err)
	}

	r.Success()
	p.log.Info("created instance storage", "instance", name, "image", fp)

	return nil
}

// instanceExists returns a 404 StatusError when the instance has no storage.
func (p *pool) instanceExists(name string) error {
	err := checkName("instance", name)
	if err != nil {
		return err
	}

	_, err = os.Lstat(p.instanceDir(name))
	if errors.Is(err, os.ErrNotExist) {
		return api.StatusErrorf(http.StatusNotFound, "instance %q: %w", name, ErrInstanceNotFound)
	}

	if err != nil {
		return fmt.Errorf("checking instance %q: %w", name, err)
	}

	return nil
}

// deleteInstance removes the instance tree after unmount; a missing instance is not an
// error. It refuses while anything is still mounted below the tree: os.RemoveAll would
// descend into a mount, and the overlay's lower mount is the shared image.
func (p *pool) deleteInstance(name string, unmount func(string) error) error {
	err := checkName("instance", name)
	if err != nil {
		return err
	}

	dir := p.instanceDir(name)
	_, err = os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}

	err = unmount(name)
	if err != nil {
		return fmt.Errorf("deleting instance %q: %w", name, err)
	}

	err = p.removeTree(dir, filepath.Join(p.dir, containersDir))
	if err != nil {
		return fmt.Errorf("deleting instance %q: %w", name, err)
	}

	err = p.removeSnapshots(name)
	if err != nil {
		return fmt.Errorf("deleting snapshots of %q: %w", name, err)
	}

	p.log.Info("deleted instance storage", "instance", name)

	return nil
}

// removeTree renames dir to a temporary name in parent (so a crash never leaves a
// half-deleted tree under its real name) and removes it, refusing if anything is mounted
// below it.
func (p *pool) removeTree(dir, parent string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}

	if len(mounts) > 0 {
		return api.StatusErrorf(http.StatusConflict, "removing %q: %w: %s", dir, ErrStillMounted, strings.Join(mounts, ", "))
	}

	// rename(2) replaces the empty directory MkdirTemp made (os.Rename refuses to).
	doomed, err := os.MkdirTemp(parent, tmpPrefix+"del-"+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("removing %q: %w", dir, err)
	}

	err = unix.Rename(dir, doomed)
	if err != nil {
		return fmt.Errorf("removing %q: %w", dir, err)
	}

	// RemoveAll does not follow symlinks, so nothing outside the tree is touched.
	err = os.RemoveAll(doomed)
	if err != nil {
		return fmt.Errorf("removing %q: %w", doomed, err)
	}

	return nil
}

// syncFS flushes the filesystem holding path.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}

	defer func() { _ = f.Close() }()

	err = unix.Syncfs(int(f.Fd()))
	if err != nil {
		return fmt.Errorf("syncing filesystem of %q: %w", path, err)
	}

	return nil
}

// syncDir makes a rename in dir durable; failure only weakens durability, so it is ignored.
func syncDir(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}

	_ = f.Sync()
	_ = f.Close()
}
