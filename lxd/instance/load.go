package instance

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/api"
)

// The manager's reads of one instance, shared by its services: its row and profiles, its
// existence, and its id map.

// expanded is an instance read for work on it: its row, its id map, and its config and
// devices expanded from its profiles.
type expanded struct {
	inst    *db.Instance
	ids     idmap.Set
	config  map[string]string
	devices map[string]map[string]string
}

func (m *Manager) loadExpanded(ctx context.Context, name string) (*expanded, error) {
	inst, profiles, err := m.load(ctx, name)
	if err != nil {
		return nil, err
	}

	ids, err := m.idsOf(inst)
	if err != nil {
		return nil, err
	}

	e := expand(inst, profiles)
	e.ids = ids
	return &e, nil
}

// load reads an instance and the profiles it uses in one read transaction.
func (m *Manager) load(ctx context.Context, name string) (*db.Instance, map[string]*db.Profile, error) {
	var inst *db.Instance
	profiles := map[string]*db.Profile{}
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		inst, err = tx.GetInstance(ctx, name)
		if err != nil {
			return err
		}

		for _, p := range inst.Profiles {
			profiles[p], err = tx.GetProfile(ctx, p)
			if err != nil {
				return err
			}
		}

		return nil
	})

	return inst, profiles, err
}

func (m *Manager) exists(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		ok, err = tx.InstanceExists(ctx, name)
		return err
	})
	if err == nil && !ok {
		return false, api.StatusErrorf(http.StatusNotFound, "instance %q not found", name)
	}

	return ok, err
}

// idsOf reads an instance's id map back from its config.
func (m *Manager) idsOf(inst *db.Instance) (idmap.Set, error) {
	base, err := strconv.ParseInt(inst.Config["volatile.idmap.base"], 10, 64)
	if err != nil {
		return idmap.Set{}, fmt.Errorf("instance %q has no id map: %w", inst.Name, err)
	}

	return m.cfg.IDs.at(base), nil
}
