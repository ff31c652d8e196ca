package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/cluster/forward"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/operations: grouped by lowercased status; those of the request's project
// (all-projects=true: every project's) and those of no project.
func operationsGet(d *Daemon, r *http.Request) response.Response {
	full := recursion(r) >= 1
	urls := map[string][]string{}
	objs := map[string][]api.Operation{}
	c := callerOf(r)

	// First: it also ends this member's token operations whose token is gone from the
	// cluster database (used or revoked through another member).
	var standIns []api.Operation
	if c.Admin() {
		standIns = d.clusterTokenOps(r.Context())
	}

	for _, op := range d.ops.List() {
		if c.Restricted() && !mayUse(r, op.Project()) {
			continue // another project's, or of none: its secrets are not this caller's
		}

		if op.Project() != "" && !inScope(r, op.Project()) {
			continue // another project's, as LXD lists them
		}

		o := op.Render()
		key := strings.ToLower(o.Status)
		urls[key] = append(urls[key], "/1.0/operations/"+o.ID)
		objs[key] = append(objs[key], o)
	}

	if c.Admin() {
		// Cluster join tokens held by the database, not by an operation here.
		for _, o := range standIns {
			urls["running"] = append(urls["running"], "/1.0/operations/"+o.ID)
			objs["running"] = append(objs["running"], o)
		}
	}

	// Clustered: the other members' operations too.
	d.operationsOfMembers(r, urls, objs)

	if full {
		dropHeldStandIns(objs) // cluster_tokens_list.go
		return response.SyncResponse(true, objs)
	}

	return response.SyncResponse(true, urls)
}

// operationOf is the operation of r's path, a 404 for a restricted certificate when it
// is not of one of its projects (as if it did not exist).
func (d *Daemon) operationOf(r *http.Request) (*operations.Operation, error) {
	id := pathVar(r, "id")
	op, err := d.ops.Get(id)
	if err != nil {
		return nil, err
	}

	c := callerOf(r)
	if c.Restricted() && !mayUse(r, op.Project()) {
		return nil, api.StatusErrorf(http.StatusNotFound, "operation %q not found", id)
	}

	return op, nil
}

// GET /1.0/operations/{id}
func operationGet(d *Daemon, r *http.Request) response.Response {
	op, err := d.operationOf(r)
	if err != nil {
		if o, ok := d.standInToken(r.Context(), pathVar(r, "id")); ok && callerOf(r).Admin() {
			return response.SyncResponse(true, o)
		}

		return response.SmartError(err)
	}

	return response.SyncResponse(true, op.Render())
}

// DELETE /1.0/operations/{id}: cancel.
func operationDelete(d *Daemon, r *http.Request) response.Response {
	op, err := d.operationOf(r)
	if err != nil {
		if o, ok := d.standInToken(r.Context(), pathVar(r, "id")); ok && callerOf(r).Admin() {
			return response.SmartError(d.revokeStandIn(r.Context(), o))
		}

		return response.SmartError(err)
	}

	return response.SmartError(op.Cancel())
}

// GET /1.0/operations/{id}/wait?timeout=N: block until final or N seconds (-1: forever).
// An untrusted caller may wait only for an image it pushed, with the operation's secret.
func operationWait(d *Daemon, r *http.Request) response.Response {
	c := callerOf(r)
	if !c.Admin() && !c.Restricted() {
		op, err := d.ops.Get(pathVar(r, "id"))
		if err != nil || !mayWaitWithSecret(op, r.FormValue("secret")) {
			return response.Forbidden(refusal(c))
		}
	}

	op, err := d.operationOf(r)
	if err != nil {
		return response.SmartError(err)
	}

	timeout := -1
	if t := r.FormValue("timeout"); t != "" {
		timeout, err = strconv.Atoi(t)
		if err != nil {
			return response.BadRequest(fmt.Errorf("invalid timeout %q", t))
		}
	}

	ctx := r.Context()
	if timeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
		defer cancel()
	}

	_ = op.Wait(ctx)
	return response.SyncResponse(true, op.Render())
}

// GET /1.0/operations/{id}/websocket?secret=S
func operationWebsocket(d *Daemon, r *http.Request) response.Response {
	id := pathVar(r, "id")
	return response.ManualResponse(func(w http.ResponseWriter) error {
		return d.ops.ConnectWebsocket(id, r, w)
	})
}

// GET /1.0/events: websocket of operation, lifecycle and logging events.
func eventsGet(d *Daemon, r *http.Request) response.Response {
	wl, err := d.events.NewWebsocketListener(r)
	if err != nil {
		return response.SmartError(err)
	}

	c := callerOf(r)
	if c.Restricted() {
		wl.Restrict(d.tenantProjects(r.Context(), c))
	}

	if forward.IsForwarded(r) {
		wl.LocalOnly() // another member's subscription: it relays only what happens here
	}

	return response.ManualResponse(func(w http.ResponseWriter) error { return wl.Serve(w, r) })
}
