package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// instancesPostPull answers POST /1.0/instances whose image is on another server (lxc
// launch REMOTE:alias): the operation downloads the image into the local store (where it
// stays cached for the next launch), then creates the instance from it as from a local
// image. The source is checked before the operation; the instance's own checks (name,
// profiles, limits) run once the image is there.
func instancesPostPull(d *Daemon, r *http.Request, req api.InstancesPost) response.Response {
	s := req.Source
	if s.Mode != "" && s.Mode != "pull" {
		return response.NotImplemented(fmt.Errorf("image source mode %q is not supported", s.Mode))
	}

	src := pullSource{Server: s.Server, Protocol: s.Protocol, Certificate: s.Certificate, Alias: s.Alias, Fingerprint: s.Fingerprint, Secret: s.Secret}
	err := src.check()
	if err != nil {
		return response.SmartError(err)
	}

	// Named now if unnamed, so that the operation's resources name the instance (a client
	// reads its name there). A duplicate name fails the request itself, before a download
	// it would waste. The name is the request's project's (its key): another project's
	// instance of that name is no duplicate, and a tenant must not learn whether one exists.
	err = instance.NameRequest(&req)
	if err != nil {
		return response.SmartError(err)
	}

	proj := projectOf(r)
	key := project.Key(proj, req.Name)
	if d.instances.Exists(r.Context(), key) == nil {
		return response.Conflict(fmt.Errorf("instance %q already exists", req.Name))
	}

	// The image joins the image set the project uses: a restricted project may add to
	// its own only, never to the default project's it shares (as it may not upload one).
	err = d.mayAddImages(r.Context(), proj)
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Creating instance", instanceResources(key), d.thenStart(req.Start, true, key, func(ctx context.Context, op *operations.Operation) error {
		fp, err := d.pullImage(ctx, op, src, imagestore.ImportOptions{Cached: true, Project: proj})
		if err != nil {
			return err
		}

		local := req
		local.Source = api.InstanceSource{Type: "image", Fingerprint: fp}
		cr, err := d.instances.PrepareCreate(project.WithContext(ctx, proj), local)
		if err != nil {
			return err
		}

		return d.instances.Create(ctx, cr)
	}))
}

// mayAddImages refuses a restricted project that shares the default project's images.
func (d *Daemon) mayAddImages(ctx context.Context, proj string) error {
	if proj == project.Default || d.projects == nil {
		return nil
	}

	cfg, err := d.projects.Config(ctx, proj)
	if err != nil {
		return err
	}

	ip, err := d.images.ImagesProject(ctx, proj)
	if err != nil {
		return err
	}

	if validate.IsTrue(cfg["restricted"]) && ip != proj {
		return api.StatusErrorf(http.StatusForbidden, "project %q is restricted and uses the default project's images: a launch from a remote server would add to them (set features.images=true on an empty project)", proj)
	}

	return nil
}
