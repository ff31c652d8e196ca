package snapshot

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// Restore rolls an instance back to a snapshot: its files and its settings (config,
// devices, profiles; the instance's own volatile keys are kept). A running instance is
// stopped (killed, as LXD does), restored and started again.
func (sn *Snapshots) Restore(ctx context.Context, name, snap string) error {
	unlock := sn.host.Lock(name)
	defer unlock()

	inst, _, err := sn.host.Load(ctx, name)
	if err != nil {
		return err
	}

	var s *db.Snapshot
	err = sn.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
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

		// The snapshot's settings become the instance's: its project's restrictions and
		// limits as they are now must allow them (they may have been tightened since).
		next := restoredRow(inst, s)
		return sn.host.CheckProject(ctx, tx, &next)
	})
	if err != nil {
		return err
	}

	pool, err := sn.host.Pool(ctx, name)
	if err != nil {
		return err
	}

	wasRunning := sn.host.Running(name)
	if wasRunning && inst.Ephemeral {
		return api.StatusErrorf(http.StatusBadRequest, "instance %q is ephemeral and running: stopping it for the restore would delete it", name)
	}

	if wasRunning {
		err := sn.host.Kill(ctx, name)
		if err != nil {
			return err
		}
	}

	err = pool.UnmountInstance(name)
	if err != nil {
		return err
	}

	err = pool.RestoreSnapshot(ctx, name, snap)
	if err != nil {
		return fmt.Errorf("restoring %s/%s: %w", name, snap, err)
	}

	pool.PruneBackupImages()

	restored := restoredRow(inst, s)
	err = sn.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateInstance(ctx, name, restored)
	})
	if err != nil {
		return err
	}

	sn.host.Event("instance-restored", name, map[string]any{"snapshot": snap})
	if wasRunning {
		return sn.host.Start(ctx, name)
	}

	return nil
}

// restoredRow is inst with snapshot s's settings and inst's own volatile keys.
func restoredRow(inst *db.Instance, s *db.Snapshot) db.Instance {
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
	return restored
}
