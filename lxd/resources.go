package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/resources"
	"github.com/berth-dev/berth/lxd/response"
)

// GET /1.0/resources: the host's hardware.
func resourcesGet(d *Daemon, r *http.Request) response.Response {
	res, err := resources.Host{Root: "/", Arch: archName()}.Get()
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, res)
}
