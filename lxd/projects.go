package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/lxd/response"
)

// projectsPostBody is LXD's ProjectsPost.
type projectsPostBody struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Config      map[string]string `json:"config"`
}

// projectPutBody is LXD's ProjectPut.
type projectPutBody struct {
	Description string            `json:"description"`
	Config      map[string]string `json:"config"`
}

// GET /1.0/projects: URLs, or objects with recursion=1.
func projectsGet(d *Daemon, r *http.Request) response.Response {
	list, err := d.projects.List(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	c := callerOf(r)
	mine := []projects.Project{}
	names := []string{}
	for _, p := range list {
		if c.MayUse(p.Name) { // a restricted certificate lists its own
			mine = append(mine, p)
			names = append(names, p.Name)
		}
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, mine)
	}

	return response.SyncResponse(true, urlsOf("projects", names))
}

// mayUseProject refuses a restricted certificate a project not its own.
func mayUseProject(r *http.Request, name string) response.Response {
	c := callerOf(r)
	if c.Restricted() && !c.MayUse(name) {
		return forbiddenProject(name)
	}

	return nil
}

// GET /1.0/projects/{name}
func projectGet(d *Daemon, r *http.Request) response.Response {
	denied := mayUseProject(r, pathVar(r, "name"))
	if denied != nil {
		return denied
	}

	p, err := d.projects.Get(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, p, projects.ETag(p))
}

// POST /1.0/projects: create (sync, 201 with Location as LXD).
func projectsPost(d *Daemon, r *http.Request) response.Response {
	req := projectsPostBody{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.projects.Create(r.Context(), req.Name, req.Description, req.Config)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseLocation(true, nil, urlsOf("projects", []string{req.Name})[0])
}

// PUT /1.0/projects/{name}: replace description and config (If-Match optional); a limit
// below what the project's instances use is refused.
func projectPut(d *Daemon, r *http.Request) response.Response {
	req := projectPutBody{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.projects.Replace(r.Context(), pathVar(r, "name"), r.Header.Get("If-Match"), req.Description, req.Config)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// PATCH /1.0/projects/{name}: merge config, keep what is absent.
func projectPatch(d *Daemon, r *http.Request) response.Response {
	req := projects.Patch{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.projects.Merge(r.Context(), pathVar(r, "name"), r.Header.Get("If-Match"), req)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// POST /1.0/projects/{name}: rename, an operation as in LXD. Checked before the
// operation starts (the name, the default project, instances) so that a refusal fails
// the request itself; the rename checks again in its transaction.
func projectPost(d *Daemon, r *http.Request) response.Response {
	req := struct {
		Name string `json:"name"`
	}{}

	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	name := pathVar(r, "name")
	err = d.projects.CheckRename(r.Context(), name, req.Name)
	if err != nil {
		return response.SmartError(err)
	}

	resources := map[string][]string{"projects": {urlsOf("projects", []string{name})[0]}}
	return d.task("Renaming project", resources, func(ctx context.Context, op *operations.Operation) error {
		return d.projects.Rename(ctx, name, req.Name)
	})
}

// DELETE /1.0/projects/{name}: refused for default (403) and while it owns anything (400).
func projectDelete(d *Daemon, r *http.Request) response.Response {
	err := d.projects.Delete(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// GET /1.0/projects/{name}/state: what its instances use against its limits.
func projectStateGet(d *Daemon, r *http.Request) response.Response {
	denied := mayUseProject(r, pathVar(r, "name"))
	if denied != nil {
		return denied
	}

	st, err := d.projects.State(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, st)
}
