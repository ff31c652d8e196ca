package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/networks: managed networks arrive with the bridge issue; until then none.
func networksGet(d *Daemon, r *http.Request) response.Response {
	if recursion(r) >= 1 {
		return response.SyncResponse(true, []api.Network{})
	}

	return response.SyncResponse(true, []string{})
}
