package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/warnings: Berth has no projects; ?project= and all-projects are accepted and
// change nothing.
func warningsGet(d *Daemon, r *http.Request) response.Response {
	list, err := d.warnings.List(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		return response.SyncResponse(true, list)
	}

	ids := make([]string, 0, len(list))
	for _, w := range list {
		ids = append(ids, w.UUID)
	}

	return response.SyncResponse(true, urlsOf("warnings", ids))
}

// GET /1.0/warnings/{uuid}
func warningGet(d *Daemon, r *http.Request) response.Response {
	w, err := d.warnings.Get(r.Context(), pathVar(r, "uuid"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, w, []any{w.UUID, w.Status})
}

// PUT and PATCH /1.0/warnings/{uuid}: the status.
func warningPut(d *Daemon, r *http.Request) response.Response {
	req := api.WarningPut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = d.warnings.SetStatus(r.Context(), pathVar(r, "uuid"), req.Status)
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}

// DELETE /1.0/warnings/{uuid}
func warningDelete(d *Daemon, r *http.Request) response.Response {
	err := d.warnings.Delete(r.Context(), pathVar(r, "uuid"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.EmptySyncResponse
}
