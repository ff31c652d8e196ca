package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/snapshot"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

// ErrRefreshRunning refuses a refresh of a running instance (LXD: "Cannot refresh a
// running instance"): its tree would change under the transfer and the swap.
var ErrRefreshRunning = errors.New("cannot refresh a running instance: stop it first")

// Refresh brings an existing, stopped instance up to date with another's trees (lxc copy
// --refresh): new snapshots, the snapshots the source no longer has deleted, and the root
// filesystem replaced by the incoming one. The instance's row (config, devices,
// profiles, identity) and image metadata stay as they are, as LXD's refresh keeps them.
type Refresh struct {
	Name string // the existing instance
	// Snapshots to add, oldest first, each from its own tree. One the instance has by the
	// same name (another snapshot the source took under it) is replaced.
	Snapshots []db.Snapshot
	// Keep names every snapshot the source has: the instance's others are deleted.
	Keep []string
	// FillAs writes tree ("" for the instance) into rootfsDir as the container whose ids
	// are ids; current is the instance's mounted root filesystem (its host ids), a basis
	// to copy unchanged files from.
	FillAs func(ctx context.Context, ids idmap.Set, tree, current, rootfsDir string) error
}

// Snapshots returns the creation dates of an instance's snapshots by name (what a refresh
// source is asked for), or a 400 ErrRefreshRunning if it runs.
func (ct *Creator) Snapshots(ctx context.Context, name string) (map[string]time.Time, error) {
	if ct.host.monitor(name) != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "%w", ErrRefreshRunning)
	}

	var snaps []db.Snapshot
	err := ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		snaps, err = tx.GetInstanceSnapshots(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := map[string]time.Time{}
	for _, s := range snaps {
		out[s.Name] = s.CreatedAt
	}

	return out, nil
}

// RefreshFromTrees refreshes instance r.Name. Everything travels first, into pool images
// (with no record: a crash leaves them for the next prune); only then does the instance
// change: snapshots added, its root swapped in through a temporary snapshot restored
// (the pool's own swap), deleted snapshots removed. A failed or cut transfer leaves the
// instance as it was. The instance lock is held throughout: it cannot start meanwhile.
func (ct *Creator) RefreshFromTrees(ctx context.Context, r Refresh) error {
	name := r.Name
	for _, s := range r.Snapshots {
		err := snapshot.ValidateName(s.Name)
		if err != nil {
			return err
		}
	}

	ctx, done := ct.host.track(ctx, name)
	defer done()

	unlock := ct.host.lock(name)
	defer unlock()

	if ct.host.monitor(name) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%w", ErrRefreshRunning)
	}

	inst, profiles, err := ct.host.load(ctx, name)
	if err != nil {
		return err
	}

	ids, err := ct.host.idsOf(inst)
	if err != nil {
		return err
	}

	_, devices := Expand(inst, profiles)
	pool, err := ct.pools.of(devices)
	if err != nil {
		return err
	}

	var have []db.Snapshot
	err = ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		have, err = tx.GetInstanceSnapshots(ctx, name)
		return err
	})
	if err != nil {
		return err
	}

	defer pool.PruneBackupImages()
	fps, err := ct.refreshImages(ctx, pool, r, ids)
	if err != nil {
		return err
	}

	return ct.refreshCommit(ctx, pool, r, inst, ids, have, fps)
}

// refreshImages receives every tree of r into a pool image, the instance's root mounted
// (read-only to the filler) as their common basis.
func (ct *Creator) refreshImages(ctx context.Context, pool storage.Driver, r Refresh, ids idmap.Set) (map[string]string, error) {
	current, err := pool.MountInstance(r.Name, ids)
	if err != nil {
		return nil, err
	}

	defer func() { _ = pool.UnmountInstance(r.Name) }()

	trees := []string{}
	for _, s := range r.Snapshots {
		trees = append(trees, s.Name)
	}

	fps := map[string]string{}
	for _, tree := range append(trees, "") {
		fp := tempImageName()
		err := pool.CreateImage(fp, func(rootfsDir string) error { return r.FillAs(ctx, ids, tree, current, rootfsDir) })
		if err != nil {
			return nil, api.StatusErrorf(http.StatusBadRequest, "receiving %s: %v", treeName(tree), err)
		}

		fps[tree] = fp
	}

	return fps, nil
}

func treeName(tree string) string {
	if tree == "" {
		return "the instance"
	}

	return fmt.Sprintf("snapshot %q", tree)
}

// refreshCommit makes the instance what the images hold. Until the root swap, a failure
// undoes what it did; the swap is the pool's restore (an exchange of trees); the deleted
// snapshots go last.
func (ct *Creator) refreshCommit(ctx context.Context, pool storage.Driver, r Refresh, inst *db.Instance, ids idmap.Set, have []db.Snapshot, fps map[string]string) error {
	name := r.Name
	keep := map[string]bool{}
	for _, n := range r.Keep {
		keep[n] = true
	}

	incoming := map[string]bool{}
	for _, s := range r.Snapshots {
		incoming[s.Name] = true
	}

	// Snapshots of the same name as an incoming one are replaced; the others the source
	// no longer has are deleted.
	remove := []string{}
	deleted := 0
	for _, s := range have {
		if incoming[s.Name] || !keep[s.Name] {
			remove = append(remove, s.Name)
		}

		if !incoming[s.Name] && !keep[s.Name] {
			deleted++
		}
	}

	rev := revert.New()
	defer rev.Fail()

	// A replaced snapshot must leave its name first; it is gone for good from here.
	for _, s := range have {
		if incoming[s.Name] {
			err := pool.DeleteSnapshot(name, s.Name)
			if err != nil {
				return err
			}
		}
	}

	for _, s := range r.Snapshots {
		err := pool.CreateSnapshotFromImage(name, s.Name, fps[s.Name], ids)
		if err != nil {
			return err
		}

		rev.Add(func() { _ = pool.DeleteSnapshot(name, s.Name) })
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	swap := storage.TempSnapshotPrefix + "refresh-" + hex.EncodeToString(b)
	err := pool.CreateSnapshotFromImage(name, swap, fps[""], ids)
	if err != nil {
		return err
	}

	defer func() { _ = pool.DeleteSnapshot(name, swap) }()
	err = pool.RestoreSnapshot(ctx, name, swap)
	if err != nil {
		return fmt.Errorf("swapping in the refreshed root of %q: %w", name, err)
	}

	err = ct.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for _, n := range remove {
			err := tx.DeleteInstanceSnapshot(ctx, name, n)
			if err != nil && !api.StatusErrorCheck(err, http.StatusNotFound) {
				return err
			}
		}

		for _, s := range r.Snapshots {
			// Profiles named by the source are this project's of those names; none: the
			// instance's own.
			s.Instance = name
			if s.Profiles == nil {
				s.Profiles = inst.Profiles
			} else {
				s.Profiles = existingProfiles(ctx, tx, name, s.Profiles)
			}

			_, err := tx.CreateInstanceSnapshot(ctx, s)
			if err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		return err
	}

	rev.Success()
	for _, n := range remove {
		if !incoming[n] {
			_ = pool.DeleteSnapshot(name, n)
		}
	}

	ct.host.event("instance-updated", name, map[string]any{"refreshed": true, "snapshots_added": len(r.Snapshots), "snapshots_deleted": deleted})
	return nil
}
