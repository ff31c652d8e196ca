package main

import (
	"context"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/instances/{name}/state
func instanceStateGet(d *Daemon, r *http.Request) response.Response {
	st, err := d.instances.State(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, st)
}

// PUT /1.0/instances/{name}/state: start, stop, restart, freeze, unfreeze as an operation.
func instanceStatePut(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	req := api.InstanceStatePut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.instances.Exists(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	desc, fn, err := stateAction(d, name, req)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task(desc, instanceResources(name), fn)
}

// stateAction is what a state change of instance name does, and its description.
func stateAction(d *Daemon, name string, req api.InstanceStatePut) (string, func(ctx context.Context, op *operations.Operation) error, error) {
	timeout := time.Duration(req.Timeout) * time.Second
	var fn func(ctx context.Context, op *operations.Operation) error
	var desc string
	switch req.Action {
	case "start":
		desc = "Starting instance"
		fn = func(ctx context.Context, op *operations.Operation) error { return d.instances.Start(ctx, name) }
	case "stop":
		desc = "Stopping instance"
		fn = func(ctx context.Context, op *operations.Operation) error {
			return d.instances.Stop(ctx, name, timeout, req.Force)
		}
	case "restart":
		desc = "Restarting instance"
		fn = func(ctx context.Context, op *operations.Operation) error {
			return d.instances.Restart(ctx, name, timeout, req.Force)
		}
	case "freeze":
		desc = "Freezing instance"
		fn = func(ctx context.Context, op *operations.Operation) error { return d.instances.Freeze(ctx, name) }
	case "unfreeze":
		desc = "Unfreezing instance"
		fn = func(ctx context.Context, op *operations.Operation) error { return d.instances.Unfreeze(ctx, name) }
	default:
		return "", nil, api.StatusErrorf(http.StatusBadRequest, "unknown action %q", req.Action)
	}

	if req.Stateful {
		return "", nil, api.StatusErrorf(http.StatusBadRequest, "stateful %s is not supported", req.Action)
	}

	return desc, fn, nil
}
