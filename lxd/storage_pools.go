package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/pools"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/storage-pools
func storagePoolsGet(d *Daemon, r *http.Request) response.Response {
	list, err := d.pools.List(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	for i := range list {
		list[i].UsedBy = tenantUsedBy(r, list[i].UsedBy)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	names := make([]string, 0, len(list))
	for _, p := range list {
		names = append(names, p.Name)
	}

	return response.SyncResponse(true, urlsOf("storage-pools", names))
}

// GET /1.0/storage-pools/{name}
func storagePoolGet(d *Daemon, r *http.Request) response.Response {
	p, err := d.pools.Get(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	p.UsedBy = tenantUsedBy(r, p.UsedBy)
	return response.SyncResponseETag(true, p, pools.ETag(p))
}

// GET /1.0/storage-pools/{name}/resources
func storagePoolResourcesGet(d *Daemon, r *http.Request) response.Response {
	res, err := d.pools.Resources(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, res)
}

// POST /1.0/storage-pools
func storagePoolsPost(d *Daemon, r *http.Request) response.Response {
	req := api.StoragePoolsPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.pools.Create(r.Context(), req)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, urlsOf("storage-pools", []string{req.Name})[0])
}

// PUT /1.0/storage-pools/{name}
func storagePoolPut(d *Daemon, r *http.Request) response.Response {
	return storagePoolUpdate(d, r, false)
}

// PATCH /1.0/storage-pools/{name}
func storagePoolPatch(d *Daemon, r *http.Request) response.Response {
	return storagePoolUpdate(d, r, true)
}

func storagePoolUpdate(d *Daemon, r *http.Request, patch bool) response.Response {
	req := api.StoragePoolPut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.pools.Update(r.Context(), pathVar(r, "name"), r.Header.Get("If-Match"), req, patch)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// DELETE /1.0/storage-pools/{name}
func storagePoolDelete(d *Daemon, r *http.Request) response.Response {
	err := d.pools.Delete(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}
