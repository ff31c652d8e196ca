package main

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// GET /1.0/instances: URLs, objects (recursion=1) or full objects (recursion=2).
func instancesGet(d *Daemon, r *http.Request) response.Response {
	clauses, err := parseFilter(r.FormValue("filter"))
	if err != nil {
		return response.SmartError(err)
	}

	omit, err := parseOmit(r)
	if err != nil {
		return response.SmartError(err)
	}

	rec := recursion(r)
	list, err := d.instances.List(r.Context(), rec >= 2 || len(clauses) > 0)
	if err != nil {
		return response.SmartError(err)
	}

	// Clustered: this member's instances, plus what the other members answer.
	list, answers, fallback, err := d.instancesAcrossMembers(r, list)
	if err != nil {
		return response.SmartError(err)
	}

	// Filtered on the whole objects (a filter may read the config), then left out.
	mine := listPartOf(r, list, clauses)
	omit.apply(&mine)
	if len(answers) > 0 {
		rest := listPartOf(r, fallback, clauses)
		omit.apply(&rest)
		return mergedInstanceList(rec, answers, mine, rest)
	}

	switch {
	case rec >= 2:
		return response.SyncResponse(true, mine.full)
	case rec == 1:
		return response.SyncResponse(true, mine.objs)
	}

	return response.SyncResponse(true, mine.names)
}

// listPart is part of an instance list, as each recursion renders it.
type listPart struct {
	names []string
	objs  []api.Instance
	full  []api.InstanceFull
}

// listPartOf is the part of insts that r's scope and filter take.
func listPartOf(r *http.Request, insts []api.InstanceFull, clauses []filterClause) listPart {
	p := listPart{names: []string{}, objs: []api.Instance{}, full: []api.InstanceFull{}}
	for _, inst := range insts {
		if !inScope(r, inst.Project) || !matchFilter(inst, clauses) {
			continue
		}

		p.names = append(p.names, instanceListURL(r, inst.Project, inst.Name))
		p.objs = append(p.objs, inst.Instance)
		p.full = append(p.full, inst)
	}

	return p
}

// instanceListURL is an instance's URL in a list, under the collection r came through,
// with ?project= outside the default project, as LXD writes it.
func instanceListURL(r *http.Request, proj, name string) string {
	u := "/1.0/" + instanceCollection(r) + "/" + url.PathEscape(name)
	if proj != project.Default {
		u += "?project=" + url.QueryEscape(proj)
	}

	return u
}

// POST /1.0/instances: validation and image lookup happen before the operation, so bad
// names (400), duplicates (409) and unknown images (404) fail the request itself.
func instancesPost(d *Daemon, r *http.Request) response.Response {
	err := d.localTarget(r) // ?target= (issue 16): cluster_placement.go
	if err != nil {
		return response.SmartError(err)
	}

	if r.Header.Get("Content-Type") == "application/octet-stream" {
		return instancesPostBackup(d, r)
	}

	req := api.InstancesPost{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Source.Type == "copy" {
		return instancesPostCopy(d, r, req)
	}

	if req.Source.Type == "migration" {
		return instancesPostMigration(d, r, req)
	}

	if req.Source.Type == "image" && (req.Source.Mode == "pull" || req.Source.Server != "") {
		return instancesPostPull(d, r, req)
	}

	cr, err := d.instances.PrepareCreate(r.Context(), req)
	if err != nil {
		return response.SmartError(err)
	}

	name := cr.Post.Name
	return d.task("Creating instance", instanceResources(name), d.thenStart(req.Start, true, name, func(ctx context.Context, op *operations.Operation) error {
		return d.instances.Create(ctx, cr)
	}))
}

// GET /1.0/instances/{name}; recursion=1 embeds state and snapshots.
func instanceGet(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	full := recursion(r) >= 1
	inst, err := d.instances.Get(r.Context(), name, full)
	if err != nil {
		return response.SmartError(err)
	}

	etag := instance.ETag(&inst.Instance)
	if full {
		return response.SyncResponseETag(true, inst, etag)
	}

	return response.SyncResponseETag(true, inst.Instance, etag)
}

// DELETE /1.0/instances/{name}: refused (400) while running.
func instanceDelete(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	inst, err := d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	if inst.StatusCode != api.Stopped {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "instance %q is running", name))
	}

	return d.task("Deleting instance", instanceResources(name), func(ctx context.Context, op *operations.Operation) error {
		return d.instances.Delete(ctx, name)
	})
}

// instanceResources are the resources of an operation on the instance key.
func instanceResources(key string) map[string][]string {
	u := projects.InstanceURL(key)
	return map[string][]string{"instances": {u}, "containers": {u}}
}

// task runs fn as an asynchronous operation and returns the 202 response.
func (d *Daemon) task(description string, resources map[string][]string, fn func(ctx context.Context, op *operations.Operation) error) response.Response {
	op, err := d.ops.Create(api.OperationClassTask, description, resources, nil, fn, nil, nil)
	if err != nil {
		return response.InternalError(err)
	}

	err = op.Start()
	if err != nil {
		return response.InternalError(err)
	}

	return response.OperationResponse(op)
}
