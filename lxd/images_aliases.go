package main

import (
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

// GET /1.0/images/aliases
func aliasesGet(d *Daemon, r *http.Request) response.Response {
	proj := projectOf(r)
	list, err := d.images.Aliases(r.Context(), proj)
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	urls := []string{}
	for _, a := range list {
		urls = append(urls, aliasURL(proj, a.Name))
	}

	return response.SyncResponse(true, urls)
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

	proj := projectOf(r)
	err = d.images.AddAliases(r.Context(), proj, req.Target, req.Type, api.ImageAlias{Name: req.Name, Description: req.Description})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle(proj, "image-alias-created", aliasURL(proj, req.Name), nil)
	return response.SyncResponseLocation(true, nil, aliasURL(proj, req.Name))
}

// GET /1.0/images/aliases/{name}: untrusted callers see aliases of public images only.
func aliasGet(d *Daemon, r *http.Request) response.Response {
	proj := projectOf(r)
	out, err := d.images.Alias(r.Context(), proj, pathVar(r, "name"))
	if err == nil && !trustedFor(r) {
		img, imgErr := d.images.Get(r.Context(), proj, out.Target)
		if imgErr != nil || !img.Public {
			err = api.StatusErrorf(http.StatusNotFound, "image alias %q not found", pathVar(r, "name"))
		}
	}

	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, out, []any{out.Description, out.Target})
}

// PUT /1.0/images/aliases/{name}: replace target and description.
func aliasPut(d *Daemon, r *http.Request) response.Response {
	req := api.ImageAliasesEntryPut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	return aliasUpdate(d, r, req)
}

// PATCH /1.0/images/aliases/{name}: as PUT, for the fields the body has (decoding over
// the current values keeps the others).
func aliasPatch(d *Daemon, r *http.Request) response.Response {
	cur, err := d.images.Alias(r.Context(), projectOf(r), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	req := cur.ImageAliasesEntryPut
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	return aliasUpdate(d, r, req)
}

// aliasUpdate stores PUT's and PATCH's result. A missing or unknown target is the
// body's fault (400); only a missing alias is 404.
func aliasUpdate(d *Daemon, r *http.Request, req api.ImageAliasesEntryPut) response.Response {
	if req.Target == "" {
		return response.BadRequest(fmt.Errorf("the target field is required"))
	}

	proj := projectOf(r)
	_, err := d.images.Get(r.Context(), proj, req.Target)
	if api.StatusErrorCheck(err, http.StatusNotFound) {
		return response.BadRequest(fmt.Errorf("target image %q not found", req.Target))
	}

	err = d.images.UpdateAlias(r.Context(), proj, pathVar(r, "name"), req)

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

	err = d.images.RenameAlias(r.Context(), projectOf(r), pathVar(r, "name"), req.Name)

	return response.SmartError(err)
}

// DELETE /1.0/images/aliases/{name}
func aliasDelete(d *Daemon, r *http.Request) response.Response {
	name, proj := pathVar(r, "name"), projectOf(r)
	err := d.images.DeleteAlias(r.Context(), proj, name)
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle(proj, "image-alias-deleted", aliasURL(proj, name), nil)
	return response.EmptySyncResponse
}
