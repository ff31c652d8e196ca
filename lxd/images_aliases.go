package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

func aliasToAPI(a db.ImageAlias) api.ImageAliasesEntry {
	typ := a.Type
	if typ == "" {
		typ = api.InstanceTypeContainer
	}

	return api.ImageAliasesEntry{
		ImageAliasesEntryPut: api.ImageAliasesEntryPut{Description: a.Description, Target: a.Fingerprint},
		Name:                 a.Name,
		Type:                 typ,
	}
}

// GET /1.0/images/aliases
func aliasesGet(d *Daemon, r *http.Request) response.Response {
	var list []db.ImageAlias
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		list, err = tx.GetImageAliases(ctx)
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		out := []api.ImageAliasesEntry{}
		for _, a := range list {
			out = append(out, aliasToAPI(a))
		}

		return response.SyncResponse(true, out)
	}

	names := []string{}
	for _, a := range list {
		names = append(names, a.Name)
	}

	return response.SyncResponse(true, urlsOf("images/aliases", names))
}

// POST /1.0/images/aliases: target may be a fingerprint prefix.
func aliasesPost(d *Daemon, r *http.Request) response.Response {
	req := api.ImageAliasesPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validate.AliasName(req.Name)
	if err != nil {
		return response.BadRequest(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		img, err := tx.GetImage(ctx, req.Target)
		if err != nil {
			return err
		}

		return tx.CreateImageAlias(ctx, req.Name, img.Fingerprint, req.Description, req.Type)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "image-alias-created", "/1.0/images/aliases/"+req.Name, nil)
	return response.SyncResponseLocation(true, nil, "/1.0/images/aliases/"+req.Name)
}

// GET /1.0/images/aliases/{name}: untrusted callers see aliases of public images only.
func aliasGet(d *Daemon, r *http.Request) response.Response {
	var a *db.ImageAlias
	trusted := trustedFor(r)
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		a, err = tx.GetImageAlias(ctx, pathVar(r, "name"))
		if err != nil || trusted {
			return err
		}

		img, err := tx.GetImage(ctx, a.Fingerprint)
		if err != nil || !img.Public {
			return api.StatusErrorf(http.StatusNotFound, "image alias %q not found", pathVar(r, "name"))
		}

		return nil
	})
	if err != nil {
		return response.SmartError(err)
	}

	out := aliasToAPI(*a)
	return response.SyncResponseETag(true, out, []any{out.Description, out.Target})
}

// PUT /1.0/images/aliases/{name}: change target or description.
func aliasPut(d *Daemon, r *http.Request) response.Response {
	req := api.ImageAliasesEntryPut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		img, err := tx.GetImage(ctx, req.Target)
		if err != nil {
			return err
		}

		return tx.UpdateImageAlias(ctx, pathVar(r, "name"), img.Fingerprint, req.Description)
	})

	return response.SmartError(err)
}

// POST /1.0/images/aliases/{name}: rename.
func aliasPost(d *Daemon, r *http.Request) response.Response {
	req := api.ImageAliasesEntryPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validate.AliasName(req.Name)
	if err != nil {
		return response.BadRequest(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.RenameImageAlias(ctx, pathVar(r, "name"), req.Name)
	})

	return response.SmartError(err)
}

// DELETE /1.0/images/aliases/{name}
func aliasDelete(d *Daemon, r *http.Request) response.Response {
	name := pathVar(r, "name")
	err := d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteImageAlias(ctx, name)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "image-alias-deleted", "/1.0/images/aliases/"+name, nil)
	return response.EmptySyncResponse
}
