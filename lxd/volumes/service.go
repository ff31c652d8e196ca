// Package volumes owns custom storage volumes: their database rows (lxd/db), their
// directories in the pools (lxd/storage does the filesystem work), their snapshots,
// copies and backups, who uses them, and how a disk device finds one (Open). Handlers
// decode a request, call one method and respond.
//
// Layout, in the directory of the pool (lxd/pools):
//
//	<pool>/custom/<volume>                       the volume (a btrfs subvolume on btrfs)
//	<pool>/custom-snapshots/<volume>/<snapshot>  its snapshots (read-only btrfs snapshots,
//	                                             copies elsewhere)
//
// custom/ and custom-snapshots/ are root's, mode 0700: no host user reaches a volume's
// files, whatever a container stored there.
//
// Ownership: a volume is container-neutral. Its files are stored with the ids
// idmap.VolumeBase+k for container id k, and a disk device mounts it idmapped through a
// user namespace that maps that block onto the container's own range (lxd/device). So
// any container it is attached to, now or after its writer is gone, sees its own root and
// users as the owners, with no recursive chown per attach (which LXD's
// security.shifted=false path does, and which costs a walk of the whole volume and races
// with writers). Why this block and not the ids 0..65535: a container's root can store a
// setuid-root binary in a volume; stored as 0 it would be a setuid-root file on the host.
// Stored as VolumeBase it is setuid to an id nobody has, behind a 0700 directory and a
// nosuid mount. idmapped mounts need Linux 5.12 (btrfs 5.15), which Berth needs anyway.
//
// Crash safety: before a change touches the disk a marker (storage-volumes/.pending-*)
// records what it makes, removes or renames and which row decides; the marker goes once
// the database says how it ended. At start each marker is settled by that row (see
// settle).
package volumes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/atomicfile"
)

// Emit sends a lifecycle event ("storage-volume-created", its URL, extra context).
type Emit func(action, url string, ctx map[string]any)

// Pools is what volumes need of lxd/pools: where a pool's data lives.
type Pools interface {
	Location(ctx context.Context, name string) (dir, driver string, err error)
}

// Service manages custom volumes.
type Service struct {
	stateDir string
	db       *db.DB
	pools    Pools
	log      *slog.Logger
	emit     Emit

	// locks serialise the changes of each volume (locks.go).
	locks volLocks
}

// Start settles what interrupted operations left and starts pruning expired snapshots
// until ctx ends.
func Start(ctx context.Context, stateDir string, d *db.DB, pools Pools, log *slog.Logger, emit Emit) (*Service, error) {
	s := &Service{stateDir: stateDir, db: d, pools: pools, log: log, emit: emit}
	err := os.MkdirAll(s.markerDir(), 0o700)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", s.markerDir(), err)
	}

	s.settleAll(ctx)
	go s.pruneLoop(ctx)

	return s, nil
}

func (s *Service) markerDir() string { return filepath.Join(s.stateDir, "storage-volumes") }

// pending is what an operation in progress does to the disk. Row names the volume (and
// snapshot) whose database row decides how it ended.
type pending struct {
	Pool     string `json:"pool"`
	Volume   string `json:"volume"`
	Snapshot string `json:"snapshot,omitempty"`
	// Remove is made by a create or removed by a delete: it goes when the row is absent.
	Remove []string `json:"remove,omitempty"`
	// Old and New are the paths of a rename to the row's name: with the row, a path still
	// at Old moves to New; without it, one at New moves back.
	Old []string `json:"old,omitempty"`
	New []string `json:"new,omitempty"`
}

func (s *Service) markerPath(p pending) string {
	sum := sha256.Sum256([]byte(p.Pool + "\x00" + p.Volume + "\x00" + p.Snapshot))
	return filepath.Join(s.markerDir(), ".pending-"+hex.EncodeToString(sum[:12]))
}

// mark records p durably before the change starts; the returned func drops it.
func (s *Service) mark(p pending) (func(), error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}

	path := s.markerPath(p)
	err = atomicfile.WriteDurable(path, data, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recording volume operation: %w", err)
	}

	return func() {
		err := os.Remove(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("removing volume operation marker", "path", path, "err", err)
		}
	}, nil
}

// settleAll finishes or undoes what interrupted operations left, and removes the
// temporary trees of interrupted copies in every pool with volumes.
func (s *Service) settleAll(ctx context.Context) {
	markers, _ := filepath.Glob(filepath.Join(s.markerDir(), ".pending-*"))
	for _, m := range markers {
		var p pending
		data, err := os.ReadFile(m)
		if err == nil {
			err = json.Unmarshal(data, &p)
		}

		if err == nil {
			err = s.settle(ctx, p)
		}

		if err != nil {
			s.log.Warn("settling an interrupted volume operation; retried at next start", "marker", m, "err", err)
			continue
		}

		_ = os.Remove(m)
	}

	var vols []db.StorageVolume
	_ = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		vols, err = tx.GetStorageVolumes(ctx, nil)
		return err
	})

	seen := map[string]bool{}
	for _, v := range vols {
		if seen[v.Pool] {
			continue
		}

		seen[v.Pool] = true
		dir, _, err := s.pools.Location(ctx, v.Pool)
		if err == nil {
			storage.RemoveVolumeLeftovers(filepath.Join(dir, customDir))
		}
	}
}

func (s *Service) settle(ctx context.Context, p pending) error {
	have, err := s.rowExists(ctx, p)
	if err != nil {
		return err
	}

	if len(p.Old) > 0 && len(p.Old) == len(p.New) {
		for i := range p.Old {
			from, to := p.Old[i], p.New[i]
			if !have {
				from, to = to, from
			}

			if exists(from) && !exists(to) {
				err = os.Rename(from, to)
				if err != nil {
					return err
				}
			}
		}

		return nil
	}

	if have {
		return nil
	}

	for _, path := range p.Remove {
		if !exists(path) {
			continue
		}

		err = storage.RemoveVolumeDir(path)
		if err != nil {
			return err
		}

		s.log.Info("removed what an interrupted volume operation left", "path", path)
	}

	return nil
}

func (s *Service) rowExists(ctx context.Context, p pending) (bool, error) {
	var have bool
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		if p.Snapshot != "" {
			_, err = tx.GetStorageVolumeSnapshot(ctx, p.Pool, p.Volume, p.Snapshot)
		} else {
			_, err = tx.GetStorageVolume(ctx, p.Pool, p.Volume)
		}

		have = err == nil
		if isNotFound(err) {
			return nil
		}

		return err
	})

	return have, err
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// pruneLoop deletes expired snapshots once a minute.
func (s *Service) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.pruneExpired(ctx)
		}
	}
}
