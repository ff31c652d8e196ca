package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
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

	cr, err := d.instances.PrepareCopy(r.Context(), req)
	if err != nil {
		return response.SmartError(err)
	}

	return d.treeTask("Copying instance", "create_instance_from_instance", instanceResources(cr.Post.Name), func(ctx context.Context, op *operations.Operation) error {
		return d.instances.Copy(ctx, cr)
	})
}
