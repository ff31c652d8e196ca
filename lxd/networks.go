package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/networks"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/networks: the managed networks, then the host's other interfaces (unmanaged).
func networksGet(d *Daemon, r *http.Request) response.Response {
	list, err := d.networks.List(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	names := make([]string, 0, len(list))
	for _, n := range list {
		names = append(names, n.Name)
	}

	return response.SyncResponse(true, urlsOf("networks", names))
}

// GET /1.0/networks/{name}
func networkGet(d *Daemon, r *http.Request) response.Response {
	n, err := d.networks.Get(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, n, networks.ETag(n))
}

// GET /1.0/networks/{name}/state
func networkStateGet(d *Daemon, r *http.Request) response.Response {
	st, err := d.networks.State(pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, st)
}

// POST /1.0/networks
func networksPost(d *Daemon, r *http.Request) response.Response {
	req := api.NetworksPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.networks.Create(r.Context(), req)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, urlsOf("networks", []string{req.Name})[0])
}

// PUT /1.0/networks/{name}
func networkPut(d *Daemon, r *http.Request) response.Response {
	return networkUpdate(d, r, false)
}

// PATCH /1.0/networks/{name}
func networkPatch(d *Daemon, r *http.Request) response.Response {
	return networkUpdate(d, r, true)
}

func networkUpdate(d *Daemon, r *http.Request, patch bool) response.Response {
	req := api.NetworkPut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.networks.Update(r.Context(), pathVar(r, "name"), r.Header.Get("If-Match"), req, patch)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// DELETE /1.0/networks/{name}
func networkDelete(d *Daemon, r *http.Request) response.Response {
	err := d.networks.Delete(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// POST /1.0/networks/{name}: a rename.
func networkPost(d *Daemon, r *http.Request) response.Response {
	req := api.NetworkPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.networks.Rename(r.Context(), pathVar(r, "name"), req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, urlsOf("networks", []string{req.Name})[0])
}

// GET /1.0/networks/{name}/leases
func networkLeasesGet(d *Daemon, r *http.Request) response.Response {
	leases, err := d.networks.Leases(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, leases)
}
