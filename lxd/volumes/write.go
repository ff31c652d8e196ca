package volumes

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
	"github.com/berth-dev/berth/shared/validate"
)

// Create makes a custom volume: empty, or a copy of another volume (req.Source, type
// "copy", from any pool). On failure nothing stays.
func (s *Service) Create(ctx context.Context, pool string, req api.StorageVolumesPost) error {
	err := s.checkCreate(req)
	if err != nil {
		return err
	}

	if req.Config == nil {
		req.Config = map[string]string{}
	}

	var from key
	if req.Source.Type == "copy" {
		n, _, _ := strings.Cut(req.Source.Name, "/")
		from = key{req.Source.Pool, n}
	}

	defer s.lockCopy(key{pool, req.Name}, from)()

	var src string
	if req.Source.Type == "copy" {
		src, err = s.copySource(ctx, req.Source, req.Config)
		if err != nil {
			return err
		}
	}

	err = s.create(ctx, pool, req.Name, req.Description, req.Config, func(dir string) error {
		if src == "" {
			return storage.MakeVolumeDir(dir)
		}

		return copyDir(ctx, src, dir, false)
	})
	if err != nil || src == "" || req.Source.VolumeOnly || strings.Contains(req.Source.Name, "/") {
		return err
	}

	return s.copySnapshots(ctx, req.Source, pool, req.Name)
}

// copySnapshots gives a copied volume the source's snapshots, as LXD does unless the copy
// is volume_only. A snapshot that fails to copy is left out and logged: the volume itself
// is already made.
func (s *Service) copySnapshots(ctx context.Context, src api.StorageVolumeSource, pool, name string) error {
	var snaps []db.StorageVolumeSnapshot
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		snaps, err = tx.GetStorageVolumeSnapshots(ctx, src.Pool, src.Name)
		return err
	})
	if err != nil {
		return err
	}

	srcDir, _, err := s.pools.Location(ctx, src.Pool)
	if err != nil {
		return err
	}

	for i := range snaps {
		sn := snapshotToAPI(&snaps[i])
		from := snapshotDir(srcDir, src.Name, sn.Name)
		err := s.addSnapshot(ctx, pool, name, sn, func(dir string) error { return storage.CopyVolumeDir(ctx, from, dir, true) })
		if err != nil {
			s.log.Warn("copying a volume snapshot; left out", "volume", name, "snapshot", sn.Name, "err", err)
		}
	}

	return nil
}

func (s *Service) checkCreate(req api.StorageVolumesPost) error {
	err := validateKey("storage volume", req.Name)
	if err == nil {
		err = checkType(req.Type)
	}

	if err == nil {
		err = checkContentType(req.ContentType)
	}

	if err == nil {
		err = validateConfig(req.Config)
	}

	if err == nil {
		err = checkDescription(req.Description)
	}

	if err != nil {
		return err
	}

	switch req.Source.Type {
	case "", "none":
	case "copy":
		if req.Source.Name == "" || req.Source.Pool == "" {
			return api.StatusErrorf(http.StatusBadRequest, "a copy needs source name and pool")
		}

		if req.Source.Refresh {
			return api.StatusErrorf(http.StatusBadRequest, "refreshing a volume copy is not supported")
		}
	default:
		return api.StatusErrorf(http.StatusBadRequest, "volume source type %q is not supported (copy and none are)", req.Source.Type)
	}

	return nil
}

// copySource finds the directory a copy reads (a volume, or "volume/snapshot") and fills
// the new volume's config from the source's where the request leaves it out.
func (s *Service) copySource(ctx context.Context, src api.StorageVolumeSource, config map[string]string) (string, error) {
	if src.Type != "" && src.Type != "copy" {
		return "", nil
	}

	name, snap, _ := strings.Cut(src.Name, "/")
	var v *db.StorageVolume
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		v, err = tx.GetStorageVolume(ctx, src.Pool, name)
		if err == nil && snap != "" {
			_, err = tx.GetStorageVolumeSnapshot(ctx, src.Pool, name, snap)
		}

		return err
	})
	if err != nil {
		return "", err
	}

	for k, val := range v.Config {
		if _, ok := config[k]; !ok {
			config[k] = val
		}
	}

	dir, _, err := s.pools.Location(ctx, src.Pool)
	if err != nil {
		return "", err
	}

	if snap != "" {
		return snapshotDir(dir, name, snap), nil
	}

	return volumeDir(dir, name), nil
}

// create makes the volume directory with fill, gives it its owner (the root of any
// container, see the package comment) and its size, and records it.
func (s *Service) create(ctx context.Context, pool, name, description string, config map[string]string, fill func(dir string) error) error {
	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return err
	}

	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetStorageVolume(ctx, pool, name)
		if err == nil {
			return api.StatusErrorf(http.StatusConflict, "storage volume %q already exists in pool %q", name, pool)
		}

		if isNotFound(err) {
			// Its project's limits.disk, before any work (and again when recorded).
			return instance.CheckVolume(ctx, tx, pool, name, config)
		}

		return err
	})
	if err != nil {
		return err
	}

	dir := volumeDir(poolDir, name)
	err = s.makeLayout(poolDir)
	if err != nil {
		return err
	}

	if config["size"] != "" {
		reason, err := storage.VolumeQuotaProblem(dir)
		if err != nil {
			return err
		}

		if reason != "" {
			return api.StatusErrorf(http.StatusBadRequest, "config key %q cannot be enforced on pool %q: %s", "size", pool, reason)
		}
	}

	if exists(dir) {
		return api.StatusErrorf(http.StatusConflict, "volume directory %q exists already", dir)
	}

	done, err := s.mark(pending{Pool: pool, Volume: name, Remove: []string{dir, snapshotsOf(poolDir, name)}})
	if err != nil {
		return err
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() {
		rerr := storage.RemoveVolumeDir(dir)
		if rerr != nil && exists(dir) {
			s.log.Warn("removing volume after failed create; retried at next start", "volume", name, "err", rerr)
			return
		}

		done()
	})

	err = fill(dir)
	if err != nil {
		return err
	}

	err = s.own(dir)
	if err == nil {
		err = s.applySize(dir, config["size"])
	}

	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := instance.CheckVolume(ctx, tx, pool, name, config)
		if err != nil {
			return err
		}

		return tx.CreateStorageVolume(ctx, db.StorageVolume{
			Pool: pool, Name: name, Description: description, ContentType: "filesystem",
			Config: maps.Clone(config), CreatedAt: time.Now().UTC(),
		})
	})
	if err != nil {
		return err
	}

	r.Success()
	done()
	s.log.Info("created storage volume", "pool", pool, "volume", name)
	s.emit("storage-volume-created", URL(pool, name), nil)

	return nil
}

// makeLayout creates custom/ and custom-snapshots/ in a pool, root's and closed to others.
func (s *Service) makeLayout(poolDir string) error {
	for _, d := range []string{customDir, snapshotsDir} {
		p := poolDir + "/" + d
		err := os.MkdirAll(p, 0o700)
		if err == nil {
			err = os.Chmod(p, 0o700)
		}

		if err != nil {
			return fmt.Errorf("creating volume directory: %w", err)
		}
	}

	return nil
}

// own gives a new, empty volume's top directory (host root's, 0700) to the
// container-neutral root, mode 0755; a copy or an import keeps the owner it brought.
func (s *Service) own(dir string) error {
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	if err != nil {
		return err
	}

	if st.Uid != 0 || st.Mode&0o777 != 0o700 {
		return nil
	}

	err = os.Lchown(dir, idmap.VolumeBase, idmap.VolumeBase)
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}

	return err
}

func (s *Service) applySize(dir, size string) error {
	if size == "" {
		reason, err := storage.VolumeQuotaProblem(dir)
		if err != nil || reason != "" {
			return nil // nothing to clear where nothing can be set
		}

		return storage.SetVolumeLimit(dir, 0)
	}

	n, err := parseSize(size)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "config key %q: %v", "size", err)
	}

	reason, err := storage.VolumeQuotaProblem(dir)
	if err != nil {
		return err
	}

	if reason != "" {
		return api.StatusErrorf(http.StatusBadRequest, "config key %q cannot be enforced: %s", "size", reason)
	}

	return storage.SetVolumeLimit(dir, n)
}

// Update applies a PUT (patch false: config replaced) or a PATCH (config merged, an empty
// description kept). A restore request (req.Restore) restores that snapshot instead.
func (s *Service) Update(ctx context.Context, pool, name, ifMatch string, req api.StorageVolumePut, patch bool) error {
	if req.Restore != "" {
		return s.Restore(ctx, pool, name, req.Restore)
	}

	err := checkDescription(req.Description)
	if err != nil {
		return err
	}

	defer s.lockVolume(pool, name)()

	cur, err := s.Get(ctx, pool, name)
	if err != nil {
		return err
	}

	err = etag.Match(ifMatch, ETag(cur))
	if err != nil {
		return err
	}

	config := map[string]string{}
	if patch {
		maps.Copy(config, cur.Config)
	}

	maps.Copy(config, req.Config)
	err = validateConfig(config)
	if err != nil {
		return err
	}

	if req.Description == "" && patch {
		req.Description = cur.Description
	}

	if countInstances(cur.UsedBy) > 1 && !validate.IsTrue(config["security.shared"]) {
		return api.StatusErrorf(http.StatusBadRequest, "storage volume %q is attached to several instances (%s): security.shared must stay true", name, strings.Join(cur.UsedBy, ", "))
	}

	if config["size"] != cur.Config["size"] {
		err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			return instance.CheckVolume(ctx, tx, pool, name, config)
		})
		if err != nil {
			return err
		}

		poolDir, _, err := s.pools.Location(ctx, pool)
		if err != nil {
			return err
		}

		err = s.applySize(volumeDir(poolDir, name), config["size"])
		if err != nil {
			return err
		}
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		if config["size"] != cur.Config["size"] {
			err := instance.CheckVolume(ctx, tx, pool, name, config)
			if err != nil {
				return err
			}
		}

		return tx.UpdateStorageVolume(ctx, pool, name, req.Description, config)
	})
	if err != nil {
		return err
	}

	s.emit("storage-volume-updated", URL(pool, name), nil)
	return nil
}

func countInstances(urls []string) int {
	n := 0
	for _, u := range urls {
		if strings.HasPrefix(u, "/1.0/instances/") {
			n++
		}
	}

	return n
}

// Rename renames a volume within its pool, or moves it to another pool (a copy, then the
// source deleted). A volume in use cannot be renamed or moved (its users name it).
func (s *Service) Rename(ctx context.Context, pool, name string, req api.StorageVolumePost) error {
	if req.Pool != "" && req.Pool != pool {
		return s.move(ctx, pool, name, req)
	}

	err := validateKey("storage volume", req.Name)
	if err != nil {
		return err
	}

	defer s.locks.take([]key{{pool, name}, {pool, req.Name}}, nil)()

	cur, err := s.Get(ctx, pool, name)
	if err != nil {
		return err
	}

	if len(cur.UsedBy) > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "storage volume %q is in use by %s: detach it first", name, strings.Join(cur.UsedBy, ", "))
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return err
	}

	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetStorageVolume(ctx, pool, req.Name)
		if err == nil {
			return api.StatusErrorf(http.StatusConflict, "storage volume %q already exists in pool %q", req.Name, pool)
		}

		if isNotFound(err) {
			return nil
		}

		return err
	})
	if err != nil {
		return err
	}

	old := []string{volumeDir(poolDir, name), snapshotsOf(poolDir, name)}
	renamed := []string{volumeDir(poolDir, req.Name), snapshotsOf(poolDir, req.Name)}
	for _, p := range renamed {
		if exists(p) {
			return api.StatusErrorf(http.StatusConflict, "%q exists already", p)
		}
	}

	done, err := s.mark(pending{Pool: pool, Volume: req.Name, Old: old, New: renamed})
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.RenameStorageVolume(ctx, pool, name, req.Name)
	})
	if err != nil {
		done()
		return err
	}

	for i := range old {
		if !exists(old[i]) {
			continue
		}

		err = os.Rename(old[i], renamed[i])
		if err != nil {
			// The marker stays: the next start finishes the rename.
			return fmt.Errorf("renaming volume directory: %w", err)
		}
	}

	done()
	s.emit("storage-volume-renamed", URL(pool, req.Name), map[string]any{"old_name": name})
	return nil
}

// move copies a volume to another pool (under req.Name, or its own name) and deletes the
// source.
func (s *Service) move(ctx context.Context, pool, name string, req api.StorageVolumePost) error {
	newName := req.Name
	if newName == "" {
		newName = name
	}

	cur, err := s.Get(ctx, pool, name)
	if err != nil {
		return err
	}

	if len(cur.UsedBy) > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "storage volume %q is in use by %s: detach it first", name, strings.Join(cur.UsedBy, ", "))
	}

	err = s.Create(ctx, req.Pool, api.StorageVolumesPost{
		StorageVolumePut: api.StorageVolumePut{Config: cur.Config, Description: cur.Description},
		Name:             newName,
		Type:             "custom",
		Source:           api.StorageVolumeSource{Type: "copy", Pool: pool, Name: name},
	})
	if err != nil {
		return err
	}

	return s.Delete(ctx, pool, name)
}

// Delete removes an unused volume with its snapshots: a volume attached to an instance or
// named by a profile is a 400 naming them.
func (s *Service) Delete(ctx context.Context, pool, name string) error {
	defer s.lockVolume(pool, name)()

	cur, err := s.Get(ctx, pool, name)
	if err != nil {
		return err
	}

	if len(cur.UsedBy) > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "storage volume %q is in use by %s", name, strings.Join(cur.UsedBy, ", "))
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return err
	}

	dir, snaps := volumeDir(poolDir, name), snapshotsOf(poolDir, name)
	done, err := s.mark(pending{Pool: pool, Volume: name, Remove: []string{dir, snaps}})
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteStorageVolume(ctx, pool, name)
	})
	if err != nil {
		done()
		return err
	}

	s.emit("storage-volume-deleted", URL(pool, name), nil)

	for _, p := range []string{dir, snaps} {
		if !exists(p) {
			continue
		}

		err = removeAll(p)
		if err != nil {
			// The marker stays: the next start retries.
			s.log.Warn("removing a deleted volume's files; retried at next start", "volume", name, "err", err)
			return nil
		}
	}

	done()
	_ = os.RemoveAll(s.BackupDir(pool, name))
	s.log.Info("deleted storage volume", "pool", pool, "volume", name)
	return nil
}

// removeAll removes a volume directory, or a volume's snapshot directory with each
// snapshot in it.
func removeAll(p string) error {
	if filepath.Base(filepath.Dir(p)) == customDir {
		return storage.RemoveVolumeDir(p)
	}

	ents, err := os.ReadDir(p)
	if err != nil {
		return err
	}

	for _, e := range ents {
		err = storage.RemoveVolumeDir(p + "/" + e.Name())
		if err != nil {
			return err
		}
	}

	return os.Remove(p)
}
