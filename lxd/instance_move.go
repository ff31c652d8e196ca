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

// instanceMover moves instances on this server (*instance.Creator's MoveToPool and
// *instance.Manager's MoveToProject through managerService).
type instanceMover interface {
	MoveToPool(ctx context.Context, key, pool string, instanceOnly bool) error
	MoveToProject(ctx context.Context, oldKey, newKey string, instanceOnly bool) error
}

// instanceMove answers POST /1.0/instances/{name} with migration and "pool" (lxc move
// --storage, instance_pool_move) or "project" (lxc move --target-project,
// instance_project_move): a stopped instance moves, under its name or req.Name, with its
// snapshots unless instance_only. The checks that need no work (names, the instance,
// its state, the caller's right to the target project) fail the request itself.
func instanceMove(d *Daemon, r *http.Request, key string, req api.InstancePost) response.Response {
	mover, ok := d.instances.(instanceMover)
	if !ok {
		return response.NotImplemented(api.StatusErrorf(http.StatusNotImplemented, "moving instances is not supported by this server"))
	}

	if req.Pool != "" && req.Project != "" {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "move to another pool and another project in two steps"))
	}

	name := req.Name
	if name == "" {
		name = project.Name(key)
	}

	err := validate.InstanceName(name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	target := projectOf(r)
	if req.Project != "" {
		target = req.Project
		err = project.ValidateName(target)
		if err != nil {
			return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid target project: %v", err))
		}

		if !mayUse(r, target) {
			return forbiddenProject(target)
		}
	}

	newKey, err := project.KeyFor(target, name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	inst, err := d.instances.Get(r.Context(), key, false)
	if err != nil {
		return response.SmartError(err)
	}

	if inst.StatusCode != api.Stopped {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "instance %q is running: stop it before moving it", inst.Name))
	}

	instanceOnly := req.InstanceOnly || req.ContainerOnly
	if req.Project != "" {
		if newKey == key {
			return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "instance %q is already in project %q", inst.Name, target))
		}

		if d.projects != nil {
			_, err = d.projects.Config(r.Context(), target)
			if err != nil {
				return response.SmartError(err)
			}
		}

		return d.task("Moving instance", instanceResources(key), func(ctx context.Context, op *operations.Operation) error {
			return mover.MoveToProject(ctx, key, newKey, instanceOnly)
		})
	}

	if newKey != key {
		_, err = d.instances.Get(r.Context(), newKey, false)
		if err == nil {
			return response.Conflict(api.StatusErrorf(http.StatusConflict, "instance %q already exists", name))
		}

		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			return response.SmartError(err)
		}
	}

	return d.task("Moving instance", instanceResources(key), func(ctx context.Context, op *operations.Operation) error {
		err := mover.MoveToPool(ctx, key, req.Pool, instanceOnly)
		if err != nil || newKey == key {
			return err
		}

		return d.instances.Rename(ctx, key, newKey)
	})
}
