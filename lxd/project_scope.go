package main

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// A request addresses one project: ?project= (the default one when absent), or every
// project with all-projects=true where LXD takes it (lists). scopeProject resolves it
// once for every endpoint: an unknown project is a 404 naming it; an instance path's
// {name} becomes the instance's key (shared/project) so that every handler below works
// on keys and reaches only the instances of the request's project; and the project
// rides in the context for the names a body brings (a new instance, a copy's source).
//
// A project with features.profiles has profiles of its own (lxd/profiles picks them by
// the request's project), one with features.images images and aliases of its own
// (lxd/imagestore picks them by the request's project), one with
// features.storage.volumes custom volumes of its own (scopeVolumes). Projects have no
// features.networks of their own yet (lxd/projects): pools and networks (and profiles,
// images and volumes without the feature) are the default project's, readable from
// every project; a restricted project may not change them (and reaches no volume
// without its own: db.VolumeOwner).

type allProjectsKey struct{}

type tenantProjectsKey struct{}

// mayUse reports whether r's caller may use project proj: an administrator any, a
// restricted certificate only those of its projects that are restricted (restricted=true),
// as scopeProject found them.
func mayUse(r *http.Request, proj string) bool {
	c := callerOf(r)
	if !c.Restricted() {
		return c.MayUse(proj)
	}

	usable, _ := r.Context().Value(tenantProjectsKey{}).([]string)
	return slices.Contains(usable, proj)
}

// tenantProjects are the projects of a restricted certificate that are restricted.
func (d *Daemon) tenantProjects(ctx context.Context, c trust.Caller) []string {
	var out []string
	for _, p := range c.Cert.Projects {
		if d.projects == nil {
			break
		}

		cfg, err := d.projects.Config(ctx, p)
		if err == nil && validate.IsTrue(cfg["restricted"]) {
			out = append(out, p)
		}
	}

	return out
}

// projectOf is the project r addresses.
func projectOf(r *http.Request) string {
	return project.FromContext(r.Context())
}

// allProjects reports whether r asked for every project (all-projects=true).
func allProjects(r *http.Request) bool {
	v, _ := r.Context().Value(allProjectsKey{}).(bool)
	return v
}

// inScope reports whether an object of project proj belongs in r's answer: r's
// project, or with all-projects=true every project its caller may use.
func inScope(r *http.Request, proj string) bool {
	if allProjects(r) {
		return mayUse(r, proj)
	}

	return proj == projectOf(r)
}

// forbiddenProject is the refusal of a restricted certificate outside its projects.
func forbiddenProject(proj string) response.Response {
	return response.Forbidden(api.StatusErrorf(http.StatusForbidden, "not authorized: this certificate is restricted and project %q is not one of its projects", proj))
}

// sharedKinds are the collections a project shares with the default project today.
var sharedKinds = []string{"images", "profiles", "storage-pools", "networks", "network-acls"}

// scopeProject returns r carrying its project, with an instance path's name turned into
// the instance's key, or the response that refuses it.
func (d *Daemon) scopeProject(ep APIEndpoint, r *http.Request) (*http.Request, response.Response) {
	q := r.URL.Query()
	proj := q.Get("project")
	if proj == "" {
		proj = project.Default
	}

	all := validate.IsTrue(q.Get("all-projects"))
	if strings.HasPrefix(ep.Path, "projects") {
		return r, nil // the projects API names its project in the path
	}

	// A restricted certificate reaches only its projects (GET /1.0 names none), and
	// reads (lists) only across them.
	c := callerOf(r)
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if c.Restricted() && all && !read {
		return r, response.Forbidden(api.StatusErrorf(http.StatusForbidden, "not authorized: a restricted certificate changes one project at a time"))
	}

	if c.Restricted() && !all && ep.Path != "" && !c.MayUse(proj) {
		return r, forbiddenProject(proj)
	}

	var restricted, ownProfiles, ownImages, ownVolumes bool
	if (proj != project.Default || c.Restricted()) && d.projects != nil {
		cfg, err := d.projects.Config(r.Context(), proj)
		if err != nil {
			return r, response.SmartError(err)
		}

		restricted = validate.IsTrue(cfg["restricted"])
		ownProfiles = validate.IsTrue(cfg["features.profiles"])
		ownImages = validate.IsTrue(cfg["features.images"])
		ownVolumes = validate.IsTrue(cfg["features.storage.volumes"])
	}

	// A restricted certificate is a tenant: it works only in projects that confine what
	// it may do (restricted=true), whatever its list says, so that an administrator's
	// oversight does not give a tenant host paths, devices or proxies.
	if c.Restricted() && !all && ep.Path != "" && !restricted {
		return r, response.Forbidden(api.StatusErrorf(http.StatusForbidden,
			"not authorized: project %q is not restricted (restricted=true), and this certificate is", proj))
	}

	ctx := project.WithContext(r.Context(), proj)
	if c.Restricted() {
		ctx = context.WithValue(ctx, tenantProjectsKey{}, d.tenantProjects(ctx, c))
	}

	if all {
		ctx = context.WithValue(ctx, allProjectsKey{}, true)
	}

	r = r.WithContext(ctx)
	if restricted && !read {
		for _, kind := range sharedKinds {
			// Its own profiles are its to change: the instances that use them are
			// checked against its restrictions with the profile expanded.
			if kind == "profiles" && ownProfiles {
				continue
			}

			// Its own volumes too (the pools they live in stay the default project's).
			if kind == "storage-pools" && ownVolumes && isVolumePath(ep.Path) {
				continue
			}

			// Its own images likewise: hostile content either way (an image is
			// checked when unpacked), and no other project sees them.
			if kind == "images" && ownImages {
				continue
			}

			if ep.Path == kind || strings.HasPrefix(ep.Path, kind+"/") {
				return r, response.Forbidden(api.StatusErrorf(http.StatusForbidden,
					"project %q is restricted and shares %s with the default project: it may not change them", proj, kind))
			}
		}
	}

	if isVolumePath(ep.Path) {
		return d.scopeVolumes(ep, r, proj)
	}

	if !strings.HasPrefix(ep.Path, "instances/{name}") {
		return r, nil
	}

	name := pathVar(r, "name")
	// A name never holds '_' (validate.InstanceName), a key of another project always
	// does: refused here, no path reaches another project's instance.
	if strings.Contains(name, "_") {
		return r, response.NotFound(api.StatusErrorf(http.StatusNotFound, "instance %q not found", name))
	}

	return setPathVar(r, "name", project.Key(proj, name)), nil
}
