// Package snapshot takes, lists, renames, deletes, restores and expires the snapshots of
// Berth's instances. It sits below lxd/instance, which constructs it and reaches it
// through Host: the instance manager's locks, its record of tree work, running instances
// and the life cycle that a restore stops and starts.
package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// ValidateName refuses names the URL scheme or the pool layout cannot carry.
func ValidateName(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 255 || strings.HasPrefix(s, ".") ||
		strings.ContainsAny(s, "/\x00,:") || strings.TrimSpace(s) != s {
		return api.StatusErrorf(http.StatusBadRequest, "invalid snapshot name %q", s)
	}

	if strings.HasPrefix(s, storage.TempSnapshotPrefix) {
		return api.StatusErrorf(http.StatusBadRequest, "invalid snapshot name %q: the prefix %q is reserved for exports", s, storage.TempSnapshotPrefix)
	}

	return nil
}

// Host is what snapshots use of the instance manager (lxd/instance implements it): its
// locks, its record of tree work (cancelled by Delete), running instances, its profile
// expansion, and the life cycle that a restore stops and starts.
type Host interface {
	// Lock serialises state changes of one instance; the result unlocks.
	Lock(name string) func()
	// Track derives a context for tree work that deleting the instance cancels; done
	// must be called when the work ends.
	Track(ctx context.Context, name string) (ctx2 context.Context, done func())
	// Load reads an instance's row and every profile.
	Load(ctx context.Context, name string) (*db.Instance, map[string]*db.Profile, error)
	// Expand merges profiles and the instance's own keys (instance.Expand).
	Expand(inst *db.Instance, profiles map[string]*db.Profile) (map[string]string, map[string]map[string]string)
	// Running says whether the instance runs.
	Running(name string) bool
	// Frozen runs fn with the instance frozen if it runs. The instance lock is held.
	Frozen(name string, fn func() error) error
	// Kill stops a running instance at once, as a restore does. The instance lock is held.
	Kill(ctx context.Context, name string) error
	// Member is this host's member id (members.id): the pruner takes its instances only.
	Member() int64
	// Start starts a stopped instance. The instance lock is held.
	Start(ctx context.Context, name string) error
	// Event sends a lifecycle event about an instance (or name/snapshots/snap).
	Event(action, name string, ctx map[string]any)
	// Pool returns the driver of the storage pool an instance lives on.
	Pool(ctx context.Context, name string) (storage.Driver, error)
	// CheckProject refuses (403 naming the key, 400 naming the limit) a new state of an
	// instance its project's restrictions or limits do not allow.
	CheckProject(ctx context.Context, tx *db.Tx, next *db.Instance) error
}

// Snapshots takes, lists, renames, deletes, restores and expires the snapshots of the
// manager's instances (Manager.Snapshots).
type Snapshots struct {
	host Host
	db   *db.DB
	log  *slog.Logger

	pruneKick chan struct{} // wakes RunPruner early
}

// New returns the snapshots of host's instances, kept in each instance's pool and
// recorded in d.
func New(host Host, d *db.DB, log *slog.Logger) *Snapshots {
	return &Snapshots{host: host, db: d, log: log, pruneKick: make(chan struct{}, 1)}
}

// NextName returns the first free name snap0, snap1, … of an instance.
func (sn *Snapshots) NextName(ctx context.Context, name string) (string, error) {
	var snaps []db.Snapshot
	err := sn.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
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

// List lists an instance's snapshots, oldest first.
func (sn *Snapshots) List(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	snaps, profiles, err := sn.read(ctx, func(ctx context.Context, tx *db.Tx) ([]db.Snapshot, error) {
		return tx.GetInstanceSnapshots(ctx, name)
	})
	if err != nil {
		return nil, err
	}

	out := make([]api.InstanceSnapshot, 0, len(snaps))
	for i := range snaps {
		out = append(out, sn.Render(&snaps[i], profiles))
	}

	return out, nil
}

// ListAll lists the snapshots of every instance by instance name, oldest first, in one
// read.
func (sn *Snapshots) ListAll(ctx context.Context) (map[string][]api.InstanceSnapshot, error) {
	snaps, profiles, err := sn.read(ctx, func(ctx context.Context, tx *db.Tx) ([]db.Snapshot, error) {
		return tx.GetAllSnapshots(ctx)
	})
	if err != nil {
		return nil, err
	}

	out := map[string][]api.InstanceSnapshot{}
	for i := range snaps {
		out[snaps[i].Instance] = append(out[snaps[i].Instance], sn.Render(&snaps[i], profiles))
	}

	return out, nil
}

// read reads the snapshots get returns and every profile (to render their expanded
// config) in one transaction.
func (sn *Snapshots) read(ctx context.Context, get func(context.Context, *db.Tx) ([]db.Snapshot, error)) ([]db.Snapshot, map[string]*db.Profile, error) {
	var snaps []db.Snapshot
	var profiles map[string]*db.Profile
	err := sn.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		snaps, err = get(ctx, tx)
		if err != nil {
			return err
		}

		profiles, err = allProfiles(ctx, tx)
		return err
	})

	return snaps, profiles, err
}

// Get returns one snapshot.
func (sn *Snapshots) Get(ctx context.Context, name, snap string) (*api.InstanceSnapshot, error) {
	var s *db.Snapshot
	var profiles map[string]*db.Profile
	err := sn.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
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

	out := sn.Render(s, profiles)
	return &out, nil
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

// Render is the API object of a snapshot row, expanded with profiles.
func (sn *Snapshots) Render(s *db.Snapshot, profiles map[string]*db.Profile) api.InstanceSnapshot {
	config, devices := sn.host.Expand(&db.Instance{Config: s.Config, Devices: s.Devices, Profiles: s.Profiles}, profiles)
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
		Profiles:        project.ProfileNames(s.Profiles),
		Stateful:        s.Stateful,
		Size:            -1,
	}
}

// Create takes a stateless snapshot. A running container is frozen for the copy
// of its data and thawed after (one already frozen stays frozen), so the snapshot is
// consistent as of one instant. The DB row is written once the snapshot is complete on
// disk: until then the API does not show it. A nil expiresAt means the instance's
// snapshots.expiry (if any).
func (sn *Snapshots) Create(ctx context.Context, name, snap string, expiresAt *time.Time) error {
	err := ValidateName(snap)
	if err != nil {
		return err
	}

	ctx, done := sn.host.Track(ctx, name)
	defer done()

	unlock := sn.host.Lock(name)
	defer unlock()

	err = ctx.Err()
	if err != nil {
		return err
	}

	inst, profiles, err := sn.host.Load(ctx, name)
	if err != nil {
		return err
	}

	expiry := sn.defaultExpiry(inst, profiles)
	if expiresAt != nil {
		expiry = expiresAt.UTC()
	}

	err = sn.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
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

	pool, err := sn.host.Pool(ctx, name)
	if err != nil {
		return err
	}

	start := time.Now()
	err = sn.host.Frozen(name, func() error { return pool.CreateSnapshot(ctx, name, snap) })
	if err != nil {
		return fmt.Errorf("snapshotting %q: %w", name, err)
	}

	sn.log.Debug("snapshot copied", "instance", name, "snapshot", snap, "duration", time.Since(start))

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
	err = sn.db.Transaction(context.WithoutCancel(ctx), func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstanceSnapshot(ctx, row)
		return err
	})
	if err != nil {
		_ = pool.DeleteSnapshot(name, snap)
		return err
	}

	sn.host.Event("instance-snapshot-created", name+"/snapshots/"+snap, nil)
	sn.pruneAt(expiry)
	return nil
}

// Rename renames a snapshot on disk and in the DB.
func (sn *Snapshots) Rename(ctx context.Context, name, snap, newName string) error {
	err := ValidateName(newName)
	if err != nil {
		return err
	}

	unlock := sn.host.Lock(name)
	defer unlock()

	pool, err := sn.host.Pool(ctx, name)
	if err != nil {
		return err
	}

	err = sn.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.RenameInstanceSnapshot(ctx, name, snap, newName)
		if err != nil {
			return err
		}

		// Inside the transaction: if the rename on disk fails, the row rename rolls back.
		return pool.RenameSnapshot(name, snap, newName)
	})
	if err != nil {
		return err
	}

	sn.host.Event("instance-snapshot-renamed", name+"/snapshots/"+newName, map[string]any{"old_name": snap})
	return nil
}

// SetExpiry changes when a snapshot expires (zero: never), the one thing of a snapshot
// LXD lets a client change.
func (sn *Snapshots) SetExpiry(ctx context.Context, name, snap string, expiresAt time.Time) error {
	unlock := sn.host.Lock(name)
	defer unlock()

	expiresAt = expiresAt.UTC()
	err := sn.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateInstanceSnapshotExpiry(ctx, name, snap, expiresAt)
	})
	if err != nil {
		return err
	}

	sn.host.Event("instance-snapshot-updated", name+"/snapshots/"+snap, nil)
	sn.pruneAt(expiresAt)
	return nil
}

// Delete removes a snapshot: the row first (it disappears from the API at once),
// then its files.
func (sn *Snapshots) Delete(ctx context.Context, name, snap string) error {
	unlock := sn.host.Lock(name)
	defer unlock()

	pool, err := sn.host.Pool(ctx, name)
	if err != nil {
		return err
	}

	err = sn.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteInstanceSnapshot(ctx, name, snap)
	})
	if err != nil {
		return err
	}

	err = pool.DeleteSnapshot(name, snap)
	if err != nil {
		return fmt.Errorf("deleting snapshot files of %s/%s: %w", name, snap, err)
	}

	pool.PruneBackupImages()

	sn.host.Event("instance-snapshot-deleted", name+"/snapshots/"+snap, nil)
	return nil
}
