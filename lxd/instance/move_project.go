package instance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// MoveToProject moves a stopped instance (key oldKey) to another project under newKey
// (lxc move --target-project, LXD's POST /1.0/instances/{name} with "project"). Pools
// are shared by every project, so its storage stays on its pool and, like a rename,
// only its host-side names change with the key; its identity (uuid, MAC addresses, id
// range) is kept, as LXD's move keeps the volatile keys. Its profiles are taken by name
// in the target project (404 naming one it lacks), and the target project's
// restrictions and limits are checked in the transaction that moves the row, so two
// moves or creates cannot both take the last instance a limit allows. Snapshots go too,
// unless instanceOnly, as LXD's move drops them then.
func (m *Manager) MoveToProject(ctx context.Context, oldKey, newKey string, instanceOnly bool) error {
	err := project.ValidateKey(newKey)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	unlock := m.lock(oldKey)
	defer unlock()

	inst, _, err := m.load(ctx, oldKey)
	if err != nil {
		return err
	}

	if m.monitor(oldKey) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "instance %q is running: stop it before moving it to another project", project.Name(oldKey))
	}

	releaseName, err := m.reserveName(newKey)
	if err != nil {
		return err
	}

	defer releaseName()

	var dropped []string // snapshots left behind with instanceOnly

	// Checked before anything moves (nothing changes on a refusal), and again in the
	// transaction that writes.
	moved := func(ctx context.Context, tx *db.Tx, write bool) error {
		exists, err := tx.InstanceExists(ctx, newKey)
		if err != nil {
			return err
		}

		if exists {
			return api.StatusErrorf(http.StatusConflict, "instance %q already exists in project %q", project.Name(newKey), project.Of(newKey))
		}

		row := *inst
		row.Name = newKey
		row.Profiles, err = profilesIn(ctx, tx, newKey, inst.Profiles)
		if err != nil {
			return err
		}

		err = checkProject(ctx, tx, &row)
		if err != nil || !write {
			return err
		}

		snaps, err := tx.GetInstanceSnapshots(ctx, oldKey)
		if err != nil {
			return err
		}

		err = tx.RenameInstance(ctx, oldKey, newKey)
		if err != nil {
			return err
		}

		err = tx.UpdateInstance(ctx, newKey, row)
		if err != nil {
			return err
		}

		// A snapshot's profiles come back on a restore: they become the target
		// project's of the same names, those it lacks dropped.
		dropped = nil
		for _, s := range snaps {
			err := tx.DeleteInstanceSnapshot(ctx, newKey, s.Name)
			if err != nil {
				return err
			}

			if instanceOnly {
				dropped = append(dropped, s.Name)
				continue
			}

			s.Instance = newKey
			s.Profiles = existingProfiles(ctx, tx, newKey, project.ProfileNames(s.Profiles))
			_, err = tx.CreateInstanceSnapshot(ctx, s)
			if err != nil {
				return err
			}
		}

		return nil
	}

	err = m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error { return moved(ctx, tx, false) })
	if err != nil {
		return err
	}

	pool, err := m.storageOf(ctx, oldKey)
	if err != nil {
		return err
	}

	err = pool.RenameInstance(oldKey, newKey)
	if err != nil {
		return fmt.Errorf("moving storage of %q: %w", project.Name(oldKey), err)
	}

	err = os.Rename(m.instanceDir(oldKey), m.instanceDir(newKey))
	if err != nil {
		_ = pool.RenameInstance(newKey, oldKey)
		return fmt.Errorf("moving files of %q: %w", project.Name(oldKey), err)
	}

	err = m.cfg.DB.Transaction(context.WithoutCancel(ctx), func(ctx context.Context, tx *db.Tx) error { return moved(ctx, tx, true) })
	if err != nil {
		_ = os.Rename(m.instanceDir(newKey), m.instanceDir(oldKey))
		_ = pool.RenameInstance(newKey, oldKey)
		return err
	}

	for _, s := range dropped {
		_ = pool.DeleteSnapshot(newKey, s)
	}

	m.moveBackups(oldKey, newKey)

	m.mu.Lock()
	delete(m.locks, oldKey)
	m.mu.Unlock()
	m.event("instance-deleted", oldKey, map[string]any{"moved_to": project.Of(newKey)})
	m.event("instance-created", newKey, map[string]any{"moved_from": project.Of(oldKey)})
	return nil
}

// profilesIn maps an instance's profile keys to the keys of the profiles of the same
// names that instance key inst's project uses: 404 naming a profile it lacks.
func profilesIn(ctx context.Context, tx *db.Tx, inst string, keys []string) ([]string, error) {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		name := project.ProfileName(k)
		nk, err := tx.ProfileKeyIn(ctx, project.Of(inst), name)
		if err != nil {
			return nil, err
		}

		_, err = tx.GetProfile(ctx, nk)
		if api.StatusErrorCheck(err, http.StatusNotFound) {
			return nil, api.StatusErrorf(http.StatusNotFound, "profile %q not found in project %q", name, project.Of(inst))
		}

		if err != nil {
			return nil, err
		}

		out = append(out, nk)
	}

	return out, nil
}

// moveBackups moves an instance's backup files (BERTH_DIR/backups/<key>, lxd/backup)
// with its key, so that they stay its own and never become those of a later instance
// of the old key (in the old project above all). Should the move fail they are removed.
func (m *Manager) moveBackups(oldKey, newKey string) {
	from := filepath.Join(m.cfg.Dir, "backups", oldKey)
	if _, err := os.Lstat(from); err != nil {
		return
	}

	to := filepath.Join(m.cfg.Dir, "backups", newKey)
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if err != nil {
		m.log.Warn("moving an instance's backups with it; removed", "instance", newKey, "err", err)
		_ = os.RemoveAll(from)
	}
}
