package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// instancesPostCopy answers POST /1.0/instances with source type "copy" (lxc copy on the
// same server). Only the new instance is listed in the operation's resources: the client
// reads element 0 for the name it prints.
func instancesPostCopy(d *Daemon, r *http.Request, req api.InstancesPost) response.Response {
	// A copy from another project (container_copy_project) reads that project: the
	// caller must be allowed in it as in the target.
	if p := req.Source.Project; p != "" && p != projectOf(r) && !mayUse(r, p) {
		return forbiddenProject(p)
	}

	if req.Source.Refresh {
		resp := instancesRefreshCopy(d, r, req)
		if resp != nil {
			return resp
		}
	}

	cr, err := d.instances.PrepareCopy(r.Context(), req)
	if err != nil {
		return response.SmartError(err)
	}

	return d.treeTask("Copying instance", "create_instance_from_instance", instanceResources(cr.Post.Name), d.thenStart(req.Start, true, cr.Post.Name, func(ctx context.Context, op *operations.Operation) error {
		return d.instances.Copy(ctx, cr)
	}))
}

// instancesRefreshCopy answers lxc copy --refresh c1 c2 on one server when c2 exists (nil
// otherwise: then it is a copy, as in LXD): c2, stopped, is brought up to date with c1.
func instancesRefreshCopy(d *Daemon, r *http.Request, req api.InstancesPost) response.Response {
	if d.migrations == nil {
		return nil
	}

	proj := projectOf(r)
	dst, err := project.KeyFor(proj, req.Name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	_, err = d.instances.Get(r.Context(), dst, false)
	if err != nil {
		return nil
	}

	name, snap, _ := strings.Cut(req.Source.Source, "/")
	if snap != "" {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "refreshing from a snapshot is not supported"))
	}

	err = validate.InstanceName(name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid copy source: %v", err))
	}

	srcProj := proj
	if req.Source.Project != "" {
		srcProj = req.Source.Project
	}

	src, err := project.KeyFor(srcProj, name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid copy source: %v", err))
	}

	_, err = d.instances.Get(r.Context(), src, false)
	if err != nil {
		return response.SmartError(err)
	}

	_, err = d.migrations.Snapshots(r.Context(), dst) // refuses a running target
	if err != nil {
		return response.SmartError(err)
	}

	return d.treeTask("Refreshing instance", "create_instance_from_instance", instanceResources(dst), d.thenStart(req.Start, false, dst, func(ctx context.Context, op *operations.Operation) error {
		return d.migrations.RefreshCopy(ctx, src, dst)
	}))
}
