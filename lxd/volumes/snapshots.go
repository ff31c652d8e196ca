package volumes

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

func snapshotToAPI(s *db.StorageVolumeSnapshot) api.StorageVolumeSnapshot {
	out := api.StorageVolumeSnapshot{
		StorageVolumeSnapshotPut: api.StorageVolumeSnapshotPut{Description: s.Description},
		Name:                     s.Name,
		Config:                   s.Config,
		ContentType:              "filesystem",
		CreatedAt:                s.CreatedAt,
	}

	if !s.ExpiresAt.IsZero() {
		t := s.ExpiresAt
		out.ExpiresAt = &t
	}

	return out
}

// Snapshots lists a volume's snapshots, oldest first.
func (s *Service) Snapshots(ctx context.Context, pool, name string) ([]api.StorageVolumeSnapshot, error) {
	var rows []db.StorageVolumeSnapshot
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetStorageVolumeSnapshots(ctx, pool, name)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := make([]api.StorageVolumeSnapshot, 0, len(rows))
	for i := range rows {
		out = append(out, snapshotToAPI(&rows[i]))
	}

	return out, nil
}

// Snapshot reads one snapshot, or a 404.
func (s *Service) Snapshot(ctx context.Context, pool, name, snap string) (*api.StorageVolumeSnapshot, error) {
	var row *db.StorageVolumeSnapshot
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		row, err = tx.GetStorageVolumeSnapshot(ctx, pool, name, snap)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := snapshotToAPI(row)
	return &out, nil
}

// CreateSnapshot takes a snapshot of a volume: a read-only btrfs snapshot on btrfs, a
// copy elsewhere. An empty name gets the next free snapN, as LXD.
func (s *Service) CreateSnapshot(ctx context.Context, pool, name string, req api.StorageVolumeSnapshotsPost) (string, error) {
	defer s.lockVolume(pool, name)()

	var vol *db.StorageVolume
	var snaps []db.StorageVolumeSnapshot
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		vol, err = tx.GetStorageVolume(ctx, pool, name)
		if err == nil {
			snaps, err = tx.GetStorageVolumeSnapshots(ctx, pool, name)
		}

		return err
	})
	if err != nil {
		return "", err
	}

	if len(snaps) >= maxSnapshots {
		return "", api.StatusErrorf(http.StatusBadRequest, "storage volume %q has %d snapshots, the most it may have", name, len(snaps))
	}

	if req.Name == "" {
		req.Name = nextSnapshotName(snaps)
	}

	err = ValidateName("snapshot", req.Name)
	if err != nil {
		return "", err
	}

	for _, sn := range snaps {
		if sn.Name == req.Name {
			return "", api.StatusErrorf(http.StatusConflict, "snapshot %q of storage volume %q already exists", req.Name, name)
		}
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return "", err
	}

	err = os.MkdirAll(snapshotsOf(poolDir, name), 0o700)
	if err != nil {
		return "", err
	}

	dst := snapshotDir(poolDir, name, req.Name)
	done, err := s.mark(pending{Pool: pool, Volume: name, Snapshot: req.Name, Remove: []string{dst}})
	if err != nil {
		return "", err
	}

	r := revert.New()
	defer r.Fail()
	r.Add(func() {
		if storage.RemoveVolumeDir(dst) == nil || !exists(dst) {
			done()
		}
	})

	err = storage.CopyVolumeDir(ctx, volumeDir(poolDir, name), dst, true)
	if err != nil {
		return "", err
	}

	row := db.StorageVolumeSnapshot{Pool: pool, Volume: name, Name: req.Name, Config: maps.Clone(vol.Config), CreatedAt: time.Now().UTC()}
	if req.ExpiresAt != nil {
		row.ExpiresAt = req.ExpiresAt.UTC()
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.CreateStorageVolumeSnapshot(ctx, row)
	})
	if err != nil {
		return "", err
	}

	r.Success()
	done()
	s.emit("storage-volume-snapshot-created", snapshotURL(pool, name, req.Name), nil)
	return req.Name, nil
}

func nextSnapshotName(snaps []db.StorageVolumeSnapshot) string {
	taken := map[string]bool{}
	for _, s := range snaps {
		taken[s.Name] = true
	}

	for i := 0; ; i++ {
		n := fmt.Sprintf("snap%d", i)
		if !taken[n] {
			return n
		}
	}
}

// UpdateSnapshot sets a snapshot's description and expiry (PUT; PATCH keeps an unset
// description).
func (s *Service) UpdateSnapshot(ctx context.Context, pool, name, snap string, req api.StorageVolumeSnapshotPut, patch bool) error {
	err := checkDescription(req.Description)
	if err != nil {
		return err
	}

	defer s.lockVolume(pool, name)()

	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		cur, err := tx.GetStorageVolumeSnapshot(ctx, pool, name, snap)
		if err != nil {
			return err
		}

		if req.Description != "" || !patch {
			cur.Description = req.Description
		}

		if req.ExpiresAt != nil {
			cur.ExpiresAt = req.ExpiresAt.UTC()
		} else if !patch {
			cur.ExpiresAt = time.Time{}
		}

		return tx.UpdateStorageVolumeSnapshot(ctx, *cur)
	})
}

// RenameSnapshot renames a snapshot.
func (s *Service) RenameSnapshot(ctx context.Context, pool, name, snap, newName string) error {
	err := ValidateName("snapshot", newName)
	if err != nil {
		return err
	}

	defer s.lockVolume(pool, name)()

	_, err = s.Snapshot(ctx, pool, name, snap)
	if err != nil {
		return err
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return err
	}

	from, to := snapshotDir(poolDir, name, snap), snapshotDir(poolDir, name, newName)
	if exists(to) {
		return api.StatusErrorf(http.StatusConflict, "snapshot %q of storage volume %q already exists", newName, name)
	}

	done, err := s.mark(pending{Pool: pool, Volume: name, Snapshot: newName, Old: []string{from}, New: []string{to}})
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.RenameStorageVolumeSnapshot(ctx, pool, name, snap, newName)
	})
	if err != nil {
		done()
		return err
	}

	err = os.Rename(from, to)
	if err != nil {
		return fmt.Errorf("renaming snapshot directory (finished at next start): %w", err)
	}

	done()
	return nil
}

// DeleteSnapshot deletes a snapshot.
func (s *Service) DeleteSnapshot(ctx context.Context, pool, name, snap string) error {
	defer s.lockVolume(pool, name)()

	return s.deleteSnapshot(ctx, pool, name, snap)
}

func (s *Service) deleteSnapshot(ctx context.Context, pool, name, snap string) error {
	_, err := s.Snapshot(ctx, pool, name, snap)
	if err != nil {
		return err
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return err
	}

	dir := snapshotDir(poolDir, name, snap)
	done, err := s.mark(pending{Pool: pool, Volume: name, Snapshot: snap, Remove: []string{dir}})
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteStorageVolumeSnapshot(ctx, pool, name, snap)
	})
	if err != nil {
		done()
		return err
	}

	s.emit("storage-volume-snapshot-deleted", snapshotURL(pool, name, snap), nil)
	err = storage.RemoveVolumeDir(dir)
	if err != nil && exists(dir) {
		s.log.Warn("removing a deleted snapshot; retried at next start", "snapshot", dir, "err", err)
		return nil
	}

	done()
	return nil
}

// Restore puts a volume back to a snapshot: a writable copy of the snapshot is made beside
// the volume and exchanged with it in one rename (RENAME_EXCHANGE), so a crash leaves the
// old or the new content whole; the old goes after. A volume used by a running
// instance is refused (restore_busy.go): its mounts hold the old directory.
func (s *Service) Restore(ctx context.Context, pool, name, snap string) error {
	defer s.lockVolume(pool, name)()

	cur, err := s.Get(ctx, pool, name)
	if err != nil {
		return err
	}

	done, err := s.beginRestore(ctx, pool, name)
	if err != nil {
		return err
	}

	defer done()

	_, err = s.Snapshot(ctx, pool, name, snap)
	if err != nil {
		return err
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return err
	}

	dir := volumeDir(poolDir, name)
	tmp := filepath.Join(poolDir, customDir, ".tmp-restore-"+name)
	if exists(tmp) {
		err = storage.RemoveVolumeDir(tmp)
		if err != nil {
			return err
		}
	}

	err = storage.CopyVolumeDir(ctx, snapshotDir(poolDir, name, snap), tmp, false)
	if err != nil {
		return err
	}

	err = s.applySize(tmp, cur.Config["size"])
	if err == nil {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE)
	}

	if err != nil {
		_ = storage.RemoveVolumeDir(tmp)
		return fmt.Errorf("restoring snapshot %q of %q: %w", snap, name, err)
	}

	err = storage.RemoveVolumeDir(tmp)
	if err != nil {
		s.log.Warn("removing a volume's content replaced by a restore; removed at next start", "path", tmp, "err", err)
	}

	s.emit("storage-volume-restored", URL(pool, name), map[string]any{"snapshot": snap})
	return nil
}

// pruneExpired deletes the snapshots whose expiry has passed.
func (s *Service) pruneExpired(ctx context.Context) {
	var expired []db.StorageVolumeSnapshot
	now := time.Now()
	_ = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		vols, err := tx.GetStorageVolumes(ctx, nil)
		if err != nil {
			return err
		}

		for _, v := range vols {
			snaps, err := tx.GetStorageVolumeSnapshots(ctx, v.Pool, v.Name)
			if err != nil {
				return err
			}

			for _, sn := range snaps {
				if !sn.ExpiresAt.IsZero() && sn.ExpiresAt.Before(now) {
					expired = append(expired, sn)
				}
			}
		}

		return nil
	})

	for _, sn := range expired {
		err := s.DeleteSnapshot(ctx, sn.Pool, sn.Volume, sn.Name)
		if err != nil {
			s.log.Warn("deleting expired volume snapshot", "volume", sn.Volume, "snapshot", sn.Name, "err", err)
			continue
		}

		s.log.Info("deleted expired volume snapshot", "pool", sn.Pool, "volume", sn.Volume, "snapshot", sn.Name)
	}
}
