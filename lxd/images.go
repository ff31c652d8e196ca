package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/cluster/forward"
	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/images: untrusted callers see public images only.
func imagesGet(d *Daemon, r *http.Request) response.Response {
	clauses, err := parseFilter(r.FormValue("filter"))
	if err != nil {
		return response.SmartError(err)
	}

	// Untrusted callers see public images only.
	trusted := trustedFor(r)
	proj := projectOf(r)
	list, err := d.images.List(r.Context(), proj, func(img *api.Image) bool {
		return (trusted || img.Public) && matchFilter(img, clauses)
	})
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		if list == nil {
			list = []api.Image{}
		}

		return response.SyncResponse(true, list)
	}

	urls := []string{}
	for _, img := range list {
		urls = append(urls, imageURL(proj, img.Fingerprint))
	}

	return response.SyncResponse(true, urls)
}

// GET /1.0/images/{fingerprint}: exact or unique prefix.
func imageGet(d *Daemon, r *http.Request) response.Response {
	img, err := visibleImage(d, r, false)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, img, []any{img.Public, img.AutoUpdate, img.Properties})
}

// visibleImage is the image a request names, if its caller may see it: untrusted
// callers name public images only (a fingerprint prefix is resolved among them), so a
// private image is "not found" to them and never makes a prefix ambiguous, unless they
// give the image's secret (?secret=, see images_secret.go) with its full fingerprint.
// Either way only among the images of the request's project.
func visibleImage(d *Daemon, r *http.Request, export bool) (*api.Image, error) {
	fp := pathVar(r, "fingerprint")
	proj := projectOf(r)
	if trustedFor(r) {
		return d.images.Get(r.Context(), proj, fp)
	}

	img, err := d.images.GetPublic(r.Context(), proj, fp)
	if err == nil || api.StatusCodeOf(err) != http.StatusNotFound || !d.imageSecretGrants(r.Context(), proj, fp, r.FormValue("secret"), export) {
		return img, err
	}

	img, err = d.images.Get(r.Context(), proj, fp)
	if err == nil && img.Fingerprint != fp {
		return nil, api.StatusErrorf(http.StatusNotFound, "image %q not found", fp)
	}

	return img, err
}

// GET /1.0/images/{fingerprint}/export: the image's unified tarball, or both files of a
// split image as multipart/form-data.
func imageExport(d *Daemon, r *http.Request) response.Response {
	row, err := visibleImage(d, r, true)
	if err != nil {
		return response.SmartError(err)
	}

	// Clustered, the file may be on another member only: fetch it (not for a member
	// asking: it asks the others itself; nor for an untrusted caller, who must not make
	// this member pull an image across the cluster, issue 16 review).
	switch {
	case forward.IsForwarded(r):
		if !d.images.HasFile(row.Fingerprint) {
			return response.NotFound(fmt.Errorf("image %s has no file on this member", row.Fingerprint))
		}

	case !trustedFor(r):
		if !d.images.HasFile(row.Fingerprint) {
			return response.SmartError(api.StatusErrorf(http.StatusServiceUnavailable,
				"image %s has no file on this member and an untrusted client cannot have it fetched from another: export it from the member that has it", row.Fingerprint))
		}

	default:
		err = d.images.EnsureFile(r.Context(), row.Fingerprint)
		if err != nil {
			return response.SmartError(err)
		}
	}

	if d.images.IsSplit(row.Fingerprint) {
		return splitExport(d, row)
	}

	name := row.Filename
	if name == "" {
		name = row.Fingerprint + ".tar.gz"
	}

	return response.FileResponse(d.images.TarballPath(row.Fingerprint), name, nil)
}

// PUT /1.0/images/{fingerprint}: public, auto_update, properties.
func imagePut(d *Daemon, r *http.Request) response.Response {
	req := api.ImagePut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.images.Update(r.Context(), projectOf(r), pathVar(r, "fingerprint"), req)
	return response.SmartError(err)
}

// PATCH /1.0/images/{fingerprint}: as PUT, for the fields the body has; properties are
// merged key by key (LXD's semantics: decoding over the current values does both).
func imagePatch(d *Daemon, r *http.Request) response.Response {
	img, err := d.images.Get(r.Context(), projectOf(r), pathVar(r, "fingerprint"))
	if err != nil {
		return response.SmartError(err)
	}

	req := img.ImagePut
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.images.Update(r.Context(), projectOf(r), img.Fingerprint, req)
	return response.SmartError(err)
}

// POST /1.0/images/{fingerprint}/refresh: LXD refreshes an image from the server it
// came from. Berth has no image servers yet (a later issue), so no image has a source:
// the answer is LXD's for an image without one, an operation that fails saying so.
func imageRefresh(d *Daemon, r *http.Request) response.Response {
	img, err := d.images.Get(r.Context(), projectOf(r), pathVar(r, "fingerprint"))
	if err != nil {
		return response.SmartError(err)
	}

	fp := img.Fingerprint
	return d.task("Refreshing image", map[string][]string{"images": {imageURL(projectOf(r), fp)}}, func(context.Context, *operations.Operation) error {
		return fmt.Errorf("Failed to update image %q: Image source not found", fp)
	})
}

// POST /1.0/images: a unified tarball as the raw body, or a split image as
// multipart/form-data (images_split.go). The upload is spooled in the
// request; checking and unpacking run in the operation.
func imagesPost(d *Daemon, r *http.Request) response.Response {
	// An image pushed by another server (images_push.go): the route admits anyone, the
	// push token is the credential; nothing else is for callers short of an admin.
	if r.Header.Get("X-LXD-secret") != "" {
		return imagesPostPushed(d, r)
	}

	if c := callerOf(r); !c.Admin() {
		leaveBody(r)
		return response.Forbidden(refusal(c))
	}

	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") {
		return imagesPostPublish(d, r)
	}

	proj := projectOf(r)
	opts := imagestore.ImportOptions{Project: proj, Filename: r.Header.Get("X-LXD-filename")}
	opts.Public, _ = strconv.ParseBool(r.Header.Get("X-LXD-public"))
	if p := r.Header.Get("X-LXD-properties"); p != "" {
		vals, err := url.ParseQuery(p)
		if err != nil {
			return response.BadRequest(fmt.Errorf("invalid X-LXD-properties: %w", err))
		}

		opts.Properties = map[string]string{}
		for k := range vals {
			opts.Properties[k] = vals.Get(k)
		}
	}

	spool := func() (*imagestore.Upload, error) { return d.images.Spool(r.Body) }
	if strings.HasPrefix(ct, "multipart/form-data") {
		spool = func() (*imagestore.Upload, error) { return spoolSplitUpload(d, r) } // images_split.go
	}

	up, err := spool()
	if err != nil {
		return response.SmartError(err)
	}

	op, err := d.ops.Create(api.OperationClassTask, "Downloading image", map[string][]string{}, nil, func(ctx context.Context, op *operations.Operation) error {
		fp, err := d.importImage(ctx, op, up, opts)
		if err == nil {
			d.events.SendLifecycle(proj, "image-created", imageURL(proj, fp), nil)
		}

		return err
	}, nil, nil)
	if err != nil {
		up.Remove()
		return response.InternalError(err)
	}

	err = op.Start()
	if err != nil {
		return response.InternalError(err)
	}

	return response.OperationResponse(op)
}

// DELETE /1.0/images/{fingerprint}: the image is gone from the list and from its aliases
// when the request is answered; the operation removes its files. Instances made from it
// keep working (the pool keeps what they sit on).
func imageDelete(d *Daemon, r *http.Request) response.Response {
	proj := projectOf(r)
	ip, err := d.imagesProject(r.Context(), proj)
	if err != nil {
		return response.SmartError(err)
	}

	img, err := d.images.Get(r.Context(), proj, pathVar(r, "fingerprint"))
	if err != nil {
		return response.SmartError(err)
	}

	fp := img.Fingerprint
	finish, err := d.images.Delete(r.Context(), proj, fp)
	if err != nil {
		return response.SmartError(err)
	}

	d.revokeImageSecrets(ip, fp)
	d.events.SendLifecycle(proj, "image-deleted", imageURL(proj, fp), nil)

	op, err := d.ops.Create(api.OperationClassTask, "Deleting image", map[string][]string{"images": {imageURL(proj, fp)}}, nil, func(context.Context, *operations.Operation) error {
		finish()
		return nil
	}, nil, nil)
	if err == nil {
		err = op.Start()
	}

	if err != nil {
		go finish() // the image is deleted already: its files must go all the same
		return response.InternalError(err)
	}

	return response.OperationResponse(op)
}

// importImage imports a spooled upload in operation op (an upload, a publish, a push):
// the operation shows the image's fingerprint and size, and an image the project has
// already fails with LXD's message.
func (d *Daemon) importImage(ctx context.Context, op *operations.Operation, up *imagestore.Upload, opts imagestore.ImportOptions) (string, error) {
	fp, size, err := d.images.Import(ctx, up, opts)
	if fp != "" {
		_ = op.UpdateMetadata(map[string]any{"fingerprint": fp, "size": strconv.FormatInt(size, 10)})
	}

	if errors.Is(err, imagestore.ErrExists) {
		return "", fmt.Errorf("Image with same fingerprint already exists")
	}

	return fp, err
}
