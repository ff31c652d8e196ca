package main

import (
	"errors"
	"net/http"

	"github.com/berth-dev/berth/lxd/response"
)

// metricsGet stands in for GET /1.0/metrics until the metrics work lands (issue 11
// item 5): the route, its listener and who may scrape are here, the handler there.
// Delete this file when merging that handler.
func metricsGet(d *Daemon, r *http.Request) response.Response {
	return response.NotImplemented(errors.New("metrics are not implemented yet"))
}
