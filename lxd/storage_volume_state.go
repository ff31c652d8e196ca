package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/volumes"
	"github.com/berth-dev/berth/shared/api"
)

// volumeExtras is the rest of lxd/volumes the handlers use (*volumes.Service).
type volumeExtras interface {
	State(ctx context.Context, pool, name string) (*api.StorageVolumeState, error)
	RenameBackup(pool, name, b, newName string) error
}

func (d *Daemon) volumeExtras() (volumeExtras, response.Response) {
	v, ok := d.volumes.(volumeExtras)
	if !ok {
		return nil, response.NotImplemented(api.StatusErrorf(http.StatusNotImplemented, "not supported by this server's volumes"))
	}

	return v, nil
}

// GET .../volumes/{type}/{volume}/state: usage where the pool knows it.
func storageVolumeStateGet(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	v, resp := d.volumeExtras()
	if resp != nil {
		return resp
	}

	st, err := v.State(r.Context(), pool, name)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, st)
}

// POST .../volumes/{type}/{volume}/backups/{backup}: rename (an operation, as LXD).
func storageVolumeBackupPost(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	v, resp := d.volumeExtras()
	if resp != nil {
		return resp
	}

	req := api.StoragePoolVolumeBackupPost{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	b := pathVar(r, "backup")
	_, err = d.volumes.BackupFile(pool, name, b)
	if err != nil {
		return response.SmartError(err)
	}

	err = volumes.ValidateName("backup", req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	if _, err := d.volumes.BackupFile(pool, name, req.Name); err == nil {
		return response.Conflict(api.StatusErrorf(http.StatusConflict, "backup %q of storage volume %q already exists", req.Name, name))
	}

	return d.task("Renaming storage volume backup", map[string][]string{"backups": {volumeBackupURL(pool, name, b)}}, func(context.Context, *operations.Operation) error {
		return v.RenameBackup(pool, name, b, req.Name)
	})
}
