package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

func snapshotURL(key, snap string) string {
	return "/1.0/instances/" + url.PathEscape(project.Name(key)) + "/snapshots/" + url.PathEscape(snap)
}

func snapshotResources(key, snap string) map[string][]string {
	inst := projects.InstanceURL(key)
	return map[string][]string{"instances": {inst}, "containers": {inst}, "instances_snapshots": {snapshotURL(key, snap)}}
}

// GET /1.0/instances/{name}/snapshots: URLs, or objects with recursion=1.
func instanceSnapshotsGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	snaps, err := d.snapshots.List(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, snaps)
	}

	urls := make([]string, 0, len(snaps))
	for _, s := range snaps {
		urls = append(urls, instanceURL(r, name)+"/snapshots/"+url.PathEscape(s.Name))
	}

	return response.SyncResponse(true, urls)
}

// POST /1.0/instances/{name}/snapshots: an operation; an empty name picks snap<N>.
func instanceSnapshotsPost(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := api.InstanceSnapshotsPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Stateful {
		return response.BadRequest(fmt.Errorf("stateful snapshots are not supported"))
	}

	if req.Name == "" {
		req.Name, err = d.snapshots.NextName(r.Context(), name)
		if err != nil {
			return response.SmartError(err)
		}
	} else if err := d.instances.Exists(r.Context(), name); err != nil {
		return response.SmartError(err)
	}

	snap := req.Name
	return d.treeTask("Snapshotting instance", "create_snapshot", snapshotResources(name, snap), func(ctx context.Context, op *operations.Operation) error {
		return d.snapshots.Create(ctx, name, snap, req.ExpiresAt)
	})
}

// GET /1.0/instances/{name}/snapshots/{snap}
func instanceSnapshotGet(d *Daemon, r *http.Request) response.Response {
	s, err := d.snapshots.Get(r.Context(), pathVar(r, "name"), pathVar(r, "snap"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, s, []any{s.ExpiresAt})
}

// POST /1.0/instances/{name}/snapshots/{snap}: rename.
func instanceSnapshotPost(d *Daemon, r *http.Request) response.Response {
	name, snap := pathVar(r, "name"), pathVar(r, "snap")
	req := api.InstanceSnapshotPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Migration {
		return response.NotImplemented(fmt.Errorf("snapshot migration is not supported"))
	}

	_, err = d.snapshots.Get(r.Context(), name, snap)
	if err != nil {
		return response.SmartError(err)
	}

	newName := req.Name
	return d.task("Renaming snapshot", snapshotResources(name, snap), func(ctx context.Context, op *operations.Operation) error {
		return d.snapshots.Rename(ctx, name, snap, newName)
	})
}

// PUT /1.0/instances/{name}/snapshots/{snap}: expires_at, the only writable field (a
// zero or absent one: never); If-Match is checked against GET's ETag. An operation, as LXD.
func instanceSnapshotPut(d *Daemon, r *http.Request) response.Response {
	return instanceSnapshotUpdate(d, r, false)
}

// PATCH /1.0/instances/{name}/snapshots/{snap}: as PUT; an absent expires_at keeps the
// current one.
func instanceSnapshotPatch(d *Daemon, r *http.Request) response.Response {
	return instanceSnapshotUpdate(d, r, true)
}

func instanceSnapshotUpdate(d *Daemon, r *http.Request, patch bool) response.Response {
	name, snap := pathVar(r, "name"), pathVar(r, "snap")
	cur, err := d.snapshots.Get(r.Context(), name, snap)
	if err != nil {
		return response.SmartError(err)
	}

	err = etag.Check(r, []any{cur.ExpiresAt})
	if err != nil {
		return response.SmartError(err)
	}

	req := api.InstanceSnapshotPut{}
	if patch {
		req.ExpiresAt = cur.ExpiresAt
	}

	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Updating snapshot", snapshotResources(name, snap), func(ctx context.Context, op *operations.Operation) error {
		return d.snapshots.SetExpiry(ctx, name, snap, req.ExpiresAt)
	})
}

// DELETE /1.0/instances/{name}/snapshots/{snap}
func instanceSnapshotDelete(d *Daemon, r *http.Request) response.Response {
	name, snap := pathVar(r, "name"), pathVar(r, "snap")
	_, err := d.snapshots.Get(r.Context(), name, snap)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Deleting snapshot", snapshotResources(name, snap), func(ctx context.Context, op *operations.Operation) error {
		return d.snapshots.Delete(ctx, name, snap)
	})
}

// instanceRestore answers PUT /1.0/instances/{name} with a non-empty "restore": either
// "SNAP" or "NAME/SNAP" (NAME must be this instance). All other fields are ignored.
func instanceRestore(d *Daemon, r *http.Request, name string, req api.InstancePut) response.Response {
	snap := req.Restore
	if inst, s, ok := strings.Cut(req.Restore, "/"); ok {
		if project.Key(projectOf(r), inst) != name {
			return response.BadRequest(fmt.Errorf("snapshot %q does not belong to instance %q", req.Restore, name))
		}

		snap = s
	}

	_, err := d.snapshots.Get(r.Context(), name, snap)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Restoring snapshot", instanceResources(name), func(ctx context.Context, op *operations.Operation) error {
		return d.snapshots.Restore(ctx, name, snap)
	})
}
