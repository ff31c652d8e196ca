package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/berth-dev/berth/lxd/etag"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// networkETag is LXD's: the fields a PUT can change, plus identity.
func networkETag(n *api.Network) any {
	return []any{n.Name, n.Managed, n.Type, n.Description, n.Config}
}

// networkToAPI renders a DB row with its status and users.
func (d *Daemon) networkToAPI(row *db.Network, users []string) *api.Network {
	status := "Unknown"
	n, err := d.networks.Get(row.Name)
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

// networkUsers maps each network name to the URLs of the instances and profiles whose
// (expanded) devices have a NIC on it.
func networkUsers(ctx context.Context, tx *db.Tx) (map[string][]string, error) {
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
			out[nw] = append(out[nw], "/1.0/profiles/"+p.Name)
		}
	}

	insts, err := tx.GetInstances(ctx)
	if err != nil {
		return nil, err
	}

	for i := range insts {
		_, devices := instance.Expand(&insts[i], byName)
		for _, nw := range nicNetworks(devices) {
			out[nw] = append(out[nw], "/1.0/instances/"+insts[i].Name)
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

// GET /1.0/networks: the managed networks, then the host's other interfaces (unmanaged).
func networksGet(d *Daemon, r *http.Request) response.Response {
	var list []api.Network
	var users map[string][]string

	managed := map[string]bool{}
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetNetworks(ctx)
		if err != nil {
			return err
		}

		users, err = networkUsers(ctx, tx)
		if err != nil {
			return err
		}

		for i := range rows {
			list = append(list, *d.networkToAPI(&rows[i], users[rows[i].Name]))
			managed[rows[i].Name] = true
		}

		return nil
	})
	if err != nil {
		return response.SmartError(err)
	}

	host, err := hostNetworks(managed, users)
	if err != nil {
		return response.InternalError(err)
	}

	list = append(list, host...)

	if recursion(r) >= 1 {
		if list == nil {
			list = []api.Network{}
		}

		return response.SyncResponse(true, list)
	}

	names := make([]string, 0, len(list))
	for _, n := range list {
		names = append(names, n.Name)
	}

	return response.SyncResponse(true, urlsOf("networks", names))
}

// loadNetwork reads one managed network with its users.
func (d *Daemon) loadNetwork(ctx context.Context, name string) (*api.Network, error) {
	n, _, err := d.loadAnyNetwork(ctx, name)
	if err != nil {
		return nil, err
	}

	if !n.Managed {
		return nil, errUnmanaged(name)
	}

	return n, nil
}

// loadAnyNetwork reads one network, managed or a host interface, with its users.
func (d *Daemon) loadAnyNetwork(ctx context.Context, name string) (*api.Network, map[string][]string, error) {
	var out *api.Network
	var users map[string][]string

	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error

		users, err = networkUsers(ctx, tx)
		if err != nil {
			return err
		}

		row, err := tx.GetNetwork(ctx, name)
		if err != nil {
			return err
		}

		out = d.networkToAPI(row, users[name])
		return nil
	})
	if api.StatusErrorCheck(err, http.StatusNotFound) && users != nil {
		host, ok := hostNetwork(name, users)
		if ok {
			return host, users, nil
		}
	}

	return out, users, err
}

// GET /1.0/networks/{name}
func networkGet(d *Daemon, r *http.Request) response.Response {
	n, _, err := d.loadAnyNetwork(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, n, networkETag(n))
}

// POST /1.0/networks
func networksPost(d *Daemon, r *http.Request) response.Response {
	req := api.NetworksPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = network.ValidateName(req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Type == "" {
		req.Type = "bridge"
	}

	if req.Type != "bridge" {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "network type %q is not supported (only bridge)", req.Type))
	}

	err = network.ValidateConfig(req.Config)
	if err != nil {
		return response.SmartError(err)
	}

	unlock := d.networks.Lock()
	defer unlock()

	err = d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetNetwork(ctx, req.Name)
		if err == nil {
			return api.StatusErrorf(http.StatusConflict, "network %q already exists", req.Name)
		}

		if api.StatusErrorCheck(err, http.StatusNotFound) {
			return nil
		}

		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	if ip.LinkExists(req.Name) {
		return response.Conflict(fmt.Errorf("a host interface named %q exists", req.Name))
	}

	config, err := d.networks.FillDefaults(req.Name, req.Config)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.createNetwork(r.Context(), req.Name, req.Type, req.Description, config)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, "/1.0/networks/"+req.Name)
}

// createNetwork brings a network up, then records it; if recording fails it is torn down.
func (d *Daemon) createNetwork(ctx context.Context, name, typ, description string, config map[string]string) error {
	_, err := d.networks.Create(name, typ, config)
	if err != nil {
		return err
	}

	err = d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateNetwork(ctx, db.Network{Name: name, Type: typ, Description: description, Config: config})
		return err
	})
	if err != nil {
		derr := d.networks.Delete(name)
		if derr != nil {
			d.log.Warn("removing network after failed create", "network", name, "err", derr)
		}

		return err
	}

	d.events.SendLifecycle("default", "network-created", "/1.0/networks/"+name, nil)
	return nil
}

// PUT /1.0/networks/{name}
func networkPut(d *Daemon, r *http.Request) response.Response {
	return d.networkUpdate(r, false)
}

// PATCH /1.0/networks/{name}
func networkPatch(d *Daemon, r *http.Request) response.Response {
	return d.networkUpdate(r, true)
}

func (d *Daemon) networkUpdate(r *http.Request, patch bool) response.Response {
	name := pathVar(r, "name")
	unlock := d.networks.Lock()
	defer unlock()

	cur, err := d.loadNetwork(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	err = etag.Check(r, networkETag(cur))
	if err != nil {
		return response.SmartError(err)
	}

	req := api.NetworkPut{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	config := map[string]string{}
	if patch {
		for k, v := range cur.Config {
			config[k] = v
		}
	}

	for k, v := range req.Config {
		config[k] = v
	}

	err = d.networks.FillUpdate(name, cur.Config, config)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Description == "" && patch {
		req.Description = cur.Description
	}

	n, err := d.networks.Get(name)
	if err != nil {
		return response.SmartError(err)
	}

	err = n.Update(config)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateNetwork(ctx, name, db.Network{Description: req.Description, Config: config})
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "network-updated", "/1.0/networks/"+name, nil)
	return response.EmptySyncResponse
}

// DELETE /1.0/networks/{name}
func networkDelete(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	unlock := d.networks.Lock()
	defer unlock()

	cur, err := d.loadNetwork(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	if len(cur.UsedBy) > 0 {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "the network is currently in use by %v", cur.UsedBy))
	}

	err = d.networks.Delete(name)
	if err != nil && !api.StatusErrorCheck(err, http.StatusNotFound) {
		return response.SmartError(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteNetwork(ctx, name)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "network-deleted", "/1.0/networks/"+name, nil)
	return response.EmptySyncResponse
}
