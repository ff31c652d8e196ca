package instance

import (
	"context"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// ETag is what an instance's ETag covers (LXD: architecture, local config and devices,
// ephemeral, profiles).
func ETag(i *api.Instance) any {
	return []any{i.Architecture, i.Config, i.Devices, i.Ephemeral, i.Profiles}
}

// Get returns one instance; with full it carries its state and snapshots.
func (vw *View) Get(ctx context.Context, name string, full bool) (*api.InstanceFull, error) {
	inst, profiles, err := vw.host.load(ctx, name)
	if err != nil {
		return nil, err
	}

	out := vw.render(inst, profiles, full)
	return &out, nil
}

// List returns every instance, sorted by name, in a fixed number of queries.
func (vw *View) List(ctx context.Context, full bool) ([]api.InstanceFull, error) {
	var rows []db.Instance
	profiles := map[string]*db.Profile{}
	err := vw.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		ps, err := tx.GetProfiles(ctx)
		if err != nil {
			return err
		}

		for i := range ps {
			profiles[ps[i].Name] = &ps[i]
		}

		return nil
	})
	if err != nil {
		return nil, err
	}

	out := make([]api.InstanceFull, 0, len(rows))
	for i := range rows {
		out = append(out, vw.render(&rows[i], profiles, full))
	}

	return out, nil
}

// Names lists instance names.
func (vw *View) Names(ctx context.Context) ([]string, error) {
	list, err := vw.List(ctx, false)
	if err != nil {
		return nil, err
	}

	names := make([]string, 0, len(list))
	for _, i := range list {
		names = append(names, i.Name)
	}

	return names, nil
}

func (vw *View) render(inst *db.Instance, profiles map[string]*db.Profile, full bool) api.InstanceFull {
	config, devices := Expand(inst, profiles)
	out := api.InstanceFull{
		Instance: api.Instance{
			InstancePut: api.InstancePut{
				Architecture: inst.Architecture,
				Config:       api.NonNil(inst.Config),
				Devices:      api.NonNil(inst.Devices),
				Ephemeral:    inst.Ephemeral,
				Profiles:     inst.Profiles,
				Stateful:     inst.Stateful,
				Description:  inst.Description,
			},
			CreatedAt:       inst.CreatedAt,
			ExpandedConfig:  config,
			ExpandedDevices: devices,
			Name:            inst.Name,
			LastUsedAt:      inst.LastUsedAt,
			Location:        "none",
			Type:            api.InstanceTypeContainer,
			Project:         "default",
		},
	}

	if out.Profiles == nil {
		out.Profiles = []string{}
	}

	st := vw.state(inst.Name, full)
	out.Status = st.Status
	out.StatusCode = st.StatusCode
	if full {
		out.State = &st
		out.Snapshots = vw.renderSnapshots(inst.Name)
		out.Backups = []any{}
	}

	return out
}

// renderSnapshots fills the snapshots of a full instance object (empty on error).
func (vw *View) renderSnapshots(name string) []api.InstanceSnapshot {
	snaps, err := vw.snaps.List(context.Background(), name)
	if err != nil {
		return []api.InstanceSnapshot{}
	}

	return snaps
}
