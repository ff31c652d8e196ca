package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/networks"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/network-acls
func networkACLsGet(d *Daemon, r *http.Request) response.Response {
	list, err := d.networks.ACLs(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	names := make([]string, 0, len(list))
	for _, a := range list {
		names = append(names, a.Name)
	}

	return response.SyncResponse(true, urlsOf("network-acls", names))
}

// POST /1.0/network-acls
func networkACLsPost(d *Daemon, r *http.Request) response.Response {
	req := api.NetworkACLsPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.networks.CreateACL(r.Context(), req)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, urlsOf("network-acls", []string{req.Name})[0])
}

// GET /1.0/network-acls/{name}
func networkACLGet(d *Daemon, r *http.Request) response.Response {
	a, err := d.networks.ACL(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, a, networks.ACLETag(a))
}

// PUT /1.0/network-acls/{name}
func networkACLPut(d *Daemon, r *http.Request) response.Response {
	return networkACLUpdate(d, r, false)
}

// PATCH /1.0/network-acls/{name}
func networkACLPatch(d *Daemon, r *http.Request) response.Response {
	return networkACLUpdate(d, r, true)
}

func networkACLUpdate(d *Daemon, r *http.Request, patch bool) response.Response {
	req := api.NetworkACLPut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.networks.UpdateACL(r.Context(), pathVar(r, "name"), r.Header.Get("If-Match"), req, patch)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// POST /1.0/network-acls/{name}: a rename.
func networkACLPost(d *Daemon, r *http.Request) response.Response {
	req := api.NetworkACLPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.networks.RenameACL(r.Context(), pathVar(r, "name"), req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, urlsOf("network-acls", []string{req.Name})[0])
}

// DELETE /1.0/network-acls/{name}
func networkACLDelete(d *Daemon, r *http.Request) response.Response {
	err := d.networks.DeleteACL(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}
