package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// POST /1.0/instances/{name}: rename (LXD's body {"name": "new"}), with migration and a
// pool or project a move on this server (instance_move.go), with migration and ?target= a
// move to another cluster member (cluster_move.go), or with migration alone the
// source of a migration (instance_migrate.go).
func instanceRename(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := api.InstancePost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if target := r.URL.Query().Get("target"); req.Migration && target != "" {
		return clusterMove(d, r, name, req, target) // cluster_move.go
	}

	if req.Migration && (req.Pool != "" || req.Project != "") {
		return instanceMove(d, r, name, req)
	}

	if req.Migration {
		return instanceMigrate(d, r, name, req)
	}

	err = validate.InstanceName(req.Name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	newKey, err := project.KeyFor(projectOf(r), req.Name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	err = d.instances.Exists(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Renaming instance", instanceResources(name), func(ctx context.Context, op *operations.Operation) error {
		return d.instances.Rename(ctx, name, newKey)
	})
}
