package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/operations: grouped by lowercased status.
func operationsGet(d *Daemon, r *http.Request) response.Response {
	full := recursion(r) >= 1
	urls := map[string][]string{}
	objs := map[string][]api.Operation{}
	for _, op := range d.ops.List() {
		o := op.Render()
		key := strings.ToLower(o.Status)
		urls[key] = append(urls[key], "/1.0/operations/"+o.ID)
		objs[key] = append(objs[key], o)
	}

	if full {
		return response.SyncResponse(true, objs)
	}

	return response.SyncResponse(true, urls)
}

// GET /1.0/operations/{id}
func operationGet(d *Daemon, r *http.Request) response.Response {
	op, err := d.ops.Get(pathVar(r, "id"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, op.Render())
}

// DELETE /1.0/operations/{id}: cancel.
func operationDelete(d *Daemon, r *http.Request) response.Response {
	op, err := d.ops.Get(pathVar(r, "id"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SmartError(op.Cancel())
}

// GET /1.0/operations/{id}/wait?timeout=N: block until final or N seconds (-1: forever).
func operationWait(d *Daemon, r *http.Request) response.Response {
	op, err := d.ops.Get(pathVar(r, "id"))
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

	return response.ManualResponse(func(w http.ResponseWriter) error { return wl.Serve(w, r) })
}
