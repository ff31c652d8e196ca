package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// imagesPostPublish answers POST /1.0/images with a JSON body whose source is an instance
// or a snapshot (lxc publish). The instance is packed straight into the image store's
// spool (hashed on the way: the fingerprint is the SHA-256 of the tarball), then imported
// like an upload. Op metadata: fingerprint and size.
func imagesPostPublish(d *Daemon, r *http.Request) response.Response {
	req := api.ImagesPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if req.Source == nil {
		return response.BadRequest(fmt.Errorf("image source is missing"))
	}

	if req.Source.Mode == "push" {
		return imagesPostPushToken(d, projectOf(r), req)
	}

	if req.Source.Type == "image" {
		return imagesPostPull(d, projectOf(r), req)
	}

	var name, snap string
	switch req.Source.Type {
	case "instance", "container", "virtual-machine":
		name = req.Source.Name
		if strings.Contains(name, "/") {
			name, snap, _ = strings.Cut(name, "/")
		}
	case "snapshot":
		var ok bool
		name, snap, ok = strings.Cut(req.Source.Name, "/")
		if !ok {
			return response.BadRequest(fmt.Errorf("snapshot source %q is not NAME/SNAPSHOT", req.Source.Name))
		}
	default:
		return response.NotImplemented(fmt.Errorf("image source type %q is not supported", req.Source.Type))
	}

	// A name in the request's project: never a key of another one.
	if strings.Contains(name, "_") {
		return response.NotFound(fmt.Errorf("instance %q not found", name))
	}

	name = project.Key(projectOf(r), name)
	err = d.instances.CheckPublishable(r.Context(), name, snap)
	if err != nil {
		return response.SmartError(err)
	}

	proj := projectOf(r)
	opts := imagestore.ImportOptions{Project: proj, Filename: req.Filename, Public: req.Public, Properties: req.Properties}
	op, err := d.treeOp("Publishing instance", "create_image_from_container_pack", map[string][]string{"instances": {projects.InstanceURL(name)}}, func(ctx context.Context, op *operations.Operation) error {
		pr, pw := io.Pipe()
		packed := make(chan error, 1)
		go func() {
			err := d.instances.Publish(ctx, name, snap, req.Properties, req.CompressionAlgorithm, pw)
			pw.CloseWithError(err)
			packed <- err
		}()

		up, err := d.images.Spool(pr)
		_ = pr.CloseWithError(io.ErrClosedPipe) // stops the packer if spooling failed
		// The operation ends only once the packer has released its mounts.
		packErr := <-packed
		if err != nil {
			if packErr != nil && !errors.Is(packErr, io.ErrClosedPipe) {
				return packErr
			}

			return err
		}

		fp, err := d.importImage(ctx, op, up, opts)
		if err != nil {
			return err
		}

		err = d.images.AddAliases(ctx, proj, fp, api.InstanceTypeContainer, req.Aliases...)
		if err != nil {
			return err
		}

		d.events.SendLifecycle(proj, "image-created", imageURL(proj, fp), nil)
		return nil
	})
	if err != nil {
		return response.InternalError(err)
	}

	return response.OperationResponse(op)
}
