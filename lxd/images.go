package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
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

	trusted := trustedFor(r)

	var list []api.Image
	err = d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetImages(ctx)
		if err != nil {
			return err
		}

		for i := range rows {
			if !trusted && !rows[i].Public {
				continue
			}

			img, err := imageToAPI(ctx, tx, &rows[i])
			if err != nil {
				return err
			}

			if matchFilter(img, clauses) {
				list = append(list, *img)
			}
		}

		return nil
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

	fps := []string{}
	for _, img := range list {
		fps = append(fps, img.Fingerprint)
	}

	return response.SyncResponse(true, urlsOf("images", fps))
}

// GET /1.0/images/{fingerprint}: exact or unique prefix.
func imageGet(d *Daemon, r *http.Request) response.Response {
	var img *api.Image
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		row, err := visibleImage(ctx, tx, r)
		if err != nil {
			return err
		}

		img, err = imageToAPI(ctx, tx, row)
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, img, []any{img.Public, img.AutoUpdate, img.Properties})
}

// visibleImage is the image a request names, if its caller may see it: untrusted
// callers see public images only, and a private one is "not found" to them, as one
// that does not exist.
func visibleImage(ctx context.Context, tx *db.Tx, r *http.Request) (*db.Image, error) {
	fp := pathVar(r, "fingerprint")
	row, err := tx.GetImage(ctx, fp)
	if err == nil && !row.Public && !trustedFor(r) {
		return nil, api.StatusErrorf(http.StatusNotFound, "image %q not found", fp)
	}

	return row, err
}

// GET /1.0/images/{fingerprint}/export: the image's unified tarball.
func imageExport(d *Daemon, r *http.Request) response.Response {
	var row *db.Image
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		row, err = visibleImage(ctx, tx, r)
		return err
	})
	if err != nil {
		return response.SmartError(err)
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

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		row, err := tx.GetImage(ctx, pathVar(r, "fingerprint"))
		if err != nil {
			return err
		}

		row.Public, row.AutoUpdate, row.ExpiresAt = req.Public, req.AutoUpdate, req.ExpiresAt
		row.Properties = api.NonNil(req.Properties)

		return tx.UpdateImage(ctx, row.Fingerprint, *row)
	})

	return response.SmartError(err)
}

// POST /1.0/images: a unified tarball as the raw body. The upload is spooled in the
// request; checking and unpacking run in the operation.
func imagesPost(d *Daemon, r *http.Request) response.Response {
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		return imagesPostPublish(d, r)
	case strings.HasPrefix(ct, "multipart/form-data"):
		return response.NotImplemented(fmt.Errorf("split images (metadata + rootfs) are not supported yet: use a unified tarball"))
	}

	opts := imagestore.ImportOptions{Filename: r.Header.Get("X-LXD-filename")}
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

	up, err := d.images.Spool(r.Body)
	if err != nil {
		return response.SmartError(err)
	}

	op, err := d.ops.Create(api.OperationClassTask, "Downloading image", map[string][]string{}, nil, func(ctx context.Context, op *operations.Operation) error {
		fp, size, err := d.images.Import(ctx, up, opts)
		if fp != "" {
			_ = op.UpdateMetadata(map[string]any{"fingerprint": fp, "size": strconv.FormatInt(size, 10)})
		}

		if errors.Is(err, imagestore.ErrExists) {
			return fmt.Errorf("Image with same fingerprint already exists")
		}

		if err == nil {
			d.events.SendLifecycle("default", "image-created", "/1.0/images/"+fp, nil)
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

// DELETE /1.0/images/{fingerprint}
func imageDelete(d *Daemon, r *http.Request) response.Response {
	var fp string
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		row, err := tx.GetImage(ctx, pathVar(r, "fingerprint"))
		if err == nil {
			fp = row.Fingerprint
		}

		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	return d.task("Deleting image", map[string][]string{"images": {"/1.0/images/" + fp}}, func(ctx context.Context, op *operations.Operation) error {
		err := d.images.Delete(ctx, fp)
		if err == nil {
			d.events.SendLifecycle("default", "image-deleted", "/1.0/images/"+fp, nil)
		}

		return err
	})
}

func imageToAPI(ctx context.Context, tx *db.Tx, row *db.Image) (*api.Image, error) {
	aliases, err := tx.GetImageAliasesFor(ctx, row.Fingerprint)
	if err != nil {
		return nil, err
	}

	img := &api.Image{
		ImagePut: api.ImagePut{
			AutoUpdate: row.AutoUpdate,
			Properties: row.Properties,
			Public:     row.Public,
			ExpiresAt:  row.ExpiresAt,
			Profiles:   []string{"default"},
		},
		Aliases:      []api.ImageAlias{},
		Architecture: row.Architecture,
		Cached:       row.Cached,
		Filename:     row.Filename,
		Fingerprint:  row.Fingerprint,
		Size:         row.Size,
		Type:         row.Type,
		CreatedAt:    row.CreatedAt,
		LastUsedAt:   row.LastUsedAt,
		UploadedAt:   row.UploadedAt,
	}

	img.Properties = api.NonNil(img.Properties)

	for _, a := range aliases {
		img.Aliases = append(img.Aliases, api.ImageAlias{Name: a.Name, Description: a.Description})
	}

	return img, nil
}
