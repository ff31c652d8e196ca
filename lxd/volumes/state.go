package volumes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// State is a volume's live state (LXD's storage_volume_state): its usage where the pool
// knows it without walking the volume (a btrfs pool with quotas: the bytes its subvolume
// references), else none, as LXD answers on drivers that cannot tell. Total is the size
// limit, -1 without one.
func (s *Service) State(ctx context.Context, pool, name string) (*api.StorageVolumeState, error) {
	v, err := s.Get(ctx, pool, name)
	if err != nil {
		return nil, err
	}

	poolDir, _, err := s.pools.Location(ctx, pool)
	if err != nil {
		return nil, err
	}

	dir := volumeDir(poolDir, name)
	reason, err := storage.VolumeQuotaProblem(dir)
	if err != nil {
		return nil, err
	}

	out := &api.StorageVolumeState{}
	if reason != "" {
		return out, nil
	}

	used, err := storage.VolumeUsage(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the usage of storage volume %q: %w", name, err)
	}

	total := int64(-1)
	if size := v.Config["size"]; size != "" {
		total, err = parseSize(size)
		if err != nil {
			return nil, err
		}
	}

	out.Usage = &api.StorageVolumeStateUsage{Used: uint64(max(used, 0)), Total: total}
	return out, nil
}

// RenameBackup renames backup b of a volume to newName: 404 for a missing backup, 409
// when newName is taken (the rename never replaces one).
func (s *Service) RenameBackup(pool, name, b, newName string) error {
	err := ValidateName("backup", newName)
	if err != nil {
		return err
	}

	from, err := s.BackupFile(pool, name, b)
	if err != nil {
		return err
	}

	to := filepath.Join(s.BackupDir(pool, name), newName)
	err = unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, os.ErrExist) {
		return api.StatusErrorf(http.StatusConflict, "backup %q of storage volume %q already exists", newName, name)
	}

	if err != nil {
		return fmt.Errorf("renaming backup %q of storage volume %q: %w", b, name, err)
	}

	return nil
}
