package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/volumes"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// volumeService is lxd/volumes as the handlers use it.
type volumeService interface {
	List(ctx context.Context, pool string) ([]api.StorageVolume, error)
	Get(ctx context.Context, pool, name string) (*api.StorageVolume, error)
	Create(ctx context.Context, pool string, req api.StorageVolumesPost) error
	Update(ctx context.Context, pool, name, ifMatch string, req api.StorageVolumePut, patch bool) error
	Rename(ctx context.Context, pool, name string, req api.StorageVolumePost) error
	Delete(ctx context.Context, pool, name string) error

	Snapshots(ctx context.Context, pool, name string) ([]api.StorageVolumeSnapshot, error)
	Snapshot(ctx context.Context, pool, name, snap string) (*api.StorageVolumeSnapshot, error)
	CreateSnapshot(ctx context.Context, pool, name string, req api.StorageVolumeSnapshotsPost) (string, error)
	UpdateSnapshot(ctx context.Context, pool, name, snap string, req api.StorageVolumeSnapshotPut, patch bool) error
	RenameSnapshot(ctx context.Context, pool, name, snap, newName string) error
	DeleteSnapshot(ctx context.Context, pool, name, snap string) error

	volumeBackups
}

// volumeVars reads the pool and volume of a request, refusing volume types other than
// custom (instance and image volumes are the pool's own).
func volumeVars(r *http.Request) (pool, name string, err error) {
	if t := pathVar(r, "type"); t != "custom" {
		return "", "", api.StatusErrorf(http.StatusNotFound, "storage volume type %q is not served (only custom volumes are)", t)
	}

	return pathVar(r, "name"), pathVar(r, "volume"), nil
}

func volumeResources(pool, name string) map[string][]string {
	return map[string][]string{"storage_volumes": {volumes.URL(pool, name)}}
}

// GET /1.0/storage-pools/{name}/volumes[/{type}]
func storageVolumesGet(d *Daemon, r *http.Request) response.Response {
	list, err := d.volumes.List(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	if t := pathVar(r, "type"); t != "" && t != "custom" {
		list = []api.StorageVolume{}
	}

	list = inProject(r, list)
	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	urls := make([]string, 0, len(list))
	for _, v := range list {
		urls = append(urls, volumes.URL(pathVar(r, "name"), project.VolumeKey(v.Project, v.Name)))
	}

	return response.SyncResponse(true, urls)
}

// POST /1.0/storage-pools/{name}/volumes[/{type}]: a new volume (sync), or a copy of one
// (an operation, as LXD: its clients wait on it).
func storageVolumesPost(d *Daemon, r *http.Request) response.Response {
	if r.Header.Get("Content-Type") == "application/octet-stream" {
		return storageVolumesPostBackup(d, r)
	}

	req := api.StorageVolumesPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if t := pathVar(r, "type"); t != "" && req.Type == "" {
		req.Type = t
	}

	err = keyVolumesPost(d, r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	pool := pathVar(r, "name")
	if req.Source.Type != "copy" {
		err = d.volumes.Create(r.Context(), pool, req)
		if err != nil {
			return response.SmartError(err)
		}

		return response.SyncResponseLocation(true, nil, volumes.URL(pool, req.Name))
	}

	return d.task("Copying storage volume", volumeResources(pool, req.Name), func(ctx context.Context, _ *operations.Operation) error {
		return d.volumes.Create(ctx, pool, req)
	})
}

// GET /1.0/storage-pools/{name}/volumes/{type}/{volume}
func storageVolumeGet(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	v, err := d.volumes.Get(r.Context(), pool, name)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, v, volumes.ETag(v))
}

// PUT /1.0/storage-pools/{name}/volumes/{type}/{volume}
func storageVolumePut(d *Daemon, r *http.Request) response.Response {
	return storageVolumeUpdate(d, r, false)
}

// PATCH /1.0/storage-pools/{name}/volumes/{type}/{volume}
func storageVolumePatch(d *Daemon, r *http.Request) response.Response {
	return storageVolumeUpdate(d, r, true)
}

func storageVolumeUpdate(d *Daemon, r *http.Request, patch bool) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	req := api.StorageVolumePut{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.volumes.Update(r.Context(), pool, name, r.Header.Get("If-Match"), req, patch)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// POST /1.0/storage-pools/{name}/volumes/{type}/{volume}: a rename (sync) or a move to
// another pool (an operation).
func storageVolumePost(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	req := api.StorageVolumePost{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Migration {
		return response.SmartError(api.StatusErrorf(http.StatusNotImplemented, "migrating storage volumes between servers is not supported"))
	}

	err = keyVolumePost(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	// A rename (lxc storage volume rename) names no pool and waits for a sync answer; a
	// move (lxc storage volume move, within a pool too) names the target pool and waits
	// on an operation.
	if req.Pool == "" {
		err = d.volumes.Rename(r.Context(), pool, name, req)
		if err != nil {
			return response.SmartError(err)
		}

		return response.SyncResponseLocation(true, nil, volumes.URL(pool, req.Name))
	}

	return d.task("Moving storage volume", volumeResources(pool, name), func(ctx context.Context, _ *operations.Operation) error {
		return d.volumes.Rename(ctx, pool, name, req)
	})
}

// DELETE /1.0/storage-pools/{name}/volumes/{type}/{volume}
func storageVolumeDelete(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.volumes.Delete(r.Context(), pool, name)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// GET .../volumes/{type}/{volume}/snapshots
func storageVolumeSnapshotsGet(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	list, err := d.volumes.Snapshots(r.Context(), pool, name)
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	urls := make([]string, 0, len(list))
	for _, s := range list {
		urls = append(urls, volumes.URL(pool, name, "snapshots", s.Name))
	}

	return response.SyncResponse(true, urls)
}

// POST .../volumes/{type}/{volume}/snapshots (an operation, as LXD)
func storageVolumeSnapshotsPost(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	req := api.StorageVolumeSnapshotsPost{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	// Refuse a bad name before the operation starts.
	_, err = d.volumes.Get(r.Context(), pool, name)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Name != "" {
		err = volumes.ValidateName("snapshot", req.Name)
		if err != nil {
			return response.SmartError(err)
		}
	}

	return d.task("Snapshotting storage volume", volumeResources(pool, name), func(ctx context.Context, _ *operations.Operation) error {
		_, err := d.volumes.CreateSnapshot(ctx, pool, name, req)
		return err
	})
}

// GET .../snapshots/{snapshot}
func storageVolumeSnapshotGet(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	s, err := d.volumes.Snapshot(r.Context(), pool, name, pathVar(r, "snapshot"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, s, []any{s.Description, s.ExpiresAt})
}

// PUT .../snapshots/{snapshot}
func storageVolumeSnapshotPut(d *Daemon, r *http.Request) response.Response {
	return storageVolumeSnapshotUpdate(d, r, false)
}

// PATCH .../snapshots/{snapshot}
func storageVolumeSnapshotPatch(d *Daemon, r *http.Request) response.Response {
	return storageVolumeSnapshotUpdate(d, r, true)
}

func storageVolumeSnapshotUpdate(d *Daemon, r *http.Request, patch bool) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	req := api.StorageVolumeSnapshotPut{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	snap := pathVar(r, "snapshot")
	_, err = d.volumes.Snapshot(r.Context(), pool, name, snap)
	if err != nil {
		return response.SmartError(err)
	}

	// An operation, as LXD: its client waits on one.
	return d.task("Updating storage volume snapshot", volumeResources(pool, name), func(ctx context.Context, _ *operations.Operation) error {
		return d.volumes.UpdateSnapshot(ctx, pool, name, snap, req, patch)
	})
}

// POST .../snapshots/{snapshot}: a rename (an operation, as LXD)
func storageVolumeSnapshotPost(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	req := api.StorageVolumeSnapshotPost{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	snap := pathVar(r, "snapshot")
	_, err = d.volumes.Snapshot(r.Context(), pool, name, snap)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Renaming storage volume snapshot", volumeResources(pool, name), func(ctx context.Context, _ *operations.Operation) error {
		return d.volumes.RenameSnapshot(ctx, pool, name, snap, req.Name)
	})
}

// DELETE .../snapshots/{snapshot} (an operation, as LXD)
func storageVolumeSnapshotDelete(d *Daemon, r *http.Request) response.Response {
	pool, name, err := volumeVars(r)
	if err != nil {
		return response.SmartError(err)
	}

	snap := pathVar(r, "snapshot")
	_, err = d.volumes.Snapshot(r.Context(), pool, name, snap)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Deleting storage volume snapshot", volumeResources(pool, name), func(ctx context.Context, _ *operations.Operation) error {
		return d.volumes.DeleteSnapshot(ctx, pool, name, snap)
	})
}
