package instance

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

// MoveToPool moves a stopped instance's storage, and its snapshots' (dropped with
// instanceOnly, as LXD's move drops them), to pool (lxc move --storage, LXD's POST
// /1.0/instances/{name} with "pool"). Unlike LXD, which copies to a temporary name,
// deletes the source and renames, the instance stays the same row: its name, volatile
// keys (uuid, MAC addresses), id range and backups are kept. The data is copied to the
// target pool first, owners moved back to the container's view and then to the same id
// range (copyAcross's path); only once the copy is complete does one transaction point
// the instance's root disk (a local device, as LXD writes it) and its snapshots' at the
// new pool, so any failure before leaves the source as it was and the copy is removed.
// The source's storage is removed last.
func (ct *Creator) MoveToPool(ctx context.Context, key, poolName string, instanceOnly bool) error {
	ctx, done := ct.host.track(ctx, key)
	defer done()

	unlock := ct.host.lock(key)
	defer unlock()

	inst, profiles, err := ct.host.load(ctx, key)
	if err != nil {
		return err
	}

	_, expanded := Expand(inst, profiles)
	from := ct.pools.nameOf(expanded)
	if from == poolName {
		return nil // LXD's copy and delete leaves it where it is too
	}

	if ct.host.monitor(key) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "instance %q is running: stop it before moving it to another pool", inst.Name)
	}

	devices := rootOnPool(inst.Devices, expanded, poolName)
	_, nextExpanded := Expand(&db.Instance{Devices: devices, Profiles: inst.Profiles}, profiles)
	err = ct.sizes.checkRootSize("", nil, nextExpanded)
	if err != nil {
		return err
	}

	srcPool, err := ct.pools.of(expanded)
	if err != nil {
		return err
	}

	pool, err := ct.pools.of(nextExpanded)
	if err != nil {
		return err
	}

	ids, err := ct.host.idsOf(inst)
	if err != nil {
		return err
	}

	var snaps []db.Snapshot
	err = ct.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		snaps, err = tx.GetInstanceSnapshots(ctx, key)
		return err
	})
	if err != nil {
		return err
	}

	start := time.Now()
	unmark, err := markMove(ct.host.instanceDir(key), from, poolName)
	if err != nil {
		return fmt.Errorf("recording the move of %q: %w", inst.Name, err)
	}

	r := revert.New()
	defer r.Fail()
	r.Add(unmark) // runs last: after the copy is gone

	r.Add(pool.PruneBackupImages)
	t := &Trees{IDs: ids, ct: ct, name: key, pool: srcPool}
	fp, err := copyToImage(ctx, pool, ids, func() (string, func(), error) { return t.Root(ctx) })
	if err != nil {
		return fmt.Errorf("copying storage of %q to pool %q: %w", inst.Name, poolName, err)
	}

	err = pool.CreateInstanceFromImage(key, fp, ids)
	if err != nil {
		return fmt.Errorf("moving storage of %q to pool %q: %w", inst.Name, poolName, err)
	}

	r.Add(func() { _ = pool.DeleteInstance(key) })
	if !instanceOnly {
		for _, s := range snaps {
			fp, err := copyToImage(ctx, pool, ids, func() (string, func(), error) { return t.Snapshot(s.Name) })
			if err != nil {
				return fmt.Errorf("copying snapshot %q of %q to pool %q: %w", s.Name, inst.Name, poolName, err)
			}

			err = pool.CreateSnapshotFromImage(key, s.Name, fp, ids)
			if err != nil {
				return fmt.Errorf("moving snapshot %q of %q to pool %q: %w", s.Name, inst.Name, poolName, err)
			}
		}
	}

	err = ct.sizes.applyRootSize(key, nextExpanded)
	if err != nil {
		return err
	}

	err = ctx.Err()
	if err != nil {
		return err
	}

	// The copy is complete: from here the instance lives on the new pool.
	err = ct.db.Transaction(context.WithoutCancel(ctx), func(ctx context.Context, tx *db.Tx) error {
		row := *inst
		row.Devices = devices
		err := checkProject(ctx, tx, &row)
		if err != nil {
			return err
		}

		err = tx.UpdateInstance(ctx, key, row)
		if err != nil {
			return err
		}

		for _, s := range snaps {
			err := tx.DeleteInstanceSnapshot(ctx, key, s.Name)
			if err != nil || instanceOnly {
				if err != nil {
					return err
				}

				continue
			}

			// A restore brings back the snapshot's devices: its root disk must name the
			// pool its data is on now.
			s.Devices = rootOnPool(s.Devices, nextExpanded, poolName)
			_, err = tx.CreateInstanceSnapshot(ctx, s)
			if err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		return err
	}

	r.Success()
	pool.PruneBackupImages()

	// The source's storage goes last: should that fail, the instance is whole on its new
	// pool and the leftover is only logged.
	err = srcPool.DeleteInstance(key)
	if err != nil {
		ct.log.Warn("removing the storage an instance moved away from; retried at next start", "instance", key, "pool", from, "err", err)
	} else {
		unmark()
	}

	srcPool.PruneBackupImages()
	ct.log.Info("moved instance to another pool", "instance", key, "from", from, "to", poolName, "snapshots", len(snaps), "instance_only", instanceOnly, "duration", time.Since(start))
	ct.host.event("instance-updated", key, map[string]any{"pool": poolName})
	return nil
}
