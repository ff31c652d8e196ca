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

// instancePost is POST /1.0/instances/{name}: rename (LXD's body {"name": "new"}).
// Migration is not supported.
type instancePost struct {
	Name      string `json:"name"`
	Migration bool   `json:"migration"`
	Live      bool   `json:"live"`

	// A move on this server (instance_pool_move, instance_project_move): instanceMove.
	Pool          string `json:"pool"`
	Project       string `json:"project"`
	InstanceOnly  bool   `json:"instance_only"`
	ContainerOnly bool   `json:"container_only"`
}

// POST /1.0/instances/{name}
func instanceRename(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := instancePost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Migration && (req.Pool != "" || req.Project != "") {
		return instanceMove(d, r, name, req)
	}

	if req.Migration {
		return response.NotImplemented(api.StatusErrorf(http.StatusNotImplemented, "migration is not supported"))
	}

	err = validate.InstanceName(req.Name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	newKey, err := project.KeyFor(projectOf(r), req.Name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	_, err = d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Renaming instance", instanceResources(name), func(ctx context.Context, op *operations.Operation) error {
		return d.instances.Rename(ctx, name, newKey)
	})
}
