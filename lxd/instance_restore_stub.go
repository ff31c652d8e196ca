package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// instanceRestore is a placeholder until snapshot restore lands (the snapshot work
// replaces this file with the real handler).
func instanceRestore(d *Daemon, r *http.Request, name string, req api.InstancePut) response.Response {
	return response.NotImplemented(api.StatusErrorf(http.StatusNotImplemented, "snapshot restore is not implemented yet"))
}
