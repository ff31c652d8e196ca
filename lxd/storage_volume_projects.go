package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/volumes"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// Custom volumes and projects. A request's project uses its own volumes with
// features.storage.volumes=true, else the default project's; a restricted project
// without volumes of its own uses none (db.VolumeOwner, fail closed). scopeVolumes
// resolves that once per request: a volume path's {volume} becomes the volume's key
// (shared/project VolumeKey), so every handler below works on keys and reaches only the
// volumes its project uses; the names a body brings (a new volume, a rename, a copy's
// source, an import) are keyed by the handlers with volumeKeyOf.

const volumesPath = "storage-pools/{name}/volumes"

type volumeOwnerKey struct{}

// isVolumePath reports whether ep is one of the custom volume endpoints.
func isVolumePath(path string) bool {
	return path == volumesPath || strings.HasPrefix(path, volumesPath+"/")
}

// volumeOwnerIn is the project whose volumes project proj uses.
func (d *Daemon) volumeOwnerIn(ctx context.Context, proj string) (string, error) {
	if proj == "" || proj == project.Default {
		return project.Default, nil
	}

	var owner string
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		owner, err = tx.VolumeProject(ctx, proj)
		return err
	})

	return owner, err
}

// scopeVolumes returns r carrying the project whose volumes it reaches, with a volume
// path's name turned into the volume's key, or the response that refuses it.
func (d *Daemon) scopeVolumes(ep APIEndpoint, r *http.Request, proj string) (*http.Request, response.Response) {
	if allProjects(r) && ep.Path != volumesPath && ep.Path != volumesPath+"/{type}" {
		return r, response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "all-projects=true only lists volumes"))
	}

	if allProjects(r) {
		return r, nil // the list shows what the caller may use (storageVolumesGet)
	}

	owner, err := d.volumeOwnerIn(r.Context(), proj)
	if err != nil {
		return r, response.SmartError(err)
	}

	r = r.WithContext(context.WithValue(r.Context(), volumeOwnerKey{}, owner))
	if !strings.HasPrefix(ep.Path, volumesPath+"/{type}/{volume}") {
		return r, nil
	}

	key, err := volumes.KeyOf(owner, pathVar(r, "volume"))
	if err != nil || strings.Contains(pathVar(r, "volume"), "/") {
		return r, response.NotFound(api.StatusErrorf(http.StatusNotFound, "storage volume %q not found", pathVar(r, "volume")))
	}

	return setPathVar(r, "volume", key), nil
}

// volumeOwnerOf is the project whose volumes r reaches (scopeVolumes).
func volumeOwnerOf(r *http.Request) string {
	owner, _ := r.Context().Value(volumeOwnerKey{}).(string)
	if owner == "" {
		return project.Default
	}

	return owner
}

// volumeKeyOf is the key of a volume name a request's body brings, in r's project.
func volumeKeyOf(r *http.Request, name string) (string, error) {
	if allProjects(r) {
		return "", api.StatusErrorf(http.StatusBadRequest, "all-projects=true only lists volumes")
	}

	return volumes.KeyOf(volumeOwnerOf(r), name)
}

// volumeInScope reports whether a volume of project proj belongs in r's list: those of
// the project r's project uses, or with all-projects=true those of every project its
// caller may use.
func volumeInScope(r *http.Request, proj string) bool {
	if allProjects(r) {
		return mayUse(r, proj)
	}

	return proj == volumeOwnerOf(r)
}

// copySourceKey keys a copy's source volume ("volume" or "volume/snapshot") in the
// project it names (the request's when none). Another project's volume is reached only
// by a caller that may use that project, and never from or to a restricted project:
// a tenant's project and the others share no volume.
func (d *Daemon) copySourceKey(r *http.Request, src api.StorageVolumeSource) (string, error) {
	proj := projectOf(r)
	if src.Project == "" || src.Project == proj {
		return volumeKeyOf(r, src.Name)
	}

	if !mayUse(r, src.Project) {
		return "", api.StatusErrorf(http.StatusForbidden, "not authorized: project %q is not one of this certificate's projects", src.Project)
	}

	for _, p := range []string{proj, src.Project} {
		if d.projects == nil {
			break
		}

		cfg, err := d.projects.Config(r.Context(), p)
		if err != nil {
			return "", err
		}

		if validate.IsTrue(cfg["restricted"]) {
			return "", api.StatusErrorf(http.StatusForbidden, "project %q is restricted: volumes are not copied between it and another project", p)
		}
	}

	owner, err := d.volumeOwnerIn(r.Context(), src.Project)
	if err != nil {
		return "", err
	}

	return volumes.KeyOf(owner, src.Name)
}

// inProject keeps the volumes of list that belong in r's answer (volumeInScope).
func inProject(r *http.Request, list []api.StorageVolume) []api.StorageVolume {
	out := make([]api.StorageVolume, 0, len(list))
	for _, v := range list {
		if volumeInScope(r, v.Project) {
			out = append(out, v)
		}
	}

	return out
}

// keyVolumesPost keys the names of a new volume's request: its name in r's project and
// a copy's source in the project it names (copySourceKey).
func keyVolumesPost(d *Daemon, r *http.Request, req *api.StorageVolumesPost) error {
	var err error
	req.Name, err = volumeKeyOf(r, req.Name)
	if err != nil {
		return err
	}

	if req.Source.Type != "copy" || req.Source.Name == "" {
		return nil
	}

	req.Source.Name, err = d.copySourceKey(r, req.Source)
	req.Source.Project = ""
	return err
}

// keyVolumePost keys the new name of a rename or move, in the volume's project: a move
// to another project is not supported.
func keyVolumePost(r *http.Request, req *api.StorageVolumePost) error {
	if req.Project != "" && req.Project != projectOf(r) {
		return api.StatusErrorf(http.StatusBadRequest, "moving storage volumes between projects is not supported")
	}

	if req.Name == "" {
		return nil // a move keeps the volume's key; a rename refuses it
	}

	var err error
	req.Name, err = volumeKeyOf(r, req.Name)
	return err
}

// importKey is the key an imported volume gets: name in r's project, or the project's
// prefix alone when the request names none (the backup's name is used, lxd/volumes).
func importKey(r *http.Request, name string) (string, error) {
	if name == "" {
		if allProjects(r) {
			return "", api.StatusErrorf(http.StatusBadRequest, "all-projects=true only lists volumes")
		}

		return project.VolumeKey(volumeOwnerOf(r), ""), nil
	}

	return volumeKeyOf(r, name)
}

// volumeEmit sends a volume's lifecycle event to the project its URL names
// (project.VolumeURL), so that a project's listeners, and only they, see its volumes'.
func (d *Daemon) volumeEmit(action, u string, meta map[string]any) {
	proj := project.Default
	if parsed, err := url.Parse(u); err == nil && parsed.Query().Get("project") != "" {
		proj = parsed.Query().Get("project")
	}

	d.events.SendLifecycle(proj, action, u, meta)
}

// tenantUsedBy keeps, for a restricted certificate, the users of a pool that belong to
// r's project (their URL's ?project=, the default project without one): a tenant does
// not learn the names of other projects' volumes and instances from a pool it reads.
func tenantUsedBy(r *http.Request, urls []string) []string {
	if !callerOf(r).Restricted() {
		return urls
	}

	out := []string{}
	for _, u := range urls {
		parsed, err := url.Parse(u)
		if err != nil {
			continue
		}

		proj := parsed.Query().Get("project")
		if proj == "" {
			proj = project.Default
		}

		if inScope(r, proj) {
			out = append(out, u)
		}
	}

	return out
}
