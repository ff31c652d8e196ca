package instance

import (
	"context"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
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

// Exists is nil if instance name exists, else its 404 (or the database's error): one
// indexed query, for a request that acts on an instance and only needs it to be there
// (Get loads and renders it, a millisecond on a start's path on a slow VM).
func (vw *View) Exists(ctx context.Context, name string) error {
	_, err := vw.host.exists(ctx, name)
	return err
}

// List returns every instance (of every member, in a cluster), sorted by name, in a fixed
// number of queries; full ones with their state, gathered from the host for those that
// run (see gather) and cached for StateTTL, and their snapshots. Nothing asks a monitor.
func (vw *View) List(ctx context.Context, full bool) ([]api.InstanceFull, error) {
	return vw.list(ctx, full, db.InstanceFilter{})
}

// ListLocal is List of this host's member's instances only: for what acts on the host
// (autostart, resume, metrics, bulk state changes).
func (vw *View) ListLocal(ctx context.Context, full bool) ([]api.InstanceFull, error) {
	return vw.list(ctx, full, db.InstanceFilter{MemberID: vw.localMember()})
}

// localMember is the member ListLocal takes (1 for a View built without a manager).
func (vw *View) localMember() int64 {
	if vw.member == 0 {
		return db.SelfMemberID
	}

	return vw.member
}

func (vw *View) list(ctx context.Context, full bool, filter db.InstanceFilter) ([]api.InstanceFull, error) {
	var rows []db.Instance
	profiles := map[string]*db.Profile{}
	err := vw.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetInstancesWhere(ctx, filter)
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

	var states map[string]api.InstanceState
	// Expanded once: the render and the state gathering (NIC names) both read it.
	exps := make([]expanded, len(rows))
	for i := range rows {
		exps[i] = expand(&rows[i], profiles)
	}

	var snaps map[string][]api.InstanceSnapshot
	if full {
		states = vw.gathered(exps)
		snaps, err = vw.snaps.ListAll(ctx)
		if err != nil {
			snaps = nil
		}
	}

	out := make([]api.InstanceFull, 0, len(rows))
	for i := range rows {
		instSnaps := snaps[rows[i].Name]
		if instSnaps == nil {
			instSnaps = []api.InstanceSnapshot{}
		}

		out = append(out, vw.renderWith(exps[i], full, states, instSnaps))
	}

	return out, nil
}

// Names lists the keys of this host's instances (ListLocal): Resume at daemon start
// takes them.
func (vw *View) Names(ctx context.Context) ([]string, error) {
	list, err := vw.ListLocal(ctx, false)
	if err != nil {
		return nil, err
	}

	names := make([]string, 0, len(list))
	for _, i := range list {
		names = append(names, project.Key(i.Project, i.Name))
	}

	return names, nil
}

// render is the API object of one instance; a full one carries its state and snapshots.
func (vw *View) render(inst *db.Instance, profiles map[string]*db.Profile, full bool) api.InstanceFull {
	e := expand(inst, profiles)
	if !full {
		return vw.renderWith(e, false, nil, nil)
	}

	return vw.renderWith(e, true, vw.gathered([]expanded{e}), vw.renderSnapshots(inst.Name))
}

// renderWith is the API object of an instance. A full one carries its state (with its
// details from gathered, if it runs) and snaps.
func (vw *View) renderWith(e expanded, full bool, gathered map[string]api.InstanceState, snaps []api.InstanceSnapshot) api.InstanceFull {
	inst, config, devices := e.inst, e.config, e.devices
	out := api.InstanceFull{
		Instance: api.Instance{
			InstancePut: api.InstancePut{
				Architecture: inst.Architecture,
				Config:       api.NonNil(inst.Config),
				Devices:      api.NonNil(inst.Devices),
				Ephemeral:    inst.Ephemeral,
				Profiles:     project.ProfileNames(inst.Profiles),
				Stateful:     inst.Stateful,
				Description:  inst.Description,
			},
			CreatedAt:       inst.CreatedAt,
			ExpandedConfig:  config,
			ExpandedDevices: devices,
			Name:            project.Name(inst.Name),
			LastUsedAt:      inst.LastUsedAt,
			Location:        locationOf(inst),
			Type:            api.InstanceTypeContainer,
			Project:         project.Of(inst.Name),
		},
	}

	if out.Profiles == nil {
		out.Profiles = []string{}
	}

	st := vw.state(inst.Name, gathered)
	out.Status = st.Status
	out.StatusCode = st.StatusCode
	if full {
		out.State = &st
		out.Snapshots = snaps
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

// locationOf is the instance's member name, as LXD's location: "none" on a host never
// clustered (member 1's name until clustering renames it).
func locationOf(inst *db.Instance) string {
	if inst.Location == "" {
		return "none"
	}

	return inst.Location
}
