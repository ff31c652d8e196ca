package instance

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// ValidateSnapshotName refuses names the URL scheme or the pool layout cannot carry.
func ValidateSnapshotName(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 255 || strings.HasPrefix(s, ".") ||
		strings.ContainsAny(s, "/\x00,:") || strings.TrimSpace(s) != s {
		return api.StatusErrorf(http.StatusBadRequest, "invalid snapshot name %q", s)
	}

	if strings.HasPrefix(s, storage.TempSnapshotPrefix) {
		return api.StatusErrorf(http.StatusBadRequest, "invalid snapshot name %q: the prefix %q is reserved for exports", s, storage.TempSnapshotPrefix)
	}

	return nil
}

// NextSnapshotName returns the first free name snap0, snap1, … of an instance.
func (m *Manager) NextSnapshotName(ctx context.Context, name string) (string, error) {
	var snaps []db.Snapshot
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		snaps, err = tx.GetInstanceSnapshots(ctx, name)
		return err
	})
	if err != nil {
		return "", err
	}

	taken := map[string]bool{}
	for _, s := range snaps {
		taken[s.Name] = true
	}

	for i := 0; ; i++ {
		n := fmt.Sprintf("snap%d", i)
		if !taken[n] {
			return n, nil
		}
	}
}

// Snapshots lists an instance's snapshots, oldest first.
func (m *Manager) Snapshots(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	var snaps []db.Snapshot
	var profiles map[string]*db.Profile
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		snaps, err = tx.GetInstanceSnapshots(ctx, name)
		if err != nil {
			return err
		}

		profiles, err = allProfiles(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := make([]api.InstanceSnapshot, 0, len(snaps))
	for i := range snaps {
		out = append(out, renderSnapshot(&snaps[i], profiles))
	}

	return out, nil
}

// Snapshot returns one snapshot.
func (m *Manager) Snapshot(ctx context.Context, name, snap string) (*api.InstanceSnapshot, error) {
	var s *db.Snapshot
	var profiles map[string]*db.Profile
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		s, err = tx.GetInstanceSnapshot(ctx, name, snap)
		if err != nil {
			return err
		}

		profiles, err = allProfiles(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := renderSnapshot(s, profiles)
	return &out, nil
}

// renderSnapshots fills the snapshots of a full instance object (empty on error).
func (m *Manager) renderSnapshots(name string) []api.InstanceSnapshot {
	snaps, err := m.Snapshots(context.Background(), name)
	if err != nil {
		return []api.InstanceSnapshot{}
	}

	return snaps
}

func allProfiles(ctx context.Context, tx *db.Tx) (map[string]*db.Profile, error) {
	ps, err := tx.GetProfiles(ctx)
	if err != nil {
		return nil, err
	}

	out := map[string]*db.Profile{}
	for i := range ps {
		out[ps[i].Name] = &ps[i]
	}

	return out, nil
}

func renderSnapshot(s *db.Snapshot, profiles map[string]*db.Profile) api.InstanceSnapshot {
	config, devices := Expand(&db.Instance{Config: s.Config, Devices: s.Devices, Profiles: s.Profiles}, profiles)
	return api.InstanceSnapshot{
		Architecture:    s.Architecture,
		Config:          s.Config,
		CreatedAt:       s.CreatedAt,
		Devices:         s.Devices,
		Ephemeral:       s.Ephemeral,
		ExpandedConfig:  config,
		ExpandedDevices: devices,
		ExpiresAt:       s.ExpiresAt,
		LastUsedAt:      time.Time{},
		Name:            s.Name,
		Profiles:        s.Profiles,
		Stateful:        s.Stateful,
		Size:            -1,
	}
}

// CreateSnapshot takes a stateless snapshot. A running container is frozen for the copy
// of its data and thawed after (one already frozen stays frozen), so the snapshot is
// consistent as of one instant. The DB row is written once the snapshot is complete on
// disk: until then the API does not show it. A nil expiresAt means the instance's
// snapshots.expiry (if any).
func (m *Manager) CreateSnapshot(ctx context.Context, name, snap string, expiresAt *time.Time) error {
	err := ValidateSnapshotName(snap)
	if err != nil {
		return err
	}

	ctx, done := m.track(ctx, name)
	defer done()

	unlock := m.lock(name)
	defer unlock()

	err = ctx.Err()
	if err != nil {
		return err
	}

	inst, profiles, err := m.load(ctx, name)
	if err != nil {
		return err
	}

	expiry := m.defaultSnapshotExpiry(inst, profiles)
	if expiresAt != nil {
		expiry = expiresAt.UTC()
	}

	err = m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetInstanceSnapshot(ctx, name, snap)
		if err == nil {
			return api.StatusErrorf(http.StatusConflict, "snapshot %q of %q already exists", snap, name)
		}

		if api.StatusErrorCheck(err, http.StatusNotFound) {
			return nil
		}

		return err
	})
	if err != nil {
		return err
	}

	start := time.Now()
	err = m.frozen(name, func() error { return m.cfg.Pool.CreateSnapshot(ctx, name, snap) })
	if err != nil {
		return fmt.Errorf("snapshotting %q: %w", name, err)
	}

	m.log.Debug("snapshot copied", "instance", name, "snapshot", snap, "duration", time.Since(start))

	row := db.Snapshot{
		Instance:     name,
		Name:         snap,
		Architecture: inst.Architecture,
		Description:  inst.Description,
		Ephemeral:    inst.Ephemeral,
		CreatedAt:    time.Now().UTC(),
		ExpiresAt:    expiry,
		Config:       inst.Config,
		Devices:      inst.Devices,
		Profiles:     inst.Profiles,
	}

	// The copy is complete: the row is written even if the operation is cancelled now.
	err = m.cfg.DB.Transaction(context.WithoutCancel(ctx), func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstanceSnapshot(ctx, row)
		return err
	})
	if err != nil {
		_ = m.cfg.Pool.DeleteSnapshot(name, snap)
		return err
	}

	m.event("instance-snapshot-created", name+"/snapshots/"+snap, nil)
	m.pruneAt(expiry)
	return nil
}

// frozen runs fn with the instance's processes frozen if it is running, so its files do
// not change under a copy. Preconditions: the instance lock is held.
func (m *Manager) frozen(name string, fn func() error) error {
	mon := m.monitor(name)
	if mon == nil || mon.Frozen() {
		return fn()
	}

	err := mon.Freeze()
	if err != nil {
		return fmt.Errorf("freezing %q: %w", name, err)
	}

	fnErr := fn()
	err = mon.Thaw()
	if err != nil {
		m.log.Error("thawing after copy", "instance", name, "err", err)
		if fnErr == nil {
			fnErr = fmt.Errorf("thawing %q: %w", name, err)
		}
	}

	return fnErr
}

// RenameSnapshot renames a snapshot on disk and in the DB.
func (m *Manager) RenameSnapshot(ctx context.Context, name, snap, newName string) error {
	err := ValidateSnapshotName(newName)
	if err != nil {
		return err
	}

	unlock := m.lock(name)
	defer unlock()

	err = m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.RenameInstanceSnapshot(ctx, name, snap, newName)
		if err != nil {
			return err
		}

		// Inside the transaction: if the rename on disk fails, the row rename rolls back.
		return m.cfg.Pool.RenameSnapshot(name, snap, newName)
	})
	if err != nil {
		return err
	}

	m.event("instance-snapshot-renamed", name+"/snapshots/"+newName, map[string]any{"old_name": snap})
	return nil
}

// DeleteSnapshot removes a snapshot: the row first (it disappears from the API at once),
// then its files.
func (m *Manager) DeleteSnapshot(ctx context.Context, name, snap string) error {
	unlock := m.lock(name)
	defer unlock()

	err := m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteInstanceSnapshot(ctx, name, snap)
	})
	if err != nil {
		return err
	}

	err = m.cfg.Pool.DeleteSnapshot(name, snap)
	if err != nil {
		return fmt.Errorf("deleting snapshot files of %s/%s: %w", name, snap, err)
	}

	m.cfg.Pool.PruneBackupImages()

	m.event("instance-snapshot-deleted", name+"/snapshots/"+snap, nil)
	return nil
}

// Restore rolls an instance back to a snapshot: its files and its settings (config,
// devices, profiles; the instance's own volatile keys are kept). A running instance is
// stopped (killed, as LXD does), restored and started again.
func (m *Manager) Restore(ctx context.Context, name, snap string) error {
	unlock := m.lock(name)
	defer unlock()

	inst, _, err := m.load(ctx, name)
	if err != nil {
		return err
	}

	var s *db.Snapshot
	err = m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		s, err = tx.GetInstanceSnapshot(ctx, name, snap)
		if err != nil {
			return err
		}

		for _, p := range s.Profiles {
			_, err := tx.GetProfile(ctx, p)
			if err != nil {
				return fmt.Errorf("snapshot %q uses profile %q: %w", snap, p, err)
			}
		}

		return nil
	})
	if err != nil {
		return err
	}

	wasRunning := m.monitor(name) != nil
	if wasRunning && inst.Ephemeral {
		return api.StatusErrorf(http.StatusBadRequest, "instance %q is ephemeral and running: stopping it for the restore would delete it", name)
	}

	if wasRunning {
		err := m.stop(ctx, name, 0, true)
		if err != nil {
			return err
		}
	}

	err = m.cfg.Pool.UnmountInstance(name)
	if err != nil {
		return err
	}

	err = m.cfg.Pool.RestoreSnapshot(ctx, name, snap)
	if err != nil {
		return fmt.Errorf("restoring %s/%s: %w", name, snap, err)
	}

	m.cfg.Pool.PruneBackupImages()

	config := map[string]string{}
	for k, v := range s.Config {
		if !strings.HasPrefix(k, "volatile.") {
			config[k] = v
		}
	}

	for k, v := range inst.Config {
		if strings.HasPrefix(k, "volatile.") {
			config[k] = v
		}
	}

	restored := *inst
	restored.Architecture, restored.Ephemeral, restored.Description = s.Architecture, s.Ephemeral, s.Description
	restored.Config, restored.Devices, restored.Profiles = config, s.Devices, s.Profiles
	err = m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateInstance(ctx, name, restored)
	})
	if err != nil {
		return err
	}

	m.event("instance-restored", name, map[string]any{"snapshot": snap})
	if wasRunning {
		return m.start(ctx, name)
	}

	return nil
}
