package networks

import (
	"context"
	"net/http"
	"sort"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// ETag is LXD's: the fields a PUT can change, plus identity.
func ETag(n *api.Network) any {
	return []any{n.Name, n.Managed, n.Type, n.Description, n.Config}
}

// toAPI renders a DB row with its status and users.
func (s *Service) toAPI(row *db.Network, users []string) *api.Network {
	status := "Unknown"
	n, err := s.mgr.Get(row.Name)
	if err == nil {
		status = n.Status()
	}

	sort.Strings(users)
	return &api.Network{
		NetworkPut: api.NetworkPut{Config: row.Config, Description: row.Description},
		Name:       row.Name,
		Type:       row.Type,
		Managed:    true,
		Status:     status,
		UsedBy:     users,
		Locations:  []string{"none"},
	}
}

// users maps each network name to the URLs of the instances and profiles whose
// (expanded) devices have a NIC on it.
func users(ctx context.Context, tx *db.Tx) (map[string][]string, error) {
	out := map[string][]string{}
	profiles, err := tx.GetProfiles(ctx)
	if err != nil {
		return nil, err
	}

	byName := map[string]*db.Profile{}
	for i := range profiles {
		p := &profiles[i]
		byName[p.Name] = p
		for _, nw := range nicNetworks(p.Devices) {
			out[nw] = append(out[nw], project.ProfileURL(p.Name))
		}
	}

	insts, err := tx.GetInstances(ctx)
	if err != nil {
		return nil, err
	}

	for i := range insts {
		_, devices := instance.Expand(&insts[i], byName)
		for _, nw := range nicNetworks(devices) {
			out[nw] = append(out[nw], projects.InstanceURL(insts[i].Name))
		}
	}

	return out, nil
}

// nicNetworks lists the networks the NIC devices of a device map attach to.
func nicNetworks(devices map[string]map[string]string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, d := range devices {
		if d["type"] != "nic" {
			continue
		}

		nw := d["network"]
		if nw == "" && d["nictype"] == "bridged" {
			nw = d["parent"]
		}

		if nw != "" && !seen[nw] {
			seen[nw] = true
			out = append(out, nw)
		}
	}

	return out
}

// List returns the managed networks, then the host's other interfaces (unmanaged).
func (s *Service) List(ctx context.Context) ([]api.Network, error) {
	list := []api.Network{}
	var used map[string][]string
	managed := map[string]bool{}
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetNetworks(ctx)
		if err != nil {
			return err
		}

		used, err = users(ctx, tx)
		if err != nil {
			return err
		}

		for i := range rows {
			list = append(list, *s.toAPI(&rows[i], used[rows[i].Name]))
			managed[rows[i].Name] = true
		}

		return nil
	})
	if err != nil {
		return nil, err
	}

	host, err := hostNetworks(managed, used)
	if err != nil {
		return nil, err
	}

	return append(list, host...), nil
}

// Errored lists the managed networks whose last start failed (status Errored, as List
// says), sorted, from the running networks alone: the daemon's start checks this, and
// List would also read every instance's NICs and list the host's links.
func (s *Service) Errored() []string {
	out := []string{}
	for _, name := range s.mgr.Names() {
		n, err := s.mgr.Get(name)
		if err == nil && n.Status() == "Errored" {
			out = append(out, name)
		}
	}

	return out
}

// Get reads one network, managed or a host interface, with its users.
func (s *Service) Get(ctx context.Context, name string) (*api.Network, error) {
	var out *api.Network
	var used map[string][]string
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		used, err = users(ctx, tx)
		if err != nil {
			return err
		}

		row, err := tx.GetNetwork(ctx, name)
		if err != nil {
			return err
		}

		out = s.toAPI(row, used[name])
		return nil
	})
	if api.StatusErrorCheck(err, http.StatusNotFound) && used != nil {
		host, ok := hostNetwork(name, used)
		if ok {
			return host, nil
		}
	}

	return out, err
}

// getManaged reads one managed network; a host interface is a 400.
func (s *Service) getManaged(ctx context.Context, name string) (*api.Network, error) {
	n, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}

	if !n.Managed {
		return nil, api.StatusErrorf(http.StatusBadRequest, "only managed networks can be changed; %q is a host interface", name)
	}

	return n, nil
}
