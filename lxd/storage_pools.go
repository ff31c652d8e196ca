package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

func poolToAPI(p *db.StoragePool, usedBy []string) api.StoragePool {
	return api.StoragePool{
		StoragePoolPut: api.StoragePoolPut{Config: p.Config, Description: p.Description},
		Name:           p.Name,
		Driver:         p.Driver,
		Status:         "Created",
		UsedBy:         usedBy,
		Locations:      []string{"none"},
	}
}

// GET /1.0/storage-pools
func storagePoolsGet(d *Daemon, r *http.Request) response.Response {
	var rows []db.StoragePool
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetStoragePools(ctx)
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	names, err := d.instances.Names(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		out := []api.StoragePool{}
		for i := range rows {
			out = append(out, poolToAPI(&rows[i], urlsOf("instances", names)))
		}

		return response.SyncResponse(true, out)
	}

	pools := []string{}
	for _, p := range rows {
		pools = append(pools, p.Name)
	}

	return response.SyncResponse(true, urlsOf("storage-pools", pools))
}

// GET /1.0/storage-pools/{name}
func storagePoolGet(d *Daemon, r *http.Request) response.Response {
	var p *db.StoragePool
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		p, err = tx.GetStoragePool(ctx, pathVar(r, "name"))
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	names, err := d.instances.Names(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	out := poolToAPI(p, urlsOf("instances", names))
	return response.SyncResponseETag(true, out, []any{out.Config, out.Description})
}
