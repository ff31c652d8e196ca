package main

import (
	"net/http"
	"sort"

	"github.com/berth-dev/berth/lxd/etag"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// PUT and PATCH /1.0: server configuration. berthd has no server keys yet (no HTTPS
// listener, no image auto-update), so every key is refused by name rather than stored
// and ignored; an empty config is accepted. The If-Match check matches GET /1.0's ETag.
func serverPut(d *Daemon, r *http.Request) response.Response {
	req := struct {
		Config map[string]any `json:"config"`
	}{}

	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = etag.Check(r, map[string]string{})
	if err != nil {
		return response.SmartError(err)
	}

	keys := make([]string, 0, len(req.Config))
	for k := range req.Config {
		keys = append(keys, k)
	}

	sort.Strings(keys)
	if len(keys) > 0 {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "server config key %q is not supported by berthd", keys[0]))
	}

	return response.EmptySyncResponse
}
