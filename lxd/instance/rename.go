package instance

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// Rename gives a stopped instance a new name: storage, its own files, then the DB row.
// Its hostname templates render again at the next start (trigger "rename"), unless a
// create or copy trigger is still pending.
func (m *Manager) Rename(ctx context.Context, oldName, newName string) error {
	err := project.ValidateKey(newName)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	unlock := m.lock(oldName)
	defer unlock()

	inst, profiles, err := m.load(ctx, oldName)
	if err != nil {
		return err
	}

	_, devices := Expand(inst, profiles)
	pool, err := m.pools.of(devices)
	if err != nil {
		return err
	}

	if m.monitor(oldName) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "instance %q is running: stop it before renaming", oldName)
	}

	exists, err := m.exists(ctx, newName)
	if exists {
		return api.StatusErrorf(http.StatusConflict, "instance %q already exists", newName)
	}

	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		return err
	}

	m.mu.Lock()
	reserved := m.creating[newName]
	m.mu.Unlock()
	if reserved {
		return api.StatusErrorf(http.StatusConflict, "instance %q is being created", newName)
	}

	err = pool.RenameInstance(oldName, newName)
	if err != nil {
		return fmt.Errorf("renaming storage of %q: %w", oldName, err)
	}

	err = os.Rename(m.instanceDir(oldName), m.instanceDir(newName))
	if err != nil {
		_ = pool.RenameInstance(newName, oldName)
		return fmt.Errorf("renaming files of %q: %w", oldName, err)
	}

	set := map[string]string{}
	if inst.Config["volatile.apply_template"] == "" {
		set["volatile.apply_template"] = "rename"
	}

	err = m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.RenameInstance(ctx, oldName, newName)
		if err != nil {
			return err
		}

		return tx.UpdateInstanceConfig(ctx, newName, set, nil)
	})
	if err != nil {
		_ = os.Rename(m.instanceDir(newName), m.instanceDir(oldName))
		_ = pool.RenameInstance(newName, oldName)
		return err
	}

	m.moveBackups(oldName, newName)
	m.event("instance-renamed", newName, map[string]any{"old_name": oldName})
	return nil
}
